"""The floor baseline: a uniform random policy that never learns."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from wmil.config import AlgorithmConfig
from wmil.models.baby import BabyModel
from wmil.tasks.rules import Task
from wmil.training.buffer import RolloutBatch
from wmil.training.schedule import AT_START, Progress


class RandomPolicy:
    """Zeroes the action head, so the model's policy is exactly uniform over the actions, and
    never takes a gradient step: rollouts, logging and evaluation stay those of the method."""

    needs_value: ClassVar[bool] = False

    def __init__(self, model: BabyModel, config: AlgorithmConfig, task: Task, generator: torch.Generator,
                 target_ema: float = 1.0):
        with torch.no_grad():
            model.action_head.fc.weight.zero_()
            model.action_head.fc.bias.zero_()
        model.action_head.requires_grad_(False)
        self.entropy = float(torch.log(torch.tensor(float(task.num_actions))))

    def update(self, batch: RolloutBatch, progress: Progress = AT_START) -> dict[str, float]:
        return {"entropy": self.entropy}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
