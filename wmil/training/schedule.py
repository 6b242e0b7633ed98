"""Hyperparameter schedules over a run, as a function of its progress through the budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from wmil.config import AlgorithmConfig


@dataclass(frozen=True)
class Progress:
    """How far a run is, in ``[0, 1]``: ``overall``, env steps over the budget; ``at_top``, the
    env steps since the run first played the top level over the budget left at that point (0
    before it; without a curriculum the run starts there, so it equals ``overall``)."""

    overall: float = 0.0
    at_top: float = 0.0


#: A run that has not begun: every schedule at its configured value.
AT_START = Progress()

SCHEDULES = ("constant", "linear", "linear_from_top")


def scheduled(value: float, schedule: str, progress: Progress) -> float:
    """``value`` at ``progress``: ``constant``; ``linear`` from ``value`` to 0 at the budget; or
    ``linear_from_top``: constant while a curriculum climbs, then linear to 0 at the budget from
    the step it reaches the top level, so that the full task still gets a useful rate however
    late it gets there (the same as ``linear`` for a run without a curriculum)."""
    if schedule == "constant":
        return value
    if schedule == "linear":
        return value * max(0.0, 1.0 - progress.overall)
    if schedule == "linear_from_top":
        return value * max(0.0, 1.0 - progress.at_top)
    raise ValueError(f"unknown schedule {schedule!r}; allowed: {list(SCHEDULES)}")


class Rates(NamedTuple):
    """The scheduled values of one update."""

    lr: float            # the optimizer's learning rate
    entropy_coef: float  # the weight of the entropy bonus in the loss


def apply_schedules(optimizer: torch.optim.Optimizer, config: AlgorithmConfig, progress: Progress) -> Rates:
    """The learning rate and entropy bonus of ``config``'s schedules at ``progress``; sets the
    learning rate on every parameter group of ``optimizer``."""
    lr = scheduled(config.lr, config.lr_schedule, progress)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return Rates(lr, scheduled(config.entropy_coef, config.entropy_schedule, progress))
