"""``wmil evaluate``: held-out evaluation of a finished run directory, written to ``eval.json``.

Held-out means episodes from a seed stream disjoint from every training stream (the problems come
from the same small tables), judged by the task's rules whoever the parent was during training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from wmil.config import EvaluationConfig, RunConfig, parse_run_config
from wmil.evaluation.evaluate import Evaluator
from wmil.jobs import check_result
from wmil.models.baby import BabyModel
from wmil.parents.deterministic import DeterministicParent
from wmil.seeding import held_out_seed
from wmil.tasks.rules import NUM_LEVELS, Task, make_task


def load_model(model_path: Path) -> tuple[RunConfig, Task, BabyModel]:
    """A run's final weights (``model.pt``, loaded with ``weights_only=True``) as a model, with
    the run's config and the task it was built for."""
    saved = torch.load(check_result(model_path), weights_only=True)
    config = parse_run_config(saved["config"], str(model_path))
    task = make_task(config.env.task, config.env.num_actions, config.env.episode_length)
    model = BabyModel(task, config.model, value_head=any(k.startswith("value_head.") for k in saved["model"]))
    model.load_state_dict(saved["model"])
    return config, task, model.eval()


def evaluate_run(run_dir: Path, settings: EvaluationConfig) -> dict[str, Any]:
    """``eval.json`` of a finished run: greedy and sampled success, entropy and world-model MSE per
    level on ``settings.episodes`` held-out episodes; the headline numbers are the full task's
    (the top level), which is what every experiment is trained for."""
    config, task, model = load_model(Path(run_dir) / "model.pt")
    seed = held_out_seed(settings.seed, config.seed)
    evaluator = Evaluator(DeterministicParent(task), config.env.episode_length, settings.episodes, seed)
    levels = {mode: evaluator.evaluate_levels(model, greedy=mode == "greedy") for mode in ("greedy", "sampled")}
    top = str(NUM_LEVELS - 1)
    return {
        "experiment": config.experiment, "task": config.env.task, "seed": config.seed,
        "episodes_per_level": settings.episodes, "level": NUM_LEVELS - 1,
        "success_greedy": levels["greedy"][top]["success"],
        "success_sampled": levels["sampled"][top]["success"],
        "entropy": levels["sampled"][top]["entropy"],
        "world_model_mse": levels["sampled"][top]["world_model_mse"],
        "by_level": {level: {mode: levels[mode][level] for mode in levels} for level in levels["greedy"]},
    }
