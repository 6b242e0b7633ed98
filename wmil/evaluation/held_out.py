"""``wmil evaluate``: held-out evaluation of a finished run directory, written to ``eval.json``.

Episodes from a seed stream disjoint from every training stream, judged by the task's rules
whoever the parent was during training, on two parts of each level's problems: the run's
training problems (fresh episodes of problems it trained on) and its held-out problems, which
its training never drew nor reached (:meth:`~wmil.tasks.rules.Task.held_out`, split by the run's
seed). Success on the first is what it memorised or learned; on the second, whether it learned the
rule.
"""

from __future__ import annotations

from pathlib import Path

import torch

from wmil.config import EvaluationConfig, RunConfig, parse_run_config
from wmil.evaluation.evaluate import Evaluator
from wmil.jobs import check_result
from wmil.models.baby import BabyModel
from wmil.parents.base import Split
from wmil.parents.deterministic import DeterministicParent
from wmil.results import Evaluation, LevelEvaluation
from wmil.seeding import held_out_seed, split_seed
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


def held_out_problems(task: Task, run_seed: int, level: int) -> torch.Tensor:
    """The problems of ``level`` that the run with ``run_seed`` never trained on, ``(P, slots)``."""
    table = task.problems(level)
    return table[task.held_out(table, split_seed(run_seed))]


def evaluate_run(run_dir: Path, settings: EvaluationConfig) -> Evaluation:
    """``eval.json`` of a finished run: greedy and sampled success, entropy and world-model MSE per
    level on ``settings.episodes`` episodes of its training problems, and the same on its held-out
    problems (``held_out_*``; None where the task holds none out); the headline numbers are the
    full task's (the top level), which is what every experiment is trained for."""
    config, task, model = load_model(Path(run_dir) / "model.pt")
    seed, split = held_out_seed(settings.seed, config.seed), split_seed(config.seed)
    T, top = config.env.episode_length, NUM_LEVELS - 1
    training, held_out = (Evaluator(DeterministicParent(task, Split(split, part)), T, settings.episodes, seed,
                                    config.env.next_problem) for part in ("training", "held_out"))
    by_level: dict[str, LevelEvaluation] = {}
    for level in range(NUM_LEVELS):
        has_held_out = len(held_out_problems(task, config.seed, level)) > 0
        by_level[str(level)] = {
            "greedy": training.evaluate(model, level, greedy=True), "sampled": training.evaluate(model, level, greedy=False),
            "held_out_greedy": held_out.evaluate(model, level, greedy=True) if has_held_out else None,
            "held_out_sampled": held_out.evaluate(model, level, greedy=False) if has_held_out else None}
    at_top = by_level[str(top)]
    held_out_greedy, held_out_sampled = at_top["held_out_greedy"], at_top["held_out_sampled"]
    return {
        "experiment": config.experiment, "task": config.env.task, "seed": config.seed,
        "episodes_per_level": settings.episodes, "level": top,
        "success_greedy": at_top["greedy"]["success"],
        "success_sampled": at_top["sampled"]["success"],
        "entropy": at_top["sampled"]["entropy"],
        "world_model_mse": at_top["sampled"]["world_model_mse"],
        "held_out_success_greedy": None if held_out_greedy is None else held_out_greedy["success"],
        "held_out_success_sampled": None if held_out_sampled is None else held_out_sampled["success"],
        "held_out_problems": held_out_problems(task, config.seed, top).tolist(),
        "training_problems": len(task.problems(top)) - len(held_out_problems(task, config.seed, top)),
        "by_level": by_level,
    }
