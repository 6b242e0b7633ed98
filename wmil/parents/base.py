"""The parent interface: every call works on whole batches of states."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from wmil.envs.tasks import Task


class Parent(ABC):
    """Owns a task's rules. States are ``LongTensor (n, num_slots)``, actions ``LongTensor (n,)``."""

    def __init__(self, task: Task):
        self.task = task

    def generate(self, level: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` fresh problems of ``level``, sampled uniformly from its table, no action taken."""
        table = self.task.problems(level)
        rows = torch.randint(len(table), (n,), generator=generator)
        return self.task.initial_states(table[rows])

    @abstractmethod
    def reward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Goal reward ``FloatTensor (n,)`` in ``[0, 1]``: how right ``actions`` are in ``states``."""

    @abstractmethod
    def transition(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Next states ``LongTensor (n, num_slots)``: the problem with the action's consequence."""

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reward, next_states)`` in one call, so a parent can judge a batch once."""
        return self.reward(states, actions), self.transition(states, actions)

    @abstractmethod
    def action_distribution(self, states: torch.Tensor) -> torch.Tensor:
        """The parent's preferred actions as probabilities ``FloatTensor (n, A)``."""
