"""`wmil bench`: medians and ranges over seeds, with runs that never got there ranked last."""

from __future__ import annotations

from conftest import PARAMS_PATH

from wmil.bench.training import _spread, run_to_mastery
from wmil.config import load_params
from wmil.training.trainer import Trainer


def test_a_run_that_never_got_there_ranks_last_and_hides_the_max():
    assert _spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "reached": 3, "runs": 3,
                                        "per_seed": [3.0, 1.0, 2.0]}
    assert _spread([3.0, None, 1.0]) | {"per_seed": None} == {"median": 3.0, "min": 1.0, "max": None, "reached": 2,
                                                               "runs": 3, "per_seed": None}
    assert _spread([None, None, 1.0])["median"] is None  # most seeds never got there: no median


def test_mastery_is_measured_after_every_update_and_regret_counts_every_failure(tmp_path):
    params = load_params(PARAMS_PATH)
    mastered = run_to_mastery(Trainer(params.run_config("mvp", "pattern_echo", 0), tmp_path / "a"))
    assert mastered["reached_0.99"] and mastered["steps_to_0.9"] < mastered["env_steps"] < 10_000  # stops at 99%
    assert 0 < mastered["failures_to_0.99"] < mastered["env_steps"]
    short = run_to_mastery(Trainer(params.run_config("mvp", "pattern_echo", 0, {"training": {"max_steps": 1000}}),
                                   tmp_path / "b"))
    assert not short["reached_0.99"] and short["steps_to_0.9"] is None and short["env_steps"] == 1000
    assert short["failures_to_0.99"] > 0.5 * 1000  # near chance: most of the budget's episodes failed


def test_tune_ranks_every_setting_of_the_recorded_grid_on_tuning_seeds_only(capsys):
    """`wmil bench --tune`: every grid setting on every task and the first tuning seeds; a setting
    whose runs reach 90% sooner (relative to the budget) ranks first, one that never does last."""
    import dataclasses

    import pytest

    from wmil.bench.tuning import tune
    from wmil.config import Tuning
    from wmil.errors import ConfigError

    params = load_params(PARAMS_PATH)
    # the MVP at a 4,000-step budget: lr 0.005 (its own) reaches 90%, lr 1e-5 cannot move
    grid = Tuning("mvp", 1, {"algorithm.lr": (1e-5, 0.005), "training.max_steps": (4000,)})
    report = tune(dataclasses.replace(params, tuning={"mvp": grid}), "mvp", jobs=1)
    best, worst = report["settings"]
    assert best["setting"] == {"algorithm.lr": 0.005, "training.max_steps": 4000}
    assert best["runs"][0]["seed"] == params.tuning_seeds[0] and best["runs"][0]["steps_to_0.9"] < 4000
    assert best["score"] == best["runs"][0]["steps_to_0.9"] / 4000
    assert worst["runs"][0]["steps_to_0.9"] is None and 1.0 <= worst["score"] <= 2.0  # 2 - its final success
    assert "winner: algorithm.lr=0.005, training.max_steps=4000" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"--tune 'ppo'.*tuned: \['mvp'\]"):
        tune(dataclasses.replace(params, tuning={"mvp": grid}), "ppo")
