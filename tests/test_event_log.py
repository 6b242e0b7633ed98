"""TensorBoard scalars of a run: the same numbers as its curve, one event per step, also after a resume."""

from __future__ import annotations

import json
import math

import pandas as pd
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wmil.config import load_params
from wmil.training.event_log import EVENTS_DIR, TAGS
from wmil.training.trainer import Trainer

from conftest import PARAMS_PATH


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
