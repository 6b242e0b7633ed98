"""What both learning algorithms add to their loss: here, the parent's distributions they distil towards."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from wmil.training.auxiliary import distillation_targets
from wmil.training.buffer import RolloutBuffer


def test_distillation_targets_are_the_parent_probs_time_major_and_none_without_distillation(params):
    distilling = params.run_config("kl_distill").algorithm
    buffer = RolloutBuffer(3, 2, 5, 4, parent_probs=True)
    buffer.parent_probs[:] = torch.arange(3 * 2 * 4, dtype=torch.float32).view(3, 2, 4)
    targets = distillation_targets(buffer.batch(), distilling)
    assert targets is not None and targets.shape == (6, 4)
    assert torch.equal(targets[1 * 2 + 1], buffer.parent_probs[1, 1])  # index t * N + n
    assert distillation_targets(buffer.batch(), dataclasses.replace(distilling, distill_coef=0.0)) is None


def test_distillation_without_the_parent_probs_is_a_clear_error(params):
    distilling = params.run_config("kl_distill").algorithm
    with pytest.raises(ValueError, match="kept the parent's action distributions"):
        distillation_targets(RolloutBuffer(3, 2, 5, 4).batch(), distilling)
