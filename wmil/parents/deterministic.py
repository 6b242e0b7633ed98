"""The rule-based parent: exact rewards and transitions from the task's rule, as tensor ops."""

from __future__ import annotations

import torch

from wmil.envs.tasks import FEEDBACK_RIGHT, FEEDBACK_WRONG
from wmil.parents.base import Parent


class DeterministicParent(Parent):
    """Reward 1 for the task's correct action and 0 otherwise; the problem stays on the table and
    the next state records the action taken and whether it was right."""

    def reward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.step(states, actions)[0]

    def transition(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.step(states, actions)[1]

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        right = actions == self.task.answer(states)
        nxt = states.clone()
        nxt[:, -2] = actions
        nxt[:, -1] = torch.where(right, FEEDBACK_RIGHT, FEEDBACK_WRONG)
        return right.float(), nxt

    def action_distribution(self, states: torch.Tensor) -> torch.Tensor:
        answers = self.task.answer(states)
        return torch.nn.functional.one_hot(answers, self.task.num_actions).float()
