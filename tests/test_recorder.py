"""The run recorder: thresholds and the regret are checked after every update, at the full task only."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from wmil.results import MASTERY
from wmil.training.recorder import RunRecorder


def record(recorder: RunRecorder, successes: list[bool], levels: list[int], env_steps: int) -> None:
    """One update's rollout: an episode per entry, at the given levels."""
    zeros = torch.zeros(len(successes))
    buffer = SimpleNamespace(episode_successes=lambda: torch.tensor(successes), goal=zeros, pred=zeros, cons=zeros,
                             rewards=zeros, world_model_mse=zeros)
    recorder.record({}, buffer, torch.tensor(levels), max(levels), env_steps, world_model=False)


def test_steps_and_failures_to_mastery_are_taken_at_the_update_that_reaches_it():
    recorder = RunRecorder(success_window=10)
    record(recorder, [False] * 6 + [True] * 4, [2] * 10, 10)  # window full, 0.4
    assert recorder.steps_to == {"steps_to_0.5": None, "steps_to_0.9": None, f"steps_to_{MASTERY:g}": None}
    record(recorder, [True] * 10, [2] * 10, 20)               # 1.0: every threshold at once
    record(recorder, [False] * 3 + [True] * 7, [2] * 10, 30)  # after mastery: counted, not as regret
    assert recorder.steps_to == {"steps_to_0.5": 20, "steps_to_0.9": 20, "steps_to_0.99": 20}
    assert (recorder.failures_to_mastery, recorder.failures, recorder.episodes) == (6, 9, 30)


def test_easier_levels_add_failures_but_never_mastery():
    recorder = RunRecorder(success_window=4)
    record(recorder, [True] * 8 + [False] * 2, [0] * 8 + [2] * 2, 10)  # only 2 full-task episodes: window not full
    assert recorder.full_task_success() is None and recorder.failures == 2
    record(recorder, [True] * 4, [2] * 4, 14)
    assert recorder.full_task_success() == 1.0 and recorder.steps_to["steps_to_0.99"] == 14
    assert recorder.failures_to_mastery == 2


def test_a_resumed_recorder_continues_the_count():
    recorder = RunRecorder(success_window=4)
    record(recorder, [False, True, False, True], [2] * 4, 4)
    other = RunRecorder(success_window=4)
    other.load_state_dict(recorder.state_dict())
    for r in (recorder, other):
        record(r, [True] * 4, [2] * 4, 8)
    assert other.failures == recorder.failures == 2 and other.failures_to_mastery == recorder.failures_to_mastery == 2
