"""Finished runs in Weights & Biases (``wmil wandb``; the optional ``wandb`` extra).

The same scalars as the TensorBoard event files (the tags of :data:`wmil.training.event_log.TAGS`),
read back from a finished run's files: training never depends on W&B, nothing it writes enters a
metric or a hash (``.dvcignore``), and a run exported twice is two W&B runs of the same bytes, never
one run with repeated steps.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import yaml

from wmil import layout, results
from wmil.errors import ConfigError
from wmil.jobs import check_result
from wmil.training.event_log import TAGS


def _scalars(row: dict[str, str | float]) -> dict[str, float]:
    """The tagged, finite scalars of one curve or timing row."""
    return {TAGS[column]: float(value) for column, value in row.items()
            if column in TAGS and value not in (None, "") and not math.isnan(float(value))}


def log_to_wandb(run_dirs: list[Path], project: str, mode: str | None = None) -> list[str]:
    """One W&B run per finished run directory (named ``experiment/task/seed<k>``, grouped by
    experiment, its resolved config as the W&B config), holding every row at its ``env_steps``.
    ``mode``: W&B's (``online``, ``offline``; default: its own, e.g. ``WANDB_MODE``); the key is
    W&B's own login or ``WANDB_API_KEY``, never read or written here. Returns the W&B run ids."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("wmil wandb: the wandb package is not installed; pip install -e '.[wandb]'") from None
    run_dirs = [Path(d) for d in run_dirs]
    finished = {}
    for run_dir in run_dirs:  # every one before logging any: no half-exported set
        if not results.metrics_file(run_dir).exists():
            raise ConfigError(f"{run_dir}: not a finished run (no {layout.RUN_METRICS})")
        # a failed job's record is no result: both refuse one
        finished[run_dir] = results.read_metrics(run_dir)
        check_result(run_dir / "curve.csv")
    ids = []
    for run_dir in run_dirs:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        with open(run_dir / "curve.csv", newline="") as f:
            curve = list(csv.DictReader(f))
        rates = json.loads((run_dir / "timing.json").read_text())["curve"]
        steps: dict[int, dict[str, float]] = {}
        for row in [*curve, *rates]:
            steps.setdefault(int(float(row["env_steps"])), {}).update(_scalars(row))
        name = f"{config['experiment']}/{config['env']['task']}/seed{config['seed']}"
        run = wandb.init(project=project, name=name, config=config, dir=str(run_dir), mode=mode,
                         group=config["experiment"], job_type=config["env"]["task"], reinit="create_new")
        with run:
            run.define_metric("env_steps")
            run.define_metric("*", step_metric="env_steps")
            for step in sorted(steps):
                run.log({"env_steps": step, **steps[step]})
            run.summary.update(finished[run_dir])
        ids.append(run.id)
    return ids
