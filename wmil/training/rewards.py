"""Vector-valued rewards (Fix 4: components stay separate until the policy gradient)."""

from __future__ import annotations

from typing import cast

import torch

from wmil.config import RewardConfig
from wmil.envs.env import RewardVector
from wmil.tasks.rules import Task


def prediction_mse(task: Task, predicted: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE ``(n,)`` of predicted raw next states ``(n, width)`` against the actual ones
    ``(n, num_slots)``: the world model's error, loss and reward all come from here. ``width`` is
    ``one_hot_dim``, or fewer columns for a head that predicts the leading (problem) slots alone."""
    return ((predicted - task.one_hot(next_states)[:, : predicted.shape[-1]]) ** 2).mean(-1)


class RewardComputer:
    """Turns the parent's goal reward and the world model's prediction into a ``RewardVector``.

    With ``noise_rates = (FPR, FNR)`` (``rewards.noise_correction``) the goal reward that enters
    the scalar is the unbiased surrogate ``(r - FPR) / (1 - FPR - FNR)`` of the observed 0/1
    verdict ``r`` (Wang, Liu & Li, AAAI 2020): its expectation is the true reward. The logged
    ``goal`` stays the verdict the parent gave."""

    def __init__(self, config: RewardConfig, task: Task, noise_rates: tuple[float, float] | None = None):
        self.config = config
        self.task = task
        self.weights = (config.goal_weight, config.pred_weight, config.cons_weight)
        self.noise_rates = noise_rates

    def _prediction_reward(self, mse: torch.Tensor) -> torch.Tensor:
        """``exp(-MSE) * pred_scale`` per sample, ``(n,)``."""
        return torch.exp(-mse) * self.config.pred_scale

    def compute_consistency_reward(self, predicted: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        """1 where the arg-max of the predicted feedback slot equals the actual feedback, ``(n,)``;
        0 from a head that does not predict the feedback (the answer head)."""
        slot = self.task.feedback_slot
        start = int(self.task.slot_offsets[slot])
        end = start + self.task.slots[slot].cardinality
        if predicted.shape[-1] < end:
            return torch.zeros(len(predicted))
        return (predicted[:, start:end].argmax(-1) == next_states[:, slot]).float()

    def compute(self, goal: torch.Tensor, predicted: torch.Tensor | None,
                next_states: torch.Tensor) -> tuple[RewardVector, torch.Tensor | None]:
        """The reward components and the world model's per-sample MSE ``(n,)`` (None without one)."""
        if predicted is None:
            zeros = torch.zeros_like(goal)
            return RewardVector(goal, zeros, zeros), None
        mse = prediction_mse(self.task, predicted, next_states)
        pred = self._prediction_reward(mse)
        return RewardVector(goal, pred, self.compute_consistency_reward(predicted, next_states)), mse

    def scalar(self, reward: RewardVector) -> torch.Tensor:
        """The weighted reward ``(n,)`` of a batch's components (:meth:`compute`'s)."""
        if self.noise_rates is not None:
            fpr, fnr = self.noise_rates
            reward = RewardVector((reward.goal - fpr) / (1.0 - fpr - fnr), reward.pred, reward.cons)
        # RewardVector types a component as one step's float or a batch's tensor; a batch's are tensors
        return cast(torch.Tensor, reward.scalar(self.weights))
