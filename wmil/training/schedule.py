"""Hyperparameter schedules over a run, as a function of its progress (env steps / budget)."""

from __future__ import annotations


def scheduled(value: float, schedule: str, progress: float) -> float:
    """``value`` at ``progress`` in ``[0, 1]``: ``constant``, or ``linear`` from ``value`` to 0."""
    if schedule == "constant":
        return value
    if schedule == "linear":
        return value * max(0.0, 1.0 - progress)
    raise ValueError(f"unknown schedule {schedule!r}; allowed: ['constant', 'linear']")
