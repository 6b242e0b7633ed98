"""Per experiment x task: every seed's final metrics and their medians (``results/metrics``)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pandas as pd

from wmil.config import Params

HEADLINE = ("final_rolling_success", "steps_to_0.9", "final_level")
CURVE_FIELDS = ("env_steps", "level", "rolling_success", "entropy", "world_model_mse")


def run_dirs(params: Params, runs_root: Path):
    """(experiment, task, seed, run directory) of every run that params.yaml defines."""
    for exp in params.experiments.values():
        for task in exp.tasks:
            for seed in params.seeds:
                yield exp.name, task, seed, Path(runs_root) / exp.name / task / f"seed{seed}"


def curves(params: Params, runs_root: Path) -> pd.DataFrame:
    """Every run's learning curve in one tidy table (DVC plot data)."""
    frames = [pd.read_csv(d / "curve.csv", usecols=list(CURVE_FIELDS)).assign(experiment=e, task=t, seed=s)
              for e, t, s, d in run_dirs(params, runs_root)]
    return pd.concat(frames, ignore_index=True)[["experiment", "task", "seed", *CURVE_FIELDS]]


def summarize(params: Params, runs_root: Path) -> dict[str, Any]:
    """Reads ``metrics.json`` of every run that params.yaml defines; a missing one is an error."""
    runs: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for exp, task, seed, run_dir in run_dirs(params, runs_root):
        path = run_dir / "metrics.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: run not finished (metrics.json missing)")
        runs.setdefault((exp, task), {})[seed] = json.loads(path.read_text())
    out: dict[str, Any] = {}
    for (exp, task), seeds in runs.items():
        metrics = list(seeds.values())
        entry = {key: median_and_seeds([m[key] for m in metrics]) for key in HEADLINE}
        entry["greedy_success_by_level"] = {
            level: median_and_seeds([m["greedy_success_by_level"][level] for m in metrics])
            for level in metrics[0]["greedy_success_by_level"]}
        out.setdefault(exp, {})[task] = entry
    return out


def median_and_seeds(values: list[float | None]) -> dict[str, Any]:
    """The median over seeds (None if any seed has no value, e.g. never reached 90%) and the values."""
    reached = [v for v in values if v is not None]
    return {"median": statistics.median(reached) if len(reached) == len(values) else None, "per_seed": values}
