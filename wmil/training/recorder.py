"""What a training run observed, and the files that say so: success windows, env steps to each
success threshold, the learning curve and its timing rows.

The curve is deterministic (it is compared and hashed); wall-clock numbers go to ``timing.json``
alone. Every file is written atomically; ``metrics.json`` last, as the mark of a finished run."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmil import atomic
from wmil.results import MASTERY, SUCCESS_THRESHOLDS, UNREACHED, StepsTo
from wmil.tasks.rules import NUM_LEVELS
from wmil.training.buffer import RolloutBuffer
from wmil.training.curriculum import SuccessWindow
from wmil.training.event_log import write_events

#: Logged scalars, one row per logging step. Rates and rewards are means over the updates since
#: the previous row; ``rolling_success`` is over the last ``success_window`` episodes.
CURVE_COLUMNS = (
    "env_steps",        # environment steps so far (all envs together)
    "episodes",         # finished episodes so far
    "updates",          # gradient updates so far
    "level",            # difficulty level of the episodes collected
    "success_rate",     # fraction of successful episodes since the previous row
    "rolling_success",  # fraction of successful episodes among the last success_window
    "rolling_success_top",  # the same over full-task (top-level) episodes only; NaN before the first
    "reward_goal", "reward_pred", "reward_cons", "reward_total",  # per-step means
    "entropy",          # policy entropy, nats
    "world_model_mse",  # MSE of the raw next-state prediction at collection time (before training on it)
    "policy_loss", "world_model_loss", "loss", "grad_norm",
    "embedding_loss",   # the world model's embedding-target error (model.world_model_target: embedding; NaN before the switch)
    "learning_rate",    # the optimizer's learning rate in this update (lr_schedule; NaN for random)
    "distill_loss",     # KL(parent || policy), nats (the kl_distill baseline; 0 elsewhere)
    "baseline",         # REINFORCE's running baseline (NaN under PPO)
    "value_loss", "approx_kl", "clip_frac", "explained_variance",  # PPO only (NaN under REINFORCE)
)
#: Wall-clock scalars per curve row, kept in timing.json (never in the curve, which is compared).
TIMING_COLUMNS = ("env_steps", "steps_per_s")


class RunRecorder:
    """Success over the last ``success_window`` episodes (all levels, and the full task alone: a
    curriculum's easier levels must not count as mastery), the env steps at which the full task's
    rolling success first reached each of :data:`SUCCESS_THRESHOLDS` (over a full window), the
    failed episodes (at any level) so far and until that first reached :data:`MASTERY` (the
    regret), the per-update scalars since the last curve row, and the rows so far. Thresholds and
    regret are checked after every update, not only at curve rows."""

    def __init__(self, success_window: int):
        self.window = SuccessWindow(success_window)
        self.top_window = SuccessWindow(success_window)
        self.episodes = 0
        self.failures = 0  # failed episodes so far, at any level
        self.failures_to_mastery: int | None = None  # ... when the full task's rolling success first reached MASTERY
        self.steps_to: StepsTo = UNREACHED.copy()
        self.pending: list[dict[str, float]] = []  # per-update scalars since the last curve row
        self.curve: list[dict[str, float]] = []
        self.rates: list[dict[str, float]] = []  # TIMING_COLUMNS per curve row

    def record(self, stats: dict[str, float], buffer: RolloutBuffer, levels: torch.Tensor, level: int,
               env_steps: int, world_model: bool) -> torch.Tensor:
        """One rollout and its update: the algorithm's ``stats``, the ``buffer`` it learnt from,
        each episode's level ``(N,)``, the level the trainer was at and the env steps after it.
        Returns the episodes' successes ``BoolTensor (N,)``."""
        successes = buffer.episode_successes()
        self.episodes += len(successes)
        self.failures += int((~successes).sum())
        self.window.push(successes)
        self.top_window.push(successes[levels == NUM_LEVELS - 1])
        if self.top_window.full:
            for key, threshold in SUCCESS_THRESHOLDS.items():
                if self.steps_to[key] is None and self.top_window.rate() >= threshold:
                    self.steps_to[key] = env_steps
                    if threshold == MASTERY:
                        self.failures_to_mastery = self.failures
        self.pending.append({
            **stats,
            "level": level,
            "success_rate": float(successes.float().mean()),
            "reward_goal": float(buffer.goal.mean()), "reward_pred": float(buffer.pred.mean()),
            "reward_cons": float(buffer.cons.mean()), "reward_total": float(buffer.rewards.mean()),
            "world_model_mse": float(buffer.world_model_mse.mean()) if world_model else float("nan"),
        })
        return successes

    def full_task_success(self) -> float | None:
        """Rolling success on the full task over a full window; None until the window is full."""
        return self.top_window.rate() if self.top_window.full else None

    def row(self, env_steps: int, updates: int) -> dict[str, float]:
        """A learning-curve row from the updates since the previous row."""
        means = {k: float(np.mean([p[k] for p in self.pending])) for k in self.pending[0]}
        row = {
            **dict.fromkeys(CURVE_COLUMNS, float("nan")), **means,
            "env_steps": env_steps, "episodes": self.episodes, "updates": updates,
            "level": self.pending[-1]["level"], "rolling_success": self.window.rate(),
            "rolling_success_top": self.top_window.rate() if self.top_window.count else float("nan"),
        }
        return {k: row[k] for k in CURVE_COLUMNS}

    def log(self, env_steps: int, updates: int, steps_per_s: float) -> dict[str, float]:
        """Append a curve row and its timing row; the pending scalars start afresh."""
        row = self.row(env_steps, updates)
        self.curve.append(row)
        self.rates.append({"env_steps": env_steps, "steps_per_s": steps_per_s})
        self.pending = []
        return row

    def final_rows(self, env_steps: int, updates: int, steps_per_s: float
                   ) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        """The curve and timing rows of the outputs: an off-cadence last row is added to them only,
        so that a longer run resuming from the checkpoint logs exactly as an uninterrupted one."""
        if not self.pending:
            return self.curve, self.rates
        return ([*self.curve, self.row(env_steps, updates)],
                [*self.rates, {"env_steps": env_steps, "steps_per_s": steps_per_s}])

    def write_progress(self, run_dir: Path) -> None:
        """The curve so far, as CSV and TensorBoard events (at every checkpoint)."""
        atomic.write_text(run_dir / "curve.csv", curve_to_csv(self.curve))
        write_events(run_dir, self.curve, self.rates)

    def state_dict(self) -> dict[str, Any]:
        """A copy: recording on after it changes neither the state nor a recorder loaded from it.
        The timing rows are not in it: a checkpoint holds no wall-clock value (it is hashed by DVC);
        the trainer keeps them in ``timing.json`` beside it."""
        return {"window": self.window.state_dict(), "top_window": self.top_window.state_dict(),
                "episodes": self.episodes, "failures": self.failures,
                "failures_to_mastery": self.failures_to_mastery, "steps_to": dict(self.steps_to),
                "pending": list(self.pending), "curve": list(self.curve)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window.load_state_dict(state["window"])
        self.top_window.load_state_dict(state["top_window"])
        self.episodes, self.failures, self.failures_to_mastery = (
            state["episodes"], state["failures"], state["failures_to_mastery"])
        self.steps_to, self.pending = state["steps_to"].copy(), list(state["pending"])
        self.curve, self.rates = list(state["curve"]), []


def curve_to_csv(rows: list[dict[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
