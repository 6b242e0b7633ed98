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
