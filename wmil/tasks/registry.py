"""The task registry: every task's name and the class that implements it.

Everything that names tasks reads :data:`TASKS`: ``params.yaml`` validation and its schema, the
CLI's ``--task``, :func:`~wmil.tasks.rules.make_task` and the Gymnasium ids. Adding a task is its
class (a :class:`~wmil.tasks.rules.Task` subclass with that ``name``) plus one entry below.

An entry names its class as ``"module:Class"`` (as Gymnasium's entry points do) and looking it up
imports it: the names are known without importing torch, so the configuration and the CLI start
without it. A class may also be registered directly (``TASKS[cls.name] = cls``).

The rules (:func:`~wmil.tasks.rules.make_task`) import this module, never the other way round: the
registry knows a class by its entry and its ``name`` alone (typed ``type[Any]``), and
:func:`~wmil.tasks.rules.make_task` gives the typed :class:`~wmil.tasks.rules.Task`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any


class TaskRegistry(MutableMapping[str, type[Any]]):
    """Task name -> task class, in the order of registration; classes load on first lookup."""

    def __init__(self, entries: dict[str, str | type[Any]]):
        self._entries: dict[str, str | type[Any]] = dict(entries)

    def __getitem__(self, name: str) -> type[Any]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            if getattr(entry, "name", None) != name:
                raise TypeError(f"task {name!r}: {module}:{attr} is named {getattr(entry, 'name', None)!r}")
            self._entries[name] = entry
        return entry

    def __setitem__(self, name: str, cls: type[Any]) -> None:
        if getattr(cls, "name", None) != name:
            raise ValueError(f"task {name!r}: its class {cls.__name__} is named {getattr(cls, 'name', None)!r}")
        self._entries[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:  # without loading the class
        return name in self._entries

    def __repr__(self) -> str:
        return f"TaskRegistry({list(self._entries)})"


TASKS = TaskRegistry({
    "pattern_echo": "wmil.tasks.rules:PatternEchoTask",
    "sequence_next": "wmil.tasks.rules:SequenceNextTask",
    "conditional": "wmil.tasks.rules:ConditionalTask",
})
