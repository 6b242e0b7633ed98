"""Evaluation of a policy on fresh episodes: success (greedy or sampled), world-model MSE, entropy.

``wmil evaluate`` runs :func:`evaluate_run` on a finished run directory and writes ``eval.json``:
held-out episodes from a seed stream disjoint from training's, judged by the task's rules whoever
the parent was during training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wmil.config import EvaluationConfig, RunConfig, parse_run_config
from wmil.envs.env import VectorEnv
from wmil.envs.tasks import NUM_LEVELS, make_task
from wmil.models.baby import BabyModel
from wmil.parents.base import Parent
from wmil.parents.deterministic import DeterministicParent
from wmil.training.rewards import prediction_mse

#: Keeps the held-out stream apart from the training streams (``seed_streams``) of the same seed.
HELD_OUT_STREAM = 0x4E1D


class Evaluator:
    """Plays ``episodes`` fresh episodes per level from its own seed stream (independent of
    training's; the problems themselves come from the same small tables) and measures the
    model; nothing here changes the model."""

    def __init__(self, parent: Parent, episode_length: int, episodes: int, seed: int):
        self.parent = parent
        self.episode_length = episode_length
        self.episodes = episodes
        self.seed = seed

    @torch.inference_mode()
    def evaluate(self, model: BabyModel, level: int, greedy: bool = True) -> dict[str, float]:
        """Episode success (every step right), per-step success, entropy (nats) and the world
        model's raw next-state MSE on ``level``. Greedy breaks exact ties uniformly at random, so
        a uniform policy acts uniformly (not always action 0)."""
        task = self.parent.task
        stream = np.random.SeedSequence([self.seed, level]).generate_state(1, dtype=np.uint64)[0]
        generator = torch.Generator().manual_seed(int(stream >> 1))
        env = VectorEnv(self.parent, self.episodes, self.episode_length, generator)
        states = env.reset(level)
        all_right = torch.ones(self.episodes, dtype=torch.bool)
        step_success, entropy, mse = [], [], []
        for _ in range(self.episode_length):
            h, logits, _ = model(states)
            log_probs = F.log_softmax(logits, -1)
            if greedy:
                ties = logits == logits.max(-1, keepdim=True).values
                actions = torch.multinomial(ties.float(), 1, generator=generator).squeeze(1)
            else:
                actions = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(1)
            step = env.step(actions)
            all_right &= step.success
            step_success.append(step.success.float().mean())
            entropy.append(-(log_probs.exp() * log_probs).sum(-1).mean())
            if model.world_model is not None:
                predicted = model.predict_next_state(h, actions)
                mse.append(prediction_mse(task, predicted, step.next_states).mean())
            states = step.next_states
        return {
            "success": float(all_right.float().mean()),
            "step_success": float(torch.stack(step_success).mean()),
            "entropy": float(torch.stack(entropy).mean()),
            "world_model_mse": float(torch.stack(mse).mean()) if mse else None,
        }

    def evaluate_levels(self, model: BabyModel, greedy: bool = True) -> dict[str, dict[str, float]]:
        return {str(level): self.evaluate(model, level, greedy) for level in range(NUM_LEVELS)}


def load_model(model_path: Path) -> tuple[RunConfig, BabyModel]:
    """A run's final weights (``model.pt``, loaded with ``weights_only=True``) as a model."""
    saved = torch.load(model_path, weights_only=True)
    config = parse_run_config(saved["config"], str(model_path))
    task = make_task(config.env.task, config.env.num_actions, config.env.episode_length)
    model = BabyModel(task, config.model, value_head=any(k.startswith("value_head.") for k in saved["model"]))
    model.load_state_dict(saved["model"])
    return config, model.eval()


def evaluate_run(run_dir: Path, settings: EvaluationConfig) -> dict[str, Any]:
    """``eval.json`` of a finished run: greedy and sampled success, entropy and world-model MSE per
    level on ``settings.episodes`` held-out episodes; the headline numbers are the full task's
    (the top level), which is what every experiment is trained for."""
    torch.set_num_threads(1)
    config, model = load_model(Path(run_dir) / "model.pt")
    task = make_task(config.env.task, config.env.num_actions, config.env.episode_length)
    seed = int(np.random.SeedSequence([settings.seed, HELD_OUT_STREAM, config.seed]).generate_state(1)[0])
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
