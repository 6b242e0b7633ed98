"""A parent that errs on purpose: known false-positive and false-negative rates.

It answers "how good must the parent be?": a wrong answer is called right with probability
``false_positive_rate`` (FPR), a right one wrong with ``false_negative_rate`` (FNR), each verdict
drawn afresh (random errors, unlike an LLM at temperature 0, whose errors on a state repeat). The
verdict is what the baby sees, as reward and as the feedback slot of the next state, while episode
success is still judged by the task's rule (see ``VectorEnv.step``), so the curves measure what
the baby really learned. J = 1 - FPR - FNR is the verdicts' informativeness: the expected reward
gap between a right and a wrong answer.
"""

from __future__ import annotations

import torch

from wmil.parents.base import Parent
from wmil.tasks.rules import verdict_feedback


class RewardNoise(Parent):
    """Wraps ``parent`` (whose verdicts are right); draws its errors from its own ``generator``
    (part of the run's state), one uniform number per verdict."""

    def __init__(self, parent: Parent, false_positive_rate: float, false_negative_rate: float,
                 generator: torch.Generator):
        super().__init__(parent.task)
        self.parent = parent
        self.false_positive_rate = false_positive_rate
        self.false_negative_rate = false_negative_rate
        self.generator = generator
        self.flips = 0

    def generate(self, level: int | torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.parent.generate(level, n, generator)

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reward, next_states = self.parent.step(states, actions)
        draw = torch.rand(len(actions), generator=self.generator)
        flip = draw < torch.where(reward > 0.5, self.false_negative_rate, self.false_positive_rate)
        self.flips += int(flip.sum())
        reward = torch.where(flip, 1.0 - reward, reward)
        next_states = next_states.clone()
        next_states[:, self.task.feedback_slot] = verdict_feedback(reward)
        return reward, next_states

    def stats(self) -> dict[str, float | None]:
        return {**self.parent.stats(), "reward_flips": self.flips}

    def state_dict(self) -> dict:
        return {"parent": self.parent.state_dict(), "generator": self.generator.get_state(), "flips": self.flips}

    def load_state_dict(self, state: dict) -> None:
        self.parent.load_state_dict(state["parent"])
        self.generator.set_state(state["generator"])
        self.flips = int(state["flips"])

    def close(self) -> None:
        self.parent.close()
