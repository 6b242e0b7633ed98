"""The batched environment (the hot path) and the plan's single-episode ``SymbolicEnv`` view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from wmil.tasks.state import State

if TYPE_CHECKING:
    from wmil.parents.base import Parent


@dataclass
class StepResult:
    """One step of ``n`` episodes.

    ``next_states`` carry each action's consequence (the world model's target) even where the
    episode ended; ``done`` is the time limit only (Fix 1); ``success`` is the task's rule (the
    action is the correct one), whatever the parent said: a noisy or LLM parent may misjudge.
    """

    next_states: torch.Tensor  # LongTensor (n, num_slots)
    goal: torch.Tensor  # FloatTensor (n,)
    done: torch.Tensor  # BoolTensor (n,)
    success: torch.Tensor  # BoolTensor (n,)


@dataclass
class RewardVector:
    """Reward components, each a float (one step) or a ``FloatTensor (n,)`` (a batch).

    * ``goal``: the parent's judgement in ``[0, 1]``;
    * ``pred``: intrinsic, ``exp(-MSE) * pred_scale`` of the world model's raw next-state prediction;
    * ``cons``: 1 where the world model foresaw the parent's feedback (right or wrong) for the
      action taken, else 0: the baby's expectation was consistent with the parent's verdict.
    """

    goal: float | torch.Tensor = 0.0
    pred: float | torch.Tensor = 0.0
    cons: float | torch.Tensor = 0.0

    def scalar(self, weights: tuple[float, float, float]) -> float | torch.Tensor:
        """Weighted sum ``goal, pred, cons`` (weights from params ``rewards``)."""
        return weights[0] * self.goal + weights[1] * self.pred + weights[2] * self.cons


class VectorEnv:
    """``num_envs`` synchronous episodes of ``episode_length`` steps, problems drawn from
    ``generator``. After ``done`` the caller starts the next episodes with :meth:`reset` (so that a
    curriculum can choose their level).

    ``next_problem``: after each answer the parent's next state (``rules``), or the same with its
    problem replaced by a fresh draw at the episode's level (``fresh``): the next state then shows
    the verdict and the action taken, never the answer (SequenceNext's rules move the sequence on
    by the correct term)."""

    def __init__(self, parent: Parent, num_envs: int, episode_length: int, generator: torch.Generator,
                 next_problem: str = "rules"):
        if next_problem not in ("rules", "fresh"):
            raise ValueError(f"next_problem={next_problem!r}; allowed: ['rules', 'fresh']")
        self.fresh = next_problem == "fresh"
        self.parent = parent
        self.task = parent.task
        self.num_envs = num_envs
        self.episode_length = episode_length
        self.generator = generator
        self.level: int | torch.Tensor = 0  # one for all, or LongTensor (n,): the last reset's
        self.t = episode_length  # no episode running until reset()
        self.states = torch.empty(0, self.task.num_slots, dtype=torch.long)

    def reset(self, level: int | torch.Tensor | None = None) -> torch.Tensor:
        """Start ``num_envs`` new episodes at ``level`` (one for all, or ``LongTensor (n,)``; by
        default the last one given); returns their states ``LongTensor (n, num_slots)``."""
        if level is not None:
            self.level = level
        self.states = self.parent.generate(self.level, self.num_envs, self.generator)
        self.t = 0
        return self.states

    def step(self, actions: torch.Tensor) -> StepResult:
        if self.t >= self.episode_length:
            raise RuntimeError("the episodes are over (time limit); call reset() first")
        goal, next_states = self.parent.step(self.states, actions)
        success = actions == self.task.answer(self.states)
        self.t += 1
        if self.fresh:  # the last step's too: the world model learns from every next state
            problems = self.parent.generate(self.level, self.num_envs, self.generator)
            next_states[:, : self.task.num_problem_slots] = problems[:, : self.task.num_problem_slots]
        self.states = next_states
        done = torch.full((self.num_envs,), self.t >= self.episode_length)
        return StepResult(next_states, goal, done, success)

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "t": self.t, "states": self.states.clone(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.level, self.t = state["level"], int(state["t"])
        self.states = state["states"].clone()
        self.generator.set_state(state["generator"])


class SymbolicEnv:
    """The plan's single-episode API: ``reset(difficulty) -> State`` and
    ``step(action) -> (next_state, RewardVector, done, info)``, a view over one ``VectorEnv`` row.
    ``info["success"]``: this answer was right; ``info["episode_success"]``: every answer of the
    episode so far was right, the project's success of an episode (the plan's sketch had any answer)."""

    def __init__(self, parent: Parent, max_steps: int = 1, seed: int = 0):
        if parent.task.episode_length != max_steps:
            raise ValueError(f"max_steps={max_steps} but the task was built for episode_length="
                             f"{parent.task.episode_length}")
        self.task = parent.task
        self.max_steps = max_steps
        self._env = VectorEnv(parent, 1, max_steps, torch.Generator().manual_seed(seed))
        self.state: State | None = None
        self.step_count = 0
        self.episode_success = False

    def reset(self, difficulty: int = 0) -> State:
        self.state = State.from_tensor(self.task, self._env.reset(difficulty)[0])
        self.step_count = 0
        self.episode_success = False
        return self.state

    def step(self, action: int):
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        if not 0 <= action < self.task.num_actions:
            raise ValueError(f"action {action} outside 0..{self.task.num_actions - 1}")
        result = self._env.step(torch.tensor([action]))
        next_state = State.from_tensor(self.task, result.next_states[0])
        self.step_count += 1
        success = bool(result.success[0])
        self.episode_success = success and (self.step_count == 1 or self.episode_success)
        done = bool(result.done[0])
        self.state = None if done else next_state
        info = {"success": success, "episode_success": self.episode_success, "step": self.step_count}
        return next_state, RewardVector(goal=float(result.goal[0])), done, info
