"""Parents own the rules of the world: they generate problems, judge actions and move the state."""

from __future__ import annotations

import torch

from wmil.config import ParentConfig
from wmil.parents.base import Parent, Split
from wmil.parents.deterministic import DeterministicParent
from wmil.parents.noisy import RewardNoise
from wmil.tasks.rules import Task

PARENT_NAMES = ("deterministic", "llm")


def make_parent(config: ParentConfig, task: Task, generator: torch.Generator | None = None, server=None,
                split: Split | None = None) -> Parent:
    """The parent ``config.name`` for ``task``, wrapped in :class:`RewardNoise` when it has an
    error rate above 0 (its errors are drawn from ``generator``). An LLM parent uses ``server`` (a
    running :class:`~wmil.parents.llm.server.LocalLLMServer`) if given. ``split``: the part of the
    problems it draws (a training run's: its training problems)."""
    if config.name == "deterministic":
        parent: Parent = DeterministicParent(task, split)
    elif config.name == "llm":
        from wmil.parents.llm.parent import ParentLLM  # the openai client loads only when needed

        parent = ParentLLM(task, config.llm, server=server, split=split)
    else:
        raise ValueError(f"unknown parent {config.name!r}; allowed: {list(PARENT_NAMES)}")
    if config.false_positive_rate > 0 or config.false_negative_rate > 0:
        if generator is None:
            raise ValueError("a parent with error rates needs a generator for its errors")
        parent = RewardNoise(parent, config.false_positive_rate, config.false_negative_rate, generator)
    return parent


__all__ = ["Parent", "Split", "DeterministicParent", "RewardNoise", "PARENT_NAMES", "make_parent"]
