"""Gymnasium view of the batched core: ``gymnasium.make("wmil/PatternEcho-v0")`` and friends.

Importing this module registers an id for every task of the registry; ``import wmil`` does not (the
package's ``__init__`` is the foundation, below the tasks that name the ids), so either import it
first or name it in the id, which Gymnasium then imports itself:
``gymnasium.make("wmil.envs.gym:wmil/PatternEcho-v0")``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from wmil.envs.env import VectorEnv
from wmil.parents import DeterministicParent
from wmil.tasks.registry import TASKS
from wmil.tasks.rules import Task, make_task


def env_id(task: type[Task]) -> str:
    """The Gymnasium id of a task class: ``PatternEchoTask`` -> ``wmil/PatternEcho-v0``."""
    return f"wmil/{task.__name__.removesuffix('Task')}-v0"


def env_ids() -> dict[str, str]:
    """Gymnasium id -> task name, for every task in the registry (:data:`wmil.tasks.TASKS`)."""
    return {env_id(cls): name for name, cls in TASKS.items()}


class WmilGymEnv(gymnasium.Env):
    """One episode of a WMIL task. Observations are the raw state (``MultiDiscrete``); the reward
    is the parent's goal reward; the episode ends after ``episode_length`` steps and only then
    (Fix 1), reported as ``terminated`` because the fixed horizon is the end of the task.
    ``info["success"]`` says whether this step's action was right."""

    metadata = {"render_modes": []}

    def __init__(self, task: str = "pattern_echo", num_actions: int = 16, episode_length: int = 1,
                 level: int = 2):
        self.task = make_task(task, num_actions, episode_length)
        self.level = level
        self._env = VectorEnv(DeterministicParent(self.task), 1, episode_length, torch.Generator())
        self.observation_space = spaces.MultiDiscrete(self.task.cardinalities.numpy())
        self.action_space = spaces.Discrete(num_actions)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._env.generator.manual_seed(int(self.np_random.integers(2**62)))
        level = (options or {}).get("level", self.level)
        obs = self._env.reset(level)[0].numpy().astype(np.int64)
        return obs, {"level": level}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        result = self._env.step(torch.tensor([int(action)]))
        info = {"success": bool(result.success[0])}
        obs = result.next_states[0].numpy().astype(np.int64)
        return obs, float(result.goal[0]), bool(result.done[0]), False, info


def register_envs() -> None:
    """Register every task of the registry not yet registered (importing this module does it; call
    it again after adding a task at run time)."""
    for id_, task in env_ids().items():
        if id_ not in gymnasium.registry:
            gymnasium.register(id_, entry_point=f"{__name__}:{WmilGymEnv.__name__}", kwargs={"task": task})


register_envs()
