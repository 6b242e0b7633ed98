"""The algorithms the trainer drives, behind one small interface."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch

from wmil.config import AlgorithmConfig
from wmil.models.baby import BabyModel
from wmil.tasks.rules import Task
from wmil.training.buffer import RolloutBatch
from wmil.training.ppo import PPO
from wmil.training.random_policy import RandomPolicy
from wmil.training.reinforce import REINFORCE
from wmil.training.schedule import AT_START, Progress


class Algorithm(Protocol):
    """One update per rollout; its own state (optimizer, baselines, generators) for checkpoints.

    Built as ``cls(model, config, task, generator, target_ema)``: ``generator`` for its own random
    draws, ``target_ema`` the decay of the model's target copy per gradient step (if it has one)."""

    needs_value: ClassVar[bool]  # whether the model needs a value head

    def __init__(self, model: BabyModel, config: AlgorithmConfig, task: Task, generator: torch.Generator,
                 target_ema: float = 1.0) -> None: ...

    def update(self, batch: RolloutBatch, progress: Progress = AT_START) -> dict[str, float]:
        """Learn from ``batch``; ``progress`` through the budget sets the schedules. Returns
        the logged scalars (the learning curve's columns it fills)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


ALGORITHMS: dict[str, type[Algorithm]] = {"reinforce": REINFORCE, "ppo": PPO, "random": RandomPolicy}
