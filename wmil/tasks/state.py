"""Views of one state row and of the action space (the plan's ``State`` and ``ActionSpace``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmil.tasks.rules import FEEDBACK_NONE, FEEDBACK_RIGHT, Task

_FEEDBACK_WORDS = {FEEDBACK_NONE: "none yet", 1: "wrong", FEEDBACK_RIGHT: "right"}


@dataclass(frozen=True)
class State:
    """One state: slot name -> integer value, in the task's slot order."""

    task: Task
    attributes: dict[str, int]

    @classmethod
    def from_tensor(cls, task: Task, row: torch.Tensor) -> State:
        values = row.tolist()
        if len(values) != task.num_slots:
            raise ValueError(f"state row has {len(values)} slots; {task.name} has {task.num_slots}")
        return cls(task, {slot.name: int(v) for slot, v in zip(task.slots, values)})

    def to_tensor(self) -> torch.Tensor:
        """``LongTensor (num_slots,)``: the raw state the model reads."""
        return torch.tensor([self.attributes[s.name] for s in self.task.slots])

    def to_prompt(self) -> str:
        """The state as plain text for an LLM parent (``target=5, last_action=none, feedback=none
        yet``): blanks and 'no action yet' are spelled out; the task's rule card explains them."""
        A = self.task.num_actions
        parts = []
        for slot in self.task.problem_slots:
            value = self.attributes[slot.name]
            parts.append(f"{slot.name}={'blank' if value == A and slot.cardinality == A + 1 else value}")
        if self.task.has_step_slot:
            parts.append(f"step={self.attributes['step']} of {self.task.episode_length}")
        last = self.attributes["last_action"]
        parts.append(f"last_action={'none' if last == A else last}")
        parts.append(f"feedback={_FEEDBACK_WORDS[self.attributes['feedback']]}")
        return ", ".join(parts)


class ActionSpace:
    """Actions are the integers ``0..size-1`` with no meaning attached; the baby learns one."""

    def __init__(self, size: int = 16, generator: torch.Generator | None = None):
        self.size = size
        self.generator = generator

    def sample(self, n: int | None = None) -> int | torch.Tensor:
        """One action as ``int``, or ``LongTensor (n,)`` uniform samples."""
        out = torch.randint(self.size, (1 if n is None else n,), generator=self.generator)
        return int(out) if n is None else out

    def contains(self, action: int) -> bool:
        return isinstance(action, int) and 0 <= action < self.size
