"""Evaluation of a policy on fresh episodes: success (greedy or sampled), world-model MSE, entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wmil.envs.env import VectorEnv
from wmil.models.baby import BabyModel
from wmil.parents.base import Parent
from wmil.results import EpisodeScores
from wmil.seeding import level_seed
from wmil.training.entropy import policy_entropy
from wmil.training.rewards import prediction_mse


class Evaluator:
    """Plays ``episodes`` fresh episodes per level from its own seed stream (independent of
    training's), drawn by ``parent`` (its split's part of the problems), and measures the model;
    nothing here changes the model."""

    def __init__(self, parent: Parent, episode_length: int, episodes: int, seed: int, next_problem: str = "rules"):
        self.parent = parent
        self.episode_length = episode_length
        self.episodes = episodes
        self.seed = seed
        self.next_problem = next_problem

    @torch.inference_mode()
    def evaluate(self, model: BabyModel, level: int, greedy: bool = True) -> EpisodeScores:
        """Episode success (every step right), per-step success, entropy (nats) and the world
        model's raw next-state MSE on ``level``. Greedy breaks exact ties uniformly at random, so
        a uniform policy acts uniformly (not always action 0)."""
        task = self.parent.task
        generator = torch.Generator().manual_seed(level_seed(self.seed, level))
        env = VectorEnv(self.parent, self.episodes, self.episode_length, generator, self.next_problem)
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
            entropy.append(policy_entropy(log_probs))
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
