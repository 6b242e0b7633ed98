"""The training loop: collect a rollout -> update -> record -> log -> checkpoint.

The trainer wires the parts (``RolloutCollector``, an ``Algorithm``, ``RunRecorder``) and never
knows which parent or algorithm it drives. One run writes one run directory:

* ``config.yaml``  the resolved configuration;
* ``curve.csv``    one row per logging step (columns: ``wmil.training.recorder.CURVE_COLUMNS``);
* ``checkpoint.pt`` everything needed to resume bit-identically (updated every ``save_every``);
* ``model.pt``     final weights and config (what evaluation reads);
* ``metrics.json`` final metrics (env steps to 50% and 90% rolling success, final success, entropy
                   and world-model MSE); written last, its presence marks a finished run (held-out
                   evaluation is ``wmil evaluate``, which writes ``eval.json``);
* ``tensorboard/`` the curve and timing rows as TensorBoard scalars (``wmil.training.event_log``);
* ``timing.json``  wall-clock numbers (also env steps/s per curve row; written with every
                   checkpoint too, and read back on resume), and ``parent_stats.json`` the parent's
                   counters (an LLM's requests, cache hits, latencies; a noisy parent's flips):
                   both kept apart, and out of DVC's hashes (``.dvcignore``), so that everything
                   else, the checkpoint included, is the same bytes on every rerun.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from wmil import atomic, layout, results
from wmil.config import RunConfig
from wmil.envs.env import VectorEnv
from wmil.models.baby import BabyModel
from wmil.parents import Split, make_parent
from wmil.provenance import training_code_hash
from wmil.seeding import split_seed, training_seeds
from wmil.tasks.rules import NUM_LEVELS, make_task
from wmil.training.algorithms import ALGORITHMS
from wmil.training.buffer import RolloutBuffer
from wmil.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from wmil.training.curriculum import CurriculumManager
from wmil.training.event_log import write_events
from wmil.training.recorder import CURVE_COLUMNS, TIMING_COLUMNS, RunRecorder, curve_to_csv
from wmil.training.rewards import RewardComputer
from wmil.training.rollout import RolloutCollector
from wmil.training.schedule import Progress

__all__ = ["CURVE_COLUMNS", "FINISHED_FILES", "TIMING_COLUMNS", "Trainer"]

log = logging.getLogger("wmil.train")

FINISHED_FILES = (layout.RUN_METRICS, "model.pt", "parent_stats.json", layout.RUN_EVALUATION)
COUNTERS = ("env_steps", "updates", "embedding_switch_step")  # the trainer's own state, checkpointed
TIMING = "timing.json"  # wall-clock numbers: never in the checkpoint, which must be the same bytes on a rerun


class Trainer:
    """One run: ``train()`` writes its directory; ``iterations()`` trains without writing files."""

    def __init__(self, config: RunConfig, run_dir: str | Path, server=None):
        """``server``: a running local LLM server for an LLM parent to use instead of starting its own."""
        self.config = config
        self.run_dir = Path(run_dir)
        seeds = training_seeds(config.seed)
        env = config.env
        self.task = make_task(env.task, env.num_actions, env.episode_length)
        self.parent = make_parent(config.parent, self.task, torch.Generator().manual_seed(seeds.parent), server,
                                  Split(split_seed(config.seed), "training"))
        self.env = VectorEnv(self.parent, env.num_envs, env.episode_length, torch.Generator().manual_seed(seeds.env),
                             env.next_problem)
        algorithm = ALGORITHMS[config.algorithm.name]
        torch.manual_seed(seeds.init)
        self.model = BabyModel(self.task, config.model, value_head=algorithm.needs_value)
        self.algorithm = algorithm(self.model, config.algorithm, self.task, torch.Generator().manual_seed(seeds.algorithm),
                                   config.model.target_ema)
        p = config.parent
        rewards = RewardComputer(config.rewards, self.task, (p.false_positive_rate, p.false_negative_rate)
                                 if config.rewards.noise_correction else None)
        self.buffer = RolloutBuffer(env.episode_length, env.num_envs, self.task.num_slots, self.task.num_actions,
                                    parent_probs=config.algorithm.distill_coef > 0)
        self.collector = RolloutCollector(self.env, self.model, rewards, self.parent, self.buffer,
                                          torch.Generator().manual_seed(seeds.policy))
        cur = config.curriculum
        self.curriculum = (CurriculumManager(NUM_LEVELS - 1, cur.mastery_threshold, cur.window, cur.replay)
                           if cur.enabled else None)
        self.recorder = RunRecorder(config.training.success_window)
        self.env_steps = 0
        self.updates = 0
        self.embedding_switch_step: int | None = None  # env steps at the switch to the embedding target
        self.elapsed = 0.0

    @property
    def level(self) -> int:
        return self.curriculum.level if self.curriculum is not None else self.config.env.level

    def episode_levels(self) -> int | torch.Tensor:
        """The level of each new episode (the curriculum's, with its replays; else ``env.level``)."""
        if self.curriculum is None:
            return self.config.env.level
        return self.curriculum.episode_levels(self.env.num_envs, self.env.generator)

    def maybe_switch_target(self) -> None:
        """Switch the world model to the embedding target once ``model.embedding_after_steps`` env
        steps and a rolling full-task success of ``model.embedding_after_success`` (over a full
        window, unless it is 0) are both reached; checked before each iteration, so with both at 0
        the first update already uses it."""
        model, m = self.model, self.config.model
        if model.embedding_predictor is None or model.predicts_embeddings or self.env_steps < m.embedding_after_steps:
            return
        success = self.recorder.full_task_success()
        if m.embedding_after_success > 0 and (success is None or success < m.embedding_after_success):
            return
        model.embedding_target_on.fill_(True)
        self.embedding_switch_step = self.env_steps

    # ---- one iteration -------------------------------------------------------------------
    def iterate(self) -> torch.Tensor:
        """Collect one rollout at the current level(s), update on it, record it; returns the
        episodes' successes ``BoolTensor (N,)``."""
        self.maybe_switch_target()
        level = self.level
        batch = self.collector.collect(self.episode_levels())
        stats = self.algorithm.update(batch, self.progress())
        self.env_steps += self.buffer.num_steps * self.buffer.num_envs
        self.updates += 1
        levels = self.env.level
        if isinstance(levels, int):
            levels = torch.full((self.buffer.num_envs,), levels, dtype=torch.long)
        successes = self.recorder.record(stats, self.buffer, levels, level, self.env_steps,
                                         self.model.world_model is not None)
        if self.curriculum is not None:  # mastery counts the current level's episodes only
            self.curriculum.update(successes[levels == level], self.env_steps)
        return successes

    def progress(self) -> Progress:
        """How far through the budget the run is, for the schedules: overall, and since it first
        played the top level (0 before it)."""
        budget = self.config.training.max_steps
        top = 0 if self.curriculum is None else self.curriculum.entered[-1]
        at_top = 0.0 if top is None else (self.env_steps - top) / max(budget - top, 1)
        return Progress(self.env_steps / budget, at_top)

    def iterations(self) -> Iterator[torch.Tensor]:
        """Train without writing any file, one rollout and update at a time, until the budget
        (``training.max_steps``); yields each rollout's episode successes ``BoolTensor (N,)``, and
        the caller may stop early. No learning-curve rows are kept. Close the trainer afterwards
        (``with Trainer(...) as trainer:``)."""
        while self.env_steps < self.config.training.max_steps:
            successes = self.iterate()
            self.recorder.pending.clear()
            yield successes

    def close(self) -> None:
        """Release the parent (an LLM parent stops the server it started)."""
        self.parent.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the loop --------------------------------------------------------------------------
    def train(self, resume: str = "never", progress: bool | None = None) -> results.Metrics:
        """Train to ``training.max_steps`` env steps. ``resume``: ``never`` (start fresh),
        ``auto`` (continue a compatible checkpoint if there is one) or ``must``. The parent is
        closed at the end, also on failure."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            for name in FINISHED_FILES:  # until rewritten, nothing may claim that this run finished
                (self.run_dir / name).unlink(missing_ok=True)
            self._maybe_resume(resume)
            return self._train(progress)
        finally:
            self.close()

    def _train(self, progress: bool | None) -> results.Metrics:
        cfg = self.config.training
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=cfg.max_steps, initial=self.env_steps, unit="step", disable=not show)
        last_log_steps, last_log_time = self.env_steps, time.perf_counter()

        def rate() -> float:
            return (self.env_steps - last_log_steps) / max(time.perf_counter() - last_log_time, 1e-9)

        started = time.perf_counter() - self.elapsed
        while self.env_steps < cfg.max_steps:
            before = self.env_steps
            self.iterate()
            bar.update(self.env_steps - before)
            if self.env_steps // cfg.log_every > before // cfg.log_every:
                row = self.recorder.log(self.env_steps, self.updates, rate())
                last_log_steps, last_log_time = self.env_steps, time.perf_counter()
                bar.set_postfix(success=f"{row['rolling_success']:.2f}", entropy=f"{row['entropy']:.2f}")
            self.elapsed = time.perf_counter() - started
            if self.env_steps // cfg.save_every > before // cfg.save_every or self.env_steps >= cfg.max_steps:
                self.save()
        bar.close()
        return self.finish(*self.recorder.final_rows(self.env_steps, self.updates, rate()))

    # ---- persistence ---------------------------------------------------------------------
    def _maybe_resume(self, resume: str) -> None:
        path = self.run_dir / "checkpoint.pt"
        if resume == "never" or (resume == "auto" and not path.exists()):
            return
        try:
            state = load_checkpoint(path, self.config.fingerprint(), self.code())
        except CheckpointError as exc:
            if resume == "auto":
                log.warning("%s; starting afresh", exc)
                return
            raise
        if state["env_steps"] > self.config.training.max_steps:
            message = (f"{path}: checkpoint is at env step {state['env_steps']}, past "
                       f"training.max_steps={self.config.training.max_steps}")
            if resume == "must":
                raise CheckpointError(message)
            log.warning("%s; starting afresh", message)
            return
        for key, part in self._stateful_parts().items():
            part.load_state_dict(state[key])
        for key in COUNTERS:
            setattr(self, key, state[key])
        self._resume_timing()
        log.info("resumed %s at env step %d", path, self.env_steps)

    def _resume_timing(self) -> None:
        """Wall time and timing rows up to the checkpoint, from ``timing.json`` when it is there
        (a run restored without it restarts its clock: the numbers are never compared)."""
        try:
            timing = json.loads((self.run_dir / TIMING).read_text())
            self.elapsed = float(timing["wall_seconds"])
            self.recorder.rates = [row for row in timing["curve"] if row["env_steps"] <= self.env_steps]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("%s: no readable wall-clock record; its clock restarts", self.run_dir / TIMING)

    def _stateful_parts(self) -> dict[str, Any]:
        """Every part whose state a checkpoint keeps (under these keys) for a bit-identical resume."""
        parts = {"model": self.model, "algorithm": self.algorithm, "env": self.env, "parent": self.parent,
                 "collector": self.collector, "recorder": self.recorder, "curriculum": self.curriculum}
        return {key: part for key, part in parts.items() if part is not None}

    def code(self) -> str:
        """The hash of the code this run runs (its algorithm's and parent's, no other's)."""
        return training_code_hash(self.config.algorithm.name, self.config.parent.name)

    def save(self) -> None:
        save_checkpoint(self.run_dir / "checkpoint.pt", {
            "fingerprint": self.config.fingerprint(), "code": self.code(),
            "config": self.config.to_dict(), **{key: part.state_dict() for key, part in self._stateful_parts().items()},
            **{key: getattr(self, key) for key in COUNTERS}})
        self._write_timing(self.recorder.rates)
        self.recorder.write_progress(self.run_dir)

    def _write_timing(self, rates: list[dict[str, float]]) -> None:
        atomic.write_json(self.run_dir / TIMING, {
            "wall_seconds": self.elapsed, "env_steps_per_s": self.env_steps / max(self.elapsed, 1e-9), "curve": rates})

    def finish(self, curve: list[dict[str, float]], rates: list[dict[str, float]]) -> results.Metrics:
        """Write the run's outputs, ``metrics.json`` last; returns the metrics."""
        last = curve[-1]
        metrics: results.Metrics = {
            "experiment": self.config.experiment, "task": self.config.env.task, "seed": self.config.seed,
            "env_steps": self.env_steps, "episodes": self.recorder.episodes, "updates": self.updates,
            "num_parameters": self.model.num_parameters(),
            "final_level": int(last["level"]),
            "final_rolling_success": last["rolling_success"],
            "final_rolling_success_top": None if np.isnan(last["rolling_success_top"]) else last["rolling_success_top"],
            "final_entropy": last["entropy"],
            "final_world_model_mse": None if np.isnan(last["world_model_mse"]) else last["world_model_mse"],
            **self.recorder.steps_to,
            "failures": self.recorder.failures,  # failed episodes, at any level
            results.FAILURES_TO_MASTERY: self.recorder.failures_to_mastery,  # the regret; None: never mastered
            "embedding_switch_step": self.embedding_switch_step,
            # a curriculum's climb: the env steps at which it reached each level (None: never) and
            # those it played while each was the current one
            "level_entered_at": None if self.curriculum is None else list(self.curriculum.entered),
            "steps_per_level": None if self.curriculum is None else self.curriculum.steps_per_level(self.env_steps),
        }
        atomic.write_text(self.run_dir / "curve.csv", curve_to_csv(curve))
        write_events(self.run_dir, curve, rates)
        atomic.save_torch(self.run_dir / "model.pt", {"config": self.config.to_dict(), "model": self.model.state_dict()})
        self._write_timing(rates)
        atomic.write_json(self.run_dir / "parent_stats.json", self.parent.stats())
        results.write_metrics(self.run_dir, metrics)
        return metrics


if __name__ == "__main__":  # the plan's command, python -m wmil.training.trainer --task ...: an entry point, not an import
    from wmil.cli import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
