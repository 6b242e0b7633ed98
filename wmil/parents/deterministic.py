"""The rule-based parent: exact rewards and transitions from the task's rule, as tensor ops."""

from __future__ import annotations

import torch

from wmil.parents.base import Parent
from wmil.tasks.rules import verdict_feedback


class DeterministicParent(Parent):
    """Reward 1 for the task's correct action and 0 otherwise. The next state is the task's next
    problem, one step later, recording the action taken and whether it was right."""

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        task = self.task
        answers = task.answer(states)
        right = actions == answers
        nxt = states.clone()
        nxt[:, : task.num_problem_slots] = task.next_problem(states, actions, answers)
        if task.has_step_slot:
            nxt[:, task.step_slot] += 1
        nxt[:, task.last_action_slot] = actions
        nxt[:, task.feedback_slot] = verdict_feedback(right.float())
        return right.float(), nxt
