"""The tasks: state slots, difficulty levels and the rule that names the correct action.

A state is a row of a ``LongTensor (n, num_slots)``. Its first slots describe the problem (they
differ per task); the rest are shared by every task and carry time and the consequence of the
previous action, so that the world model has something learnable to predict:

* ``step`` in ``0..T`` (only when episodes last ``T > 1`` steps): the fixed horizon is the end of
  the task, so the time left is part of the state and values need not be aliased across steps;
* ``last_action`` in ``0..A`` (``A`` = no action yet),
* ``feedback`` in ``{0: none yet, 1: wrong, 2: right}``.

One step is one answer, judged right (goal reward 1) or wrong (0). One episode is ``T`` steps on
one problem; after each answer the parent moves the problem on with :meth:`Task.next_problem` (a
deterministic function of state and action). An episode succeeds when every answer in it is right.

Each level enumerates its problems once as a table; generation samples rows uniformly. Every
problem's answer lies in ``0..A-1`` for every ``A >= 8``, so every task is solvable at every level.

Adding a task is one :class:`Task` subclass (its ``name``, ``problem_slots``, ``rule``,
``_enumerate`` and ``answer``; ``next_problem`` if the problem moves on) plus its entry in the
registry :data:`~wmil.tasks.registry.TASKS`: ``params.yaml`` validation and its schema,
:func:`make_task`, the CLI's ``--task`` and the Gymnasium id (``wmil/<ClassName less Task>-v0``)
all read the registry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property

import torch

from wmil.tasks.registry import TASKS

NUM_LEVELS = 3
MIN_ACTIONS = 8
FEEDBACK_NONE, FEEDBACK_WRONG, FEEDBACK_RIGHT = 0, 1, 2


def verdict_feedback(reward: torch.Tensor) -> torch.Tensor:
    """The feedback slot ``LongTensor (n,)`` that a parent's verdict ``reward (n,)`` shows."""
    return torch.where(reward > 0.5, FEEDBACK_RIGHT, FEEDBACK_WRONG)


@dataclass(frozen=True)
class Slot:
    name: str
    cardinality: int


