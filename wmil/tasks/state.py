"""The plan's ``State``: one state row as named slots, and in words for an LLM parent.

The plan's ``ActionSpace`` is no class: actions are the integers ``0..A-1`` (``Task.num_actions``),
sampled where they are used (the policy, the random baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmil.tasks.rules import FEEDBACK_NONE, FEEDBACK_RIGHT, FEEDBACK_WRONG, Task

_FEEDBACK_WORDS = {FEEDBACK_NONE: "none yet", FEEDBACK_WRONG: "wrong", FEEDBACK_RIGHT: "right"}


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
