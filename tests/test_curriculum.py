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
def test_trainer_climbs_levels_in_order_and_logs_them(tmp_path):
    config = load_params(ROOT / "params.yaml").run_config("curriculum", "pattern_echo", 0)
    metrics = Trainer(config, tmp_path).train(progress=False)
    levels = pd.read_csv(tmp_path / "curve.csv")["level"]
    assert levels.iloc[0] == 0 and levels.is_monotonic_increasing and set(levels) == {0, 1, 2}
    assert metrics["final_level"] == 2
    held_out = evaluate_run(tmp_path, load_params(ROOT / "params.yaml").evaluation)["by_level"]
    assert held_out["0"]["greedy"]["success"] >= 0.9  # the easy level is not forgotten (replay)
    # success on the full task is measured on top-level episodes alone, from the first one on
    curve = pd.read_csv(tmp_path / "curve.csv")
    before_top = curve[curve["level"] < 2]
    assert before_top["rolling_success_top"].isna().all() and before_top["rolling_success"].gt(0.5).any()
    last_below_top = int(before_top["env_steps"].iloc[-1])  # level 2 began after this row
    assert metrics["steps_to_0.5"] is not None and metrics["steps_to_0.5"] > last_below_top


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