class Task(ABC):
    """A task over ``num_actions`` arbitrary action symbols ``0..A-1``."""

    name: str

    def __init__(self, num_actions: int, episode_length: int = 1):
        if num_actions < MIN_ACTIONS:
            raise ValueError(f"num_actions={num_actions}: every task needs at least {MIN_ACTIONS} actions")
        if episode_length < 1:
            raise ValueError(f"episode_length={episode_length}: must be at least 1")
        self.num_actions = num_actions
        self.episode_length = episode_length

    @property
    @abstractmethod
    def problem_slots(self) -> tuple[Slot, ...]: ...

    @abstractmethod
    def rule(self) -> str:
        """The rule in words: what the problem slots mean and how the correct action follows."""

    @property
    def rule_card(self) -> str:
        """The task's whole rule in words for an LLM parent (every LLM prompt uses it): the
        actions, the rule, and what the history slots are. One source per task, next to the rule's
        code (:meth:`answer`), so that the two are read together."""
        history = ("last_action is the agent's previous answer in this episode (none before the first) and "
                   "feedback says whether it was right")
        if self.has_step_slot:
            history = f"step counts the answers given so far in this episode, {history}"
        return (f"The actions are the numbers 0 to {self.num_actions - 1}. {self.rule()} The state also shows "
                f"{history}; they never change which action is correct.")

    @abstractmethod
    def level_card(self, level: int) -> str:
        """Which problems ``level`` holds, in words (an LLM parent that makes the problems reads it;
        one source beside :meth:`_enumerate`, which says the same in code)."""

    @abstractmethod
    def _enumerate(self, level: int) -> torch.Tensor:
        """All problems of ``level`` as ``LongTensor (P, num_problem_slots)``."""

    @abstractmethod
    def answer(self, states: torch.Tensor) -> torch.Tensor:
        """The rule: correct action ``LongTensor (n,)`` for states ``(n, >= num_problem_slots)``."""

    def held_out(self, problems: torch.Tensor, split_seed: int) -> torch.Tensor:
        """Which ``problems (P, >= num_problem_slots)`` the split seeded by ``split_seed`` holds out
        of training, ``BoolTensor (P,)``: problems whose answers the rule determines from the ones
        trained on, so that success on them tells a rule from a lookup table. The choice is the
        same at every level (a problem held out at one level is held out wherever it occurs), and
        no transition from a training problem leads to a held-out one (:meth:`next_problem`).
        By default none is held out."""
        return torch.zeros(len(problems), dtype=torch.bool)

    def next_problem(self, states: torch.Tensor, actions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """Problem slots after answering ``actions`` where ``answers`` (the rule's) were right,
        ``(n, num_problem_slots)``. By default the problem stays on the table, so the next step
        asks again with the feedback in view."""
        return states[:, : self.num_problem_slots]

    @cached_property
    def slots(self) -> tuple[Slot, ...]:
        timed = (Slot("step", self.episode_length + 1),) if self.episode_length > 1 else ()
        return self.problem_slots + timed + (Slot("last_action", self.num_actions + 1), Slot("feedback", 3))

    @property
    def has_step_slot(self) -> bool:
        return self.episode_length > 1

    def slot_index(self, name: str) -> int:
        """Position of the slot called ``name`` in a state row."""
        for i, slot in enumerate(self.slots):
            if slot.name == name:
                return i
        raise ValueError(f"{self.name} has no slot {name!r}; slots: {[s.name for s in self.slots]}")

    @cached_property
    def step_slot(self) -> int:
        """Column of ``step`` (answers given so far); only episodes of ``T > 1`` steps have it."""
        if not self.has_step_slot:
            raise ValueError(f"{self.name} with episode_length=1 has no step slot")
        return self.slot_index("step")

    @cached_property
    def last_action_slot(self) -> int:
        """Column of ``last_action`` (``A`` = no action yet)."""
        return self.slot_index("last_action")

    @cached_property
    def feedback_slot(self) -> int:
        """Column of ``feedback`` (``FEEDBACK_NONE``, ``FEEDBACK_WRONG`` or ``FEEDBACK_RIGHT``)."""
        return self.slot_index("feedback")

    @property
    def num_slots(self) -> int:
        return len(self.slots)

    @property
    def num_problem_slots(self) -> int:
        return len(self.problem_slots)

    @cached_property
    def cardinalities(self) -> torch.Tensor:
        return torch.tensor([s.cardinality for s in self.slots])

    @property
    def one_hot_dim(self) -> int:
        """Width of the raw-state one-hot encoding that the world model predicts."""
        return int(self.cardinalities.sum())

    @cached_property
    def slot_offsets(self) -> torch.Tensor:
        """Start of each slot in the one-hot encoding, ``LongTensor (num_slots,)``."""
        return torch.cumsum(self.cardinalities, 0) - self.cardinalities

    def problems(self, level: int) -> torch.Tensor:
        if not 0 <= level < NUM_LEVELS:
            raise ValueError(f"level={level}: allowed 0..{NUM_LEVELS - 1}")
        return self._tables[level]

    @cached_property
    def _tables(self) -> tuple[torch.Tensor, ...]:
        tables = tuple(self._enumerate(level) for level in range(NUM_LEVELS))
        for level, table in enumerate(tables):
            answers = self.answer(table)
            if len(table) == 0 or answers.min() < 0 or answers.max() >= self.num_actions:
                raise AssertionError(f"{self.name} level {level} has an answer outside the actions")
        return tables

    def initial_states(self, problems: torch.Tensor) -> torch.Tensor:
        """Problems ``(n, num_problem_slots)`` with no action taken yet: ``(n, num_slots)``."""
        start = [0] * self.has_step_slot + [self.num_actions, FEEDBACK_NONE]
        return torch.cat([problems, torch.tensor(start).expand(problems.shape[0], len(start))], dim=1)

    def one_hot(self, states: torch.Tensor) -> torch.Tensor:
        """Raw-state target of the world model: ``FloatTensor (n, one_hot_dim)`` (Fix 2)."""
        out = torch.zeros(states.shape[0], self.one_hot_dim)
        out.scatter_(1, states + self.slot_offsets, 1.0)
        return out


class PatternEchoTask(Task):
    """``State: target``; the correct action is ``target`` itself.

    Levels (plan's target ranges, for 16 actions): 0 -> targets 0..4, 1 -> 0..8, 2 -> 0..A-1.
    """

    name = "pattern_echo"

    @property
    def problem_slots(self) -> tuple[Slot, ...]:
        return (Slot("target", self.num_actions),)

    def rule(self) -> str:
        return "The correct action is the number equal to the target."

    def _top(self, level: int) -> int:
        return min((4, 8, self.num_actions - 1)[level], self.num_actions - 1)

    def level_card(self, level: int) -> str:
        return f"The target is a number from 0 to {self._top(level)}."

    def _enumerate(self, level: int) -> torch.Tensor:
        return torch.arange(self._top(level) + 1).unsqueeze(1)

    def answer(self, states: torch.Tensor) -> torch.Tensor:
        return states[:, 0].clone()

    # held_out: none. An unseen target's answer is an action whose output weights were never
    # rewarded, and the input and output embeddings are untied, so no learner of this architecture
    # can answer it: PatternEcho tests association, not a rule that could generalise.


class SequenceNextTask(Task):
    """``State: seq_0, seq_1, seq_2`` (right-padded with the blank ``A``); answer the next term.

    The next term is ``last + (last - previous)`` modulo ``A`` (clock arithmetic, so that a
    continued sequence stays answerable); the action with that number is correct.
    Levels: 0 -> two terms counting up by one; 1 -> three terms counting up by one;
    2 -> three terms of any arithmetic progression (step of either sign) that stays in ``0..A-1``.
    In a multi-step episode the sequence moves on by its correct next term (the agent's answer when
    right, the parent's correction when wrong) and drops its oldest term, so every step asks for
    the following term. Appending a wrong answer instead would let the agent steer the sequence to
    a constant one (answer ``x`` twice) and then collect reward for repeating ``x``: a policy found
    exactly that exploit.
    """

    name = "sequence_next"
    length = 3

    @property
    def problem_slots(self) -> tuple[Slot, ...]:
        return tuple(Slot(f"seq_{i}", self.num_actions + 1) for i in range(self.length))

    def rule(self) -> str:
        A = self.num_actions
        return (f"seq_0, seq_1 and seq_2 are the terms of a sequence; blank means no term. The sequence moves by "
                f"the same step each time (the last term minus the one before it; the step can be negative). The "
                f"correct action is the next term: the last term plus the step, wrapped around modulo {A} (after "
                f"{A - 1} comes 0, before 0 comes {A - 1}).")

    def _steps(self, level: int) -> list[int]:
        A = self.num_actions
        return [1] if level < 2 else [d for d in range(-(A - 1) // 3, (A - 1) // 3 + 1) if d]

    def level_card(self, level: int) -> str:
        A, steps = self.num_actions, self._steps(level)
        if level == 0:
            return (f"seq_0 and seq_1 count up by one (seq_1 = seq_0 + 1), seq_2 is blank ({A}), and the next term "
                    f"seq_1 + 1 is at most {A - 1}.")
        if level == 1:
            return f"seq_0, seq_1 and seq_2 count up by one, and the next term seq_2 + 1 is at most {A - 1}."
        return (f"seq_0, seq_1 and seq_2 are three terms (none blank) that move by the same step, a step from "
                f"{min(steps)} to {max(steps)} other than 0, and the next term (seq_2 plus the step, not wrapped "
                f"around) also lies in 0..{A - 1}.")

    def _enumerate(self, level: int) -> torch.Tensor:
        A = self.num_actions
        terms = (2, 3, 3)[level]
        steps = self._steps(level)
        rows = []
        for d in steps:
            for a in range(A):
                seq = [a + i * d for i in range(terms + 1)]  # the last one is the answer
                if all(0 <= x < A for x in seq):
                    rows.append(seq[:terms] + [A] * (self.length - terms))
        return torch.tensor(rows)

    def answer(self, states: torch.Tensor) -> torch.Tensor:
        blank = states[:, 2] == self.num_actions
        last = torch.where(blank, states[:, 1], states[:, 2])
        prev = torch.where(blank, states[:, 0], states[:, 1])
        return (2 * last - prev) % self.num_actions

    def step_of(self, problems: torch.Tensor) -> torch.Tensor:
        """Each sequence's step modulo ``A``, ``LongTensor (P,)``; a continuation keeps its step."""
        blank = problems[:, 2] == self.num_actions
        last = torch.where(blank, problems[:, 1], problems[:, 2])
        prev = torch.where(blank, problems[:, 0], problems[:, 1])
        return (last - prev) % self.num_actions

    def held_out_step(self, split_seed: int) -> int:
        """The one step the split holds out: a sign and a magnitude from 2 to one below the largest
        (the largest has the fewest problems at level 2; 2 itself where it is the largest, A < 14),
        drawn from ``split_seed``. Step 1 is never
        held out (levels 0 and 1 have no other), and the opposite step stays in training, so both
        the magnitude and the sign have been seen."""
        top = max(self._steps(NUM_LEVELS - 1))
        magnitudes = list(range(2, max(2, top - 1) + 1))
        g = torch.Generator().manual_seed(split_seed)
        magnitude = magnitudes[int(torch.randint(len(magnitudes), (1,), generator=g))]
        return magnitude * (1 if int(torch.randint(2, (1,), generator=g)) else -1)

    def held_out(self, problems: torch.Tensor, split_seed: int) -> torch.Tensor:
        """Every sequence of one step (:meth:`held_out_step`): a sequence moves on within its
        step's orbit (modulo ``A``), so its continuations are held out with it and no training
        episode ever reaches one; the answer is the same ``2 * last - previous`` rule."""
        return self.step_of(problems) == self.held_out_step(split_seed) % self.num_actions

    def next_problem(self, states: torch.Tensor, actions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        blank = states[:, 2] == self.num_actions
        return torch.stack([
            states[:, 1],
            torch.where(blank, answers, states[:, 2]),
            torch.where(blank, states[:, 2], answers),
        ], dim=1)


class ConditionalTask(Task):
    """``State: rule, shape (4), color (0 blue, 1 red), size (0 small, 1 large)``.

    ``rule`` tells how many conditions apply (it equals the level). The correct action is
    ``shape`` (1 condition); plus 4 if red (2 conditions); and, nested under red, a large object
    reverses the shape order: ``7 - shape`` (3 conditions). Answers lie in ``0..7``; attributes that
    a rule ignores are distractors.
    """

    name = "conditional"

    @property
    def problem_slots(self) -> tuple[Slot, ...]:
        return (Slot("rule", NUM_LEVELS), Slot("shape", 4), Slot("color", 2), Slot("size", 2))

    def rule(self) -> str:
        return ("shape is 0 to 3, color is 0 (blue) or 1 (red), size is 0 (small) or 1 (large), and rule (0, 1 or "
                "2) says which of them count. With rule 0 the correct action is the shape. With rule 1 it is the "
                "shape, plus 4 if the color is red. With rule 2 it is as with rule 1, except that a large red "
                "object gives 7 minus the shape.")

    def level_card(self, level: int) -> str:
        return f"rule is {level}; shape, color and size may take any of their values."

    def _enumerate(self, level: int) -> torch.Tensor:
        grid = torch.cartesian_prod(torch.arange(4), torch.arange(2), torch.arange(2))
        return torch.cat([torch.full((len(grid), 1), level), grid], dim=1)

    def answer(self, states: torch.Tensor) -> torch.Tensor:
        rule, shape, red, large = states[:, 0], states[:, 1], states[:, 2], states[:, 3]
        uses_color = (rule >= 1) & (red == 1)
        reversed_ = (rule >= 2) & (red == 1) & (large == 1)
        return torch.where(reversed_, 7 - shape, shape + 4 * uses_color)

    def held_out_shapes(self, split_seed: int) -> torch.Tensor:
        """The shape held out for each (colour, size) group ``2 * color + size``, ``LongTensor (4,)``:
        a permutation drawn from ``split_seed`` (a Latin square), so every shape is held out in one
        group and trained in the other three, and every group trains three shapes."""
        return torch.randperm(4, generator=torch.Generator().manual_seed(split_seed))

    def held_out(self, problems: torch.Tensor, split_seed: int) -> torch.Tensor:
        """One (shape, colour, size) combination per colour and size group (:meth:`held_out_shapes`),
        at every rule: its answer follows from what training shows, the shape's value from the
        shape in the other groups and the group's effect (plus 4, or 7 minus) from its other
        shapes; a lookup table has never seen it. The problem never moves on, so no training
        episode reaches it."""
        group = 2 * problems[:, 2] + problems[:, 3]
        return problems[:, 1] == self.held_out_shapes(split_seed)[group]


def make_task(name: str, num_actions: int, episode_length: int = 1) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {sorted(TASKS)}")
    return TASKS[name](num_actions, episode_length)
