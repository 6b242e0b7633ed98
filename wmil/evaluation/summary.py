"""Per experiment x task: every seed's final metrics and their medians (``results/metrics``)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from wmil.config import Params

HEADLINE = ("final_rolling_success", "steps_to_0.9", "final_level")


def summarize(params: Params, runs_root: Path) -> dict[str, Any]:
    """Reads ``metrics.json`` of every run that params.yaml defines; a missing one is an error."""
    out: dict[str, Any] = {}
    for exp in params.experiments.values():
        for task in exp.tasks:
            seeds = {}
            for seed in params.seeds:
                path = Path(runs_root) / exp.name / task / f"seed{seed}" / "metrics.json"
                if not path.exists():
                    raise FileNotFoundError(f"{path}: run not finished (metrics.json missing)")
                seeds[seed] = json.loads(path.read_text())
            entry: dict[str, Any] = {}
            for key in HEADLINE:
                values = [m[key] for m in seeds.values()]
                reached = [v for v in values if v is not None]
                entry[key] = {"median": statistics.median(reached) if len(reached) == len(values) else None,
                              "per_seed": values}
            levels = next(iter(seeds.values()))["greedy_success_by_level"]
            entry["greedy_success_by_level"] = {
                level: {"median": statistics.median(m["greedy_success_by_level"][level] for m in seeds.values()),
                        "per_seed": [m["greedy_success_by_level"][level] for m in seeds.values()]}
                for level in levels}
            out.setdefault(exp.name, {})[task] = entry
    return out
