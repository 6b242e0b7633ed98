"""Every random stream's seed, derived in one place from the seeds that params.yaml names.

A stream is named by a key of integers (a run's seed, a stream tag, a level, ...); NumPy's
``SeedSequence`` turns the key into independent seeds, so one stream never shifts another."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Tags that keep streams keyed by the same run seed apart.
HELD_OUT_STREAM = 0x4E1D  # held-out evaluation (``wmil evaluate``), apart from every training stream
SPLIT_STREAM = 0x5B17     # which problems a run holds out of training (``Task.held_out``)


class TrainingSeeds(NamedTuple):
    """One training run's streams."""

    init: int       # model initialisation
    env: int        # problems drawn by the environment (and a curriculum's replay levels)
    policy: int     # actions sampled by the policy
    algorithm: int  # the algorithm's own draws (PPO's minibatch shuffling)
    parent: int     # the parent's own draws (a noisy parent's errors)


def stream_seeds(*key: int, n: int = 1) -> tuple[int, ...]:
    """``n`` independent 63-bit seeds from ``key`` (torch generators take up to 64 bits)."""
    return tuple(int(x >> 1) for x in np.random.SeedSequence(list(key)).generate_state(n, dtype=np.uint64))


def stream_seed_32(*key: int) -> int:
    """One 32-bit seed from ``key``: the width the held-out and audit streams were first drawn with,
    kept so that their committed results stay reproducible."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def training_seeds(seed: int) -> TrainingSeeds:
    return TrainingSeeds(*stream_seeds(seed, n=len(TrainingSeeds._fields)))


def held_out_seed(evaluation_seed: int, run_seed: int) -> int:
    """The held-out episodes of one run (``evaluation.seed``, the run's seed)."""
    return stream_seed_32(evaluation_seed, HELD_OUT_STREAM, run_seed)


def split_seed(run_seed: int) -> int:
    """The split of the problem tables into training and held-out problems of one run: each seed
    holds out its own, so a result over seeds is not one lucky split's."""
    return stream_seeds(run_seed, SPLIT_STREAM)[0]


def level_seed(seed: int, level: int) -> int:
    """Episodes of one difficulty level within an evaluation stream."""
    return stream_seeds(seed, level)[0]


def audit_seed(seed: int, task_index: int, level: int) -> int:
    """The states the LLM audit samples for one task x level."""
    return stream_seed_32(seed, task_index, level)
