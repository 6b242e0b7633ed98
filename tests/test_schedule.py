"""The hyperparameter schedules: constant, linear over the budget, and linear from the step a run
first plays the top level."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from wmil.training.schedule import SCHEDULES, Progress, apply_schedules, scheduled


def test_constant_and_linear_follow_the_budget():
    assert scheduled(0.01, "constant", Progress(0.7, 0.7)) == 0.01
    assert scheduled(0.01, "linear", Progress(0.25, 0.0)) == pytest.approx(0.0075)
    assert scheduled(0.01, "linear", Progress(1.2, 1.2)) == 0.0  # never negative past the budget


def test_linear_from_top_holds_the_rate_until_the_top_level_then_anneals_to_zero():
    # a curriculum at 40% of its budget still climbing: the full rate, where linear has lost 40%
    assert scheduled(0.01, "linear_from_top", Progress(0.4, 0.0)) == 0.01
    assert scheduled(0.01, "linear", Progress(0.4, 0.0)) == pytest.approx(0.006)
    # half way from its arrival at the top to the budget: half the rate
    assert scheduled(0.01, "linear_from_top", Progress(0.7, 0.5)) == pytest.approx(0.005)
    assert scheduled(0.01, "linear_from_top", Progress(1.0, 1.0)) == 0.0


def test_an_unknown_schedule_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"unknown schedule 'cosine'.*linear_from_top"):
        scheduled(0.01, "cosine", Progress())
    assert SCHEDULES == ("constant", "linear", "linear_from_top")


def test_apply_schedules_sets_every_parameter_groups_rate_and_returns_the_entropy_bonus(params):
    config = dataclasses.replace(params.run_config().algorithm, lr=0.01, lr_schedule="linear",
                                 entropy_coef=0.02, entropy_schedule="linear_from_top")
    first, second = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [first]}, {"params": [second], "lr": 1.0}], lr=1.0)
    lr, entropy_coef = apply_schedules(optimizer, config, Progress(0.25, 0.0))
    assert lr == pytest.approx(0.0075) and entropy_coef == 0.02  # still climbing: the bonus holds
    assert [group["lr"] for group in optimizer.param_groups] == [lr, lr]
