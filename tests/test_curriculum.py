"""The mastery curriculum: advances when mastery is reached, never before, never past the top."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from wmil.config import load_params
from wmil.evaluation.held_out import evaluate_run
from wmil.training.curriculum import CurriculumManager, SuccessWindow
from wmil.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def flags(successes: int, failures: int) -> torch.Tensor:
    return torch.tensor([True] * successes + [False] * failures)


def test_no_advance_before_the_window_is_full_even_at_100_percent():
    cur = CurriculumManager(max_level=2, mastery_threshold=0.9, window=100)
    assert not cur.update(flags(99, 0))
    assert cur.level == 0
    assert cur.update(flags(1, 0))
    assert cur.level == 1


def test_no_advance_below_the_threshold_and_advance_at_it():
    cur = CurriculumManager(max_level=2, mastery_threshold=0.9, window=100)
    assert not cur.update(torch.tensor([False] * 11 + [True] * 89))  # 89% of a full window
    assert cur.level == 0
    assert cur.update(flags(1, 0))  # the oldest failure drops out: 90 successes of the last 100
    assert cur.level == 1


def test_a_new_level_starts_with_an_empty_window():
    cur = CurriculumManager(max_level=2, mastery_threshold=0.5, window=10)
    assert cur.update(flags(10, 0)) and cur.level == 1
    assert not cur.update(flags(9, 0))  # successes at level 0 do not count for level 1
    assert cur.update(flags(1, 0)) and cur.level == 2


def test_never_past_the_top_level():
    cur = CurriculumManager(max_level=2, mastery_threshold=0.5, window=4)
    for _ in range(10):
        cur.update(flags(4, 0))
    assert cur.level == 2


def test_state_dict_round_trip():
    cur = CurriculumManager(max_level=2, mastery_threshold=0.9, window=10)
    cur.update(flags(7, 1))
    other = CurriculumManager(max_level=2, mastery_threshold=0.9, window=10)
    other.load_state_dict(cur.state_dict())
    assert other.level == cur.level and other.recent.rate() == cur.recent.rate()
    assert other.update(flags(2, 0)) == cur.update(flags(2, 0))


def test_success_window_keeps_only_the_last_n():
    window = SuccessWindow(4)
    window.push(flags(0, 3))
    assert window.rate() == 0.0 and not window.full
    window.push(flags(3, 0))
    assert window.full and window.rate() == 0.75  # last four: F T T T
    window.push(flags(10, 0))
    assert window.rate() == 1.0


@pytest.mark.integration
@pytest.mark.parametrize("seed", [10, 11])
def test_trainer_climbs_levels_in_order_and_logs_them(tmp_path, seed):
    """At a smoke budget (a quarter of the curriculum's), two seeds climb to the full task, the curve
    and metrics.json agree on when, and the climb's env steps add up to the run's."""
    params = load_params(ROOT / "params.yaml")
    config = params.run_config("curriculum", "pattern_echo", seed, {"training": {"max_steps": 8192}})
    metrics = Trainer(config, tmp_path).train(progress=False)
    curve = pd.read_csv(tmp_path / "curve.csv")
    levels = curve["level"]
    assert levels.iloc[0] == 0 and levels.is_monotonic_increasing and set(levels) == {0, 1, 2}
    assert metrics["final_level"] == 2
    entered = metrics["level_entered_at"]
    assert entered[0] == 0 and 0 < entered[1] < entered[2] < 8192
    assert metrics["steps_per_level"] == [entered[1], entered[2] - entered[1], 8192 - entered[2]]
    # each level's first curve row comes after the env step at which it was entered
    for level in (1, 2):
        assert int(curve[levels == level]["env_steps"].iloc[0]) > entered[level] >= int(curve[levels < level]["env_steps"].iloc[-1]) - 1024
    by_level = evaluate_run(tmp_path, params.evaluation)["by_level"]
    assert by_level["2"]["greedy"]["success"] > 0.1  # it trained on the full task (chance: 16^-4)
    # success on the full task is measured on top-level episodes alone, from the first one on
    before_top = curve[levels < 2]
    assert before_top["rolling_success_top"].isna().all() and before_top["rolling_success"].gt(0.5).any()


def test_replay_sends_a_share_of_new_episodes_to_uniformly_chosen_easier_levels():
    g = torch.Generator().manual_seed(0)
    cur = CurriculumManager(max_level=2, mastery_threshold=0.9, window=10, replay=0.25)
    assert cur.episode_levels(8, g) == 0  # nothing is easier than level 0
    cur.level = 2
    levels = cur.episode_levels(40_000, g)
    assert levels.shape == (40_000,) and levels.dtype == torch.long
    shares = torch.bincount(levels, minlength=3).double() / len(levels)
    assert torch.allclose(shares, torch.tensor([0.125, 0.125, 0.75], dtype=torch.double), atol=0.01)
    assert CurriculumManager(2, 0.9, 10, replay=0.0, initial_level=2).episode_levels(8, g) == 2


def test_the_climb_is_recorded_level_by_level_and_survives_a_checkpoint():
    cur = CurriculumManager(max_level=2, mastery_threshold=0.8, window=10)
    assert cur.entered == [0, None, None] and cur.steps_per_level(500) == [500, 0, 0]
    assert not cur.update(flags(10, 0)[:9], env_steps=600)
    assert cur.update(flags(1, 0), env_steps=1000) and cur.entered == [0, 1000, None]
    other = CurriculumManager(max_level=2, mastery_threshold=0.8, window=10)
    other.load_state_dict(cur.state_dict())
    assert other.update(flags(8, 2), env_steps=2500) and other.entered == [0, 1000, 2500]
    assert other.steps_per_level(4000) == [1000, 1500, 1500]


def test_the_trainer_anneals_from_the_top_level_under_linear_from_top(tmp_path):
    """Before the climb ends the rate is held; without a curriculum the schedule is ppo's linear one."""
    params = load_params(ROOT / "params.yaml")
    trainer = Trainer(params.run_config("curriculum", "pattern_echo", 0), tmp_path)
    trainer.env_steps = 8192
    budget = trainer.config.training.max_steps
    assert trainer.progress().at_top == 0.0 and trainer.progress().overall == 8192 / budget
    trainer.curriculum.entered[2] = 4096
    assert trainer.progress().at_top == pytest.approx((8192 - 4096) / (budget - 4096))
    flat = Trainer(params.run_config("ppo_matched", "pattern_echo", 0), tmp_path / "flat")
    flat.env_steps = 8192
    assert flat.progress().at_top == flat.progress().overall == 8192 / budget
