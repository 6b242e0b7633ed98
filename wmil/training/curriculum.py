"""Mastery curriculum: the level only rises, and only once the current level is mastered."""

from __future__ import annotations

from typing import Any

import torch


class SuccessWindow:
    """Success flags of the last ``size`` episodes, as a ring buffer."""

    def __init__(self, size: int):
        self.flags = torch.zeros(size, dtype=torch.bool)
        self.count = 0  # episodes pushed since the last clear

    def push(self, successes: torch.Tensor) -> None:
        size = len(self.flags)
        idx = (torch.arange(len(successes)) + self.count) % size
        self.flags[idx[-size:]] = successes[-size:]
        self.count += len(successes)

    @property
    def full(self) -> bool:
        return self.count >= len(self.flags)

    def rate(self) -> float:
        filled = min(self.count, len(self.flags))
        return int(self.flags[:filled].sum()) / filled if filled else 0.0  # exact: 90/100 is 0.9

    def clear(self) -> None:
        self.count = 0

    def state_dict(self) -> dict[str, Any]:
        return {"flags": self.flags.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.flags, self.count = state["flags"].clone(), int(state["count"])


class CurriculumManager:
    """Tracks the success of the last ``window`` episodes played at the current level; when that
    window is full and its success rate reaches ``mastery_threshold``, moves to the next level
    (up to ``max_level``) and starts a fresh window. It sees only success flags. A ``replay``
    share of each batch of new episodes goes back to a uniformly chosen easier level.
    ``entered[level]``: the env steps at which the run reached each level (None: not yet)."""

    def __init__(self, max_level: int, mastery_threshold: float, window: int, replay: float = 0.0,
                 initial_level: int = 0):
        self.level = initial_level
        self.max_level = max_level
        self.mastery_threshold = mastery_threshold
        self.replay = replay
        self.recent = SuccessWindow(window)
        self.entered: list[int | None] = [0 if lv == initial_level else None for lv in range(max_level + 1)]

    def episode_levels(self, n: int, generator: torch.Generator) -> int | torch.Tensor:
        """The level of each of ``n`` new episodes: the current one (an int), or ``LongTensor (n,)``
        with the replayed share at easier levels (drawn from ``generator``)."""
        if self.level == 0 or self.replay == 0:
            return self.level
        back = torch.rand(n, generator=generator) < self.replay
        return torch.where(back, torch.randint(self.level, (n,), generator=generator), torch.full((n,), self.level))

    def update(self, successes: torch.Tensor, env_steps: int = 0) -> bool:
        """Record episode successes ``BoolTensor (n,)`` played at the current level, ``env_steps``
        into the run; returns whether the level advanced (the next rollout plays the new one)."""
        self.recent.push(successes)
        if self.level < self.max_level and self.recent.full and self.recent.rate() >= self.mastery_threshold:
            self.level += 1
            self.entered[self.level] = env_steps
            self.recent.clear()
            return True
        return False

    def steps_per_level(self, env_steps: int) -> list[int]:
        """Env steps played while each level was the current one (replayed easier episodes
        included), ``env_steps`` into the run; 0 for a level never reached."""
        ends = [*(e for e in self.entered[1:]), None]
        return [0 if start is None else (env_steps if end is None else end) - start
                for start, end in zip(self.entered, ends)]

    def state_dict(self) -> dict[str, Any]:
        return {"level": self.level, "recent": self.recent.state_dict(), "entered": list(self.entered)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.level = int(state["level"])
        self.recent.load_state_dict(state["recent"])
        self.entered = list(state["entered"])
