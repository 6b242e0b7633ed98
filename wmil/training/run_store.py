"""The run store: every finished, evaluated pipeline run kept apart from DVC's outputs, so that no
DVC command can lose it.

``dvc exp run`` checks out the outputs that ``dvc.lock`` names before it runs anything, forcibly,
and deletes an output directory whose recorded version is not in the local cache (a ``dvc.lock``
reverted to one made on another machine, say): every finished run in ``results/runs`` would be
gone. So each pipeline run, once evaluated, is also hard-linked (no second copy on disk) into
``results/run-store/<experiment>/<task>/seed<k>/<identity>/``, where the identity hashes everything
its files depend on (the settings the run reads, the code it runs, the evaluation settings and
code). Files are only ever replaced, never rewritten in place (atomic writes, DVC's checkout), so a
link keeps the version it was made from. ``wmil restore-runs``, the first command of the DVC stage,
links a run back wherever its files are missing and the store holds one of the same identity; the
restored files keep their dates, so Snakemake sees them as the outputs it made and reruns only the
jobs a change reaches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

from wmil import layout, results
from wmil.config import EvaluationConfig, Params, RunConfig
from wmil.provenance import evaluation_code_hash, training_code_hash

#: The files of a finished, evaluated run (the train rule's outputs): all present, or it is not restored.
RUN_OUTPUTS = (layout.RUN_METRICS, "curve.csv", "model.pt", layout.RUN_EVALUATION)


def identity(config: RunConfig, evaluation: EvaluationConfig) -> str:
    """What a finished, evaluated run's files are a function of."""
    settings = {k: v for k, v in dataclasses.asdict(evaluation).items() if k in ("episodes", "seed")}
    body = [config.config_hash(), training_code_hash(config.algorithm.name, config.parent.name),
            settings, evaluation_code_hash()]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _stored(config: RunConfig, evaluation: EvaluationConfig, store: Path) -> Path:
    return layout.run_dir(config.experiment, config.env.task, config.seed, store) / identity(config, evaluation)


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file under ``source`` to the same place under ``target`` (replacing it)."""
    for path in source.rglob("*"):
        inside = path.relative_to(source)
        if path.is_file() and not any(part.startswith(".") for part in inside.parts):  # no writer's temporary
            dest = target / inside
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.link")
            tmp.unlink(missing_ok=True)
            os.link(path, tmp)
            os.replace(tmp, dest)


def keep(run_dir: Path, config: RunConfig, evaluation: EvaluationConfig, store: Path) -> Path:
    """Link the finished, evaluated run in ``run_dir`` into the ``store``; returns its folder there."""
    missing = [name for name in RUN_OUTPUTS if not (run_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{run_dir}: not a finished, evaluated run (no {', '.join(missing)})")
    final = _stored(config, evaluation, store)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _link_tree(run_dir, tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def restore_runs(params: Params, runs_root: Path = layout.RUNS) -> list[Path]:
    """Link back, from the store beside ``runs_root``, every run of ``params`` that lacks one of its
    files and was kept with the identity it has now; returns the run directories restored."""
    store, restored = layout.run_store(runs_root), []
    for experiment, spec in params.experiments.items():
        for task in spec.tasks:
            for seed in params.seeds_of(experiment):
                run_dir = layout.run_dir(experiment, task, seed, runs_root)
                if all((run_dir / name).exists() for name in RUN_OUTPUTS):
                    continue
                kept = _stored(params.run_config(experiment, task, seed), params.evaluation, store)
                if results.metrics_file(kept).exists():
                    _link_tree(kept, run_dir)
                    restored.append(run_dir)
    return restored
