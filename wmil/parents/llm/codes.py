"""Exact integer codes of a task's rows: rows with equal codes ask the LLM the same question, so a
batch is reduced to its distinct codes before anything is looked up or sent."""

from __future__ import annotations

import numpy as np
import torch

from wmil.tasks.rules import NUM_LEVELS, Task


class RowCodes:
    """Each state, or (state, action) row, as one int64 in mixed radix (the slots in order, then
    the action); and each problem's index in its level's table."""

    def __init__(self, task: Task):
        radix = [s.cardinality for s in task.slots] + [task.num_actions]
        if int(np.prod(radix, dtype=object)) >= 2**62:
            raise ValueError(f"{task.name}: state space too large for int64 row codes")
        self._weights = torch.from_numpy(np.cumprod([1] + radix[:-1], dtype=np.int64))
        self._num_problem_slots = P = task.num_problem_slots
        # per level: a problem's code (its slots weighted as in a state) -> its row in the level's table
        self._problem_index = [
            {int(c): i for i, c in enumerate((task.problems(lv) * self._weights[:P]).sum(1).tolist())}
            for lv in range(NUM_LEVELS)]

    def states(self, states: torch.Tensor) -> torch.Tensor:
        """Each state ``(n, num_slots)`` as one exact int64, ``LongTensor (n,)``."""
        return (states * self._weights[:-1]).sum(1)

    def rows(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Each (state, action) row as one exact int64, ``LongTensor (n,)``."""
        return self.states(states) + actions * self._weights[-1]

    def problem_index(self, levels: torch.Tensor, problems: torch.Tensor) -> torch.Tensor:
        """Each problem ``(n, num_problem_slots)``'s row in the table of its level ``(n,)``,
        ``LongTensor (n,)``; every problem must be one of its level's."""
        codes = (problems * self._weights[:self._num_problem_slots]).sum(1)
        return torch.tensor([self._problem_index[lv][c] for lv, c in zip(levels.tolist(), codes.tolist())])
