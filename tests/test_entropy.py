"""The policy's entropy, in nats."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wmil.training.entropy import policy_entropy


def test_a_uniform_policy_has_log_a_nats_and_a_certain_one_none():
    uniform = F.log_softmax(torch.zeros(3, 8), -1)
    assert float(policy_entropy(uniform)) == pytest.approx(math.log(8))
    certain = F.log_softmax(torch.tensor([[0.0, -1e4, -1e4]]), -1)
    assert float(policy_entropy(certain)) == pytest.approx(0.0, abs=1e-6)


def test_the_entropy_is_the_mean_over_the_batch():
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    log_probs = torch.log(probs.clamp_min(1e-30))
    assert float(policy_entropy(log_probs)) == pytest.approx(math.log(2) / 2)
