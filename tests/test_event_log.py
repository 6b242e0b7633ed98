"""TensorBoard scalars of a run: the same numbers as its curve, one event per step, also after a resume."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd
import pytest
from conftest import PARAMS_PATH
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wmil.config import load_params
from wmil.errors import ConfigError
from wmil.training.event_log import EVENTS_DIR, TAGS
from wmil.training.trainer import Trainer


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / EVENTS_DIR))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_event_files_hold_the_curve_and_timing_rows(tmp_path):
    config = load_params(PARAMS_PATH).run_config("mvp", "pattern_echo", 0, {"training": {"max_steps": 1500, "save_every": 500}})
    Trainer(config, tmp_path / "a").train(progress=False)
    curve = pd.read_csv(tmp_path / "a" / "curve.csv")
    logged = scalars(tmp_path / "a")
    for column, tag in TAGS.items():
        if column in curve and curve[column].notna().any():
            expected = [(int(s), float(v)) for s, v in zip(curve["env_steps"], curve[column]) if not math.isnan(v)]
            got = logged[tag]
            assert [s for s, _ in got] == [s for s, _ in expected], tag  # one event per row: none twice
            assert all(math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-7) for (_, g), (_, e) in zip(got, expected)), tag
    assert not any(tag in logged for column, tag in TAGS.items() if column in curve and curve[column].isna().all())
    timing = json.loads((tmp_path / "a" / "timing.json").read_text())["curve"]
    assert [s for s, _ in logged["time/steps_per_s"]] == [r["env_steps"] for r in timing]
    assert {t.split("/")[0] for t in logged} == {"charts", "losses", "reward", "time"}

    # killed after its second checkpoint and resumed: still one event per step
    partial = load_params(PARAMS_PATH).run_config("mvp", "pattern_echo", 0, {"training": {"max_steps": 1000, "save_every": 500}})
    Trainer(partial, tmp_path / "b").train(progress=False)
    Trainer(config, tmp_path / "b").train(resume="must", progress=False)
    assert scalars(tmp_path / "b")["charts/rolling_success"] == logged["charts/rolling_success"]


def test_wandb_gets_every_row_of_a_finished_run_at_its_env_steps(tmp_path, monkeypatch):
    pytest.importorskip("wandb")  # the optional `wandb` extra
    from wandb.sdk.wandb_run import Run

    from wmil.evaluation.wandb_export import log_to_wandb

    config = load_params(PARAMS_PATH).run_config("mvp", "pattern_echo", 0, {"training": {"max_steps": 750}})
    Trainer(config, tmp_path / "run").train(progress=False)
    logged: list[dict] = []
    real_log = Run.log
    monkeypatch.setattr(Run, "log", lambda self, data, *a, **k: (logged.append(dict(data)), real_log(self, data, *a, **k)))
    monkeypatch.setenv("WANDB_SILENT", "true")
    [run_id] = log_to_wandb([tmp_path / "run"], "wmil-test", mode="offline")  # real W&B, no network
    assert list((tmp_path / "run" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    curve = pd.read_csv(tmp_path / "run" / "curve.csv")
    assert [row["env_steps"] for row in logged] == curve["env_steps"].tolist()  # one W&B step per curve row
    assert [row["charts/rolling_success"] for row in logged] == pytest.approx(curve["rolling_success"].tolist())
    assert all("time/steps_per_s" in row for row in logged) and "losses/value_loss" not in logged[0]  # NaN: skipped
    with pytest.raises(ConfigError, match="not a finished run"):
        log_to_wandb([tmp_path], "wmil-test", mode="offline")
    from wmil.errors import MissingResult
    from wmil.jobs import guard

    guard("train x", tmp_path / "x.log", [tmp_path / "failed/metrics.json", tmp_path / "failed/curve.csv"],
          [sys.executable, "-c", "raise SystemExit(1)"])
    with pytest.raises(MissingResult, match="job 'train x' failed"):  # a failure record is no run to export
        log_to_wandb([tmp_path / "run", tmp_path / "failed"], "wmil-test", mode="offline")
    assert len(list((tmp_path / "run" / "wandb").glob("offline-run-*"))) == 1  # nothing exported before the check


def test_wandb_missing_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    from wmil.evaluation.wandb_export import log_to_wandb

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"wandb package is not installed; pip install -e '\.\[wandb\]'"):
        log_to_wandb([tmp_path], "p")
