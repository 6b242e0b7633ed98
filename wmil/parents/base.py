"""The parent interface: every call works on whole batches of states."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from wmil.tasks.rules import NUM_LEVELS, Task


class Parent(ABC):
    """Owns a task's rules. States are ``LongTensor (n, num_slots)``, actions ``LongTensor (n,)``."""

    def __init__(self, task: Task):
        self.task = task

    def generate(self, level: int | torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` fresh problems, no action taken, each sampled uniformly from its level's table.
        ``level`` is one level for all, or ``LongTensor (n,)`` with a level per problem."""
        if isinstance(level, int):
            table = self.problem_table(level)
            return self.task.initial_states(table[torch.randint(len(table), (n,), generator=generator)])
        problems = torch.empty(n, self.task.num_problem_slots, dtype=torch.long)
        for lv in range(NUM_LEVELS):  # a fixed order keeps the draws reproducible
            mask = level == lv
            if bool(mask.any()):
                table = self.problem_table(lv)
                problems[mask] = table[torch.randint(len(table), (int(mask.sum()),), generator=generator)]
        return self.task.initial_states(problems)

    def problem_table(self, level: int) -> torch.Tensor:
        """The problems :meth:`generate` samples at ``level``, ``LongTensor (P, num_problem_slots)``:
        the task's table (an LLM parent may make its own)."""
        return self.task.problems(level)

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

    def stats(self) -> dict[str, float]:
        """Counters for the run's metrics (requests, cache hits, fallbacks, flips, ...)."""
        return {}

    def state_dict(self) -> dict:
        """Whatever a resumed run needs to continue exactly (random streams, counters)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def close(self) -> None:
        """Release what the parent holds (a server, a connection); safe to call twice."""
