"""Parents own the rules of the world: they generate problems, judge actions and move the state."""

from __future__ import annotations

import torch

from wmil.config import ParentConfig
from wmil.envs.tasks import Task
from wmil.parents.base import Parent
from wmil.parents.deterministic import DeterministicParent
from wmil.parents.noisy import RewardNoise

PARENT_NAMES = ("deterministic", "llm")


def make_parent(config: ParentConfig, task: Task, generator: torch.Generator | None = None) -> Parent:
    """The parent ``config.name`` for ``task``, wrapped in reward noise when
    ``config.reward_flip_prob > 0`` (its flips are drawn from ``generator``)."""
    if config.name == "deterministic":
        parent: Parent = DeterministicParent(task)
    elif config.name == "llm":
        from wmil.parents.llm import ParentLLM  # the openai client loads only when needed

        parent = ParentLLM(task, config.llm)
    else:
        raise ValueError(f"unknown parent {config.name!r}; allowed: {list(PARENT_NAMES)}")
    if config.reward_flip_prob > 0:
        if generator is None:
            raise ValueError("parent.reward_flip_prob > 0 needs a generator for the flips")
        parent = RewardNoise(parent, config.reward_flip_prob, generator)
    return parent


__all__ = ["Parent", "DeterministicParent", "RewardNoise", "PARENT_NAMES", "make_parent"]
