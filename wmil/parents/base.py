"""The parent interface: every call works on whole batches of states."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch

from wmil.tasks.rules import NUM_LEVELS, Task

Part = Literal["training", "held_out"]


@dataclass(frozen=True)
class Split:
    """One part of every level's problems under the split seeded by ``seed``
    (:meth:`Task.held_out`): the ``training`` problems or the ``held_out`` ones."""

    seed: int
    part: Part

    def select(self, task: Task, table: torch.Tensor, level: int) -> torch.Tensor:
        """The rows of ``table (P, num_problem_slots)`` in this part; an error if none is."""
        held_out = task.held_out(table, self.seed)
        rows = table[held_out if self.part == "held_out" else ~held_out]
        if len(rows) == 0:
            raise ValueError(f"{task.name} level {level}: the split (seed {self.seed}) leaves no {self.part} problem")
        return rows


class Parent(ABC):
    """Owns a task's rules. States are ``LongTensor (n, num_slots)``, actions ``LongTensor (n,)``.
    ``split``: the part of each level's problems it draws (training: a run's parent; None: all)."""

    def __init__(self, task: Task, split: Split | None = None):
        self.task = task
        self.split = split
        self.held_out_replaced = 0  # problems an LLM made that the split holds out (kept_in_split)

    def generate(self, level: int | torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` fresh problems, no action taken, each sampled uniformly from its level's table
        (its part of it, under a split). ``level`` is one level for all, or ``LongTensor (n,)``
        with a level per problem."""
        if isinstance(level, int):
            table = self.drawn_table(level)
            return self.task.initial_states(table[torch.randint(len(table), (n,), generator=generator)])
        problems = torch.empty(n, self.task.num_problem_slots, dtype=torch.long)
        for lv in range(NUM_LEVELS):  # a fixed order keeps the draws reproducible
            mask = level == lv
            if bool(mask.any()):
                table = self.drawn_table(lv)
                problems[mask] = table[torch.randint(len(table), (int(mask.sum()),), generator=generator)]
        return self.task.initial_states(problems)

    def drawn_table(self, level: int) -> torch.Tensor:
        """The problems :meth:`generate` draws from at ``level``: :meth:`problem_table`, or the
        split's part of it."""
        table = self.problem_table(level)
        return table if self.split is None else self.split.select(self.task, table, level)

    def kept_in_split(self, made: torch.Tensor, rules: torch.Tensor) -> torch.Tensor:
        """Problems ``(n, num_problem_slots)`` that a parent other than the rules made (an LLM's next
        problem or new one), those the training split holds out replaced by the rules' own
        ``rules`` (which never lead from a training problem to a held-out one): whoever moves the
        world, training never reaches a held-out problem. Counts the replacements."""
        if self.split is None or self.split.part != "training":
            return made
        held = self.task.held_out(made, self.split.seed)
        self.held_out_replaced += int(held.sum())
        return torch.where(held.unsqueeze(1), rules, made)

    def problem_table(self, level: int) -> torch.Tensor:
        """The problems :meth:`generate` samples at ``level``, ``LongTensor (P, num_problem_slots)``:
        the task's table (an LLM parent may make its own)."""
        return self.task.problems(level)

    @abstractmethod
    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reward, next_states)`` of ``actions`` in ``states``, one judgement of the batch: the
        goal reward ``FloatTensor (n,)`` in ``[0, 1]`` (how right each action is) and the next
        states ``LongTensor (n, num_slots)`` (the problem with the action's consequence)."""

    def reward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The reward of :meth:`step`. It judges the batch anew: calling both this and
        :meth:`transition` judges twice (an LLM asks twice, a noisy parent draws twice)."""
        return self.step(states, actions)[0]

    def transition(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The next states of :meth:`step`, judged anew like :meth:`reward`."""
        return self.step(states, actions)[1]

    def action_distribution(self, states: torch.Tensor) -> torch.Tensor:
        """The parent's preferred actions as probabilities ``FloatTensor (n, A)``: the rules' correct
        action, one-hot (a parent knows the rules; none here has preferences of its own)."""
        return torch.nn.functional.one_hot(self.task.answer(states), self.task.num_actions).float()

    def stats(self) -> dict[str, float | None]:
        """Counters for the run's metrics (requests, cache hits, fallbacks, flips, ...); None: not
        measured (a latency when no request was sent)."""
        return {}

    def state_dict(self) -> dict:
        """Whatever a resumed run needs to continue exactly (random streams, counters)."""
        return {}

    def load_state_dict(self, state: dict) -> None:  # noqa: B027  # an optional hook: most parents keep no state
        """Continue from :meth:`state_dict`'s ``state``."""

    def close(self) -> None:  # noqa: B027  # an optional hook: most parents hold nothing
        """Release what the parent holds (a server, a connection); safe to call twice."""
