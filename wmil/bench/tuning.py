"""``wmil bench --tune EXPERIMENT``: the recorded search that chose some of an experiment's settings.

Every setting of ``params.tuning[EXPERIMENT].grid`` trains on each of the experiment's tasks and
the first ``seeds`` of ``tuning_seeds`` (never a reported seed), each run until its rolling success
on the full task reaches 90% or its budget runs out. A run's cost is its env steps to 90% over the
budget; one that never got there costs ``2 - s`` (``s``: its final rolling success), so it ranks
behind every run that did, and by how close it came. A curriculum's runs also print the env steps
at which each level began. A setting's score is its mean cost over tasks
and seeds; the lowest wins. No file is written but ``--out``: the winner goes into params.yaml by hand,
with the scores beside it.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
from typing import Any

from wmil.config import Params, setting_overrides
from wmil.errors import ConfigError
from wmil.results import STEPS_TO_90


def _run(job: tuple[Params, str, str, int, dict[str, Any]]) -> dict[str, Any]:
    """One tuning run (in a worker process): env steps to 90% and the final rolling success."""
    import torch

    from wmil.training.trainer import Trainer

    torch.set_num_threads(1)
    params, experiment, task, seed, setting = job
    config = params.run_config(experiment, task, seed, setting_overrides(setting))
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir)
        with trainer:
            for _ in trainer.iterations():
                if trainer.recorder.steps_to[STEPS_TO_90] is not None:
                    break
        steps = trainer.recorder.steps_to[STEPS_TO_90]
        final = trainer.recorder.full_task_success() or 0.0
        climb = None if trainer.curriculum is None else list(trainer.curriculum.entered)
    budget = config.training.max_steps
    return {"task": task, "seed": seed, STEPS_TO_90: steps, "final_success": final,
            "cost": steps / budget if steps is not None else 2.0 - final, "level_entered_at": climb}


def tune(params: Params, experiment: str, jobs: int = 1) -> dict[str, Any]:
    """Every setting's runs and score, best first; prints one line per setting."""
    if experiment not in params.tuning:
        raise ConfigError(f"--tune {experiment!r}: params.yaml has no tuning.{experiment}; tuned: {sorted(params.tuning)}")
    tuning = params.tuning[experiment]
    settings = tuning.settings()
    tasks = params.experiments[experiment].tasks
    seeds = params.tuning_seeds[: tuning.seeds]
    work = [(params, experiment, task, seed, setting) for setting in settings for task in tasks for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        runs = pool.map(_run, work, chunksize=1)
    per_setting = len(tasks) * len(seeds)
    rows: list[dict[str, Any]] = []
    for i, setting in enumerate(settings):
        mine = runs[i * per_setting:(i + 1) * per_setting]
        by_task = {task: statistics.median(r["cost"] for r in mine if r["task"] == task) for task in tasks}
        rows.append({"setting": setting, "score": statistics.fmean(r["cost"] for r in mine),
                     "median_cost": by_task, "runs": mine})
    rows.sort(key=lambda r: r["score"])
    print(f"tuning {experiment}: {len(settings)} settings x {list(tasks)} x seeds {list(seeds)}; cost = env steps to "
          f"90% / budget (2 - final success when not reached); lower is better")
    for row in rows:
        values = ", ".join(f"{k}={v}" for k, v in row["setting"].items())
        per_task = "  ".join(f"{t} {c:.3f}" for t, c in row["median_cost"].items())
        reached = sum(r[STEPS_TO_90] is not None for r in row["runs"])
        print(f"{row['score']:.3f}  {values:<60} median cost: {per_task}  reached 90%: {reached}/{per_setting}")
        for r in row["runs"]:
            if r["level_entered_at"] is not None:  # a curriculum's climb: env steps at which each level began
                print(f"       {r['task']} seed {r['seed']}: levels entered at {r['level_entered_at']}, "
                      f"90% at {r[STEPS_TO_90]}")
    print(f"winner: {', '.join(f'{k}={v}' for k, v in rows[0]['setting'].items())}")
    return {"experiment": experiment, "seeds": list(seeds), "grid": {k: list(v) for k, v in tuning.grid.items()},
            "settings": rows}
