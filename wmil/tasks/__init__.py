"""The rules of the world: each task's problems, answers and transitions, and the state layout.

:data:`TASKS` is the registry of tasks (name -> class; :mod:`wmil.tasks.registry` says how to add
one). Importing this package loads only the registry; the rest (and torch) loads on first use, so
that the configuration and the CLI start without torch."""

from __future__ import annotations

import importlib
from typing import Any

from wmil.tasks.registry import TASKS

_LAZY = {"ConditionalTask": "rules", "PatternEchoTask": "rules", "SequenceNextTask": "rules", "Task": "rules",
         "make_task": "rules", "State": "state"}

__all__ = ["ConditionalTask", "PatternEchoTask", "SequenceNextTask", "State", "TASKS", "Task", "make_task"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"wmil.tasks.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'wmil.tasks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
