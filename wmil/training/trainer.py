"""The training loop: batched rollouts -> rewards -> update -> log -> checkpoint.

The trainer never knows which parent or algorithm it drives. One run writes one run directory:

* ``config.yaml``  the resolved configuration;
* ``curve.csv``    one row per logging step (columns: :data:`CURVE_COLUMNS`);
* ``checkpoint.pt`` everything needed to resume bit-identically (updated every ``save_every``);
* ``model.pt``     final weights and config (what evaluation reads);
* ``metrics.json`` final metrics, written last: its presence marks a finished run;
* ``timing.json``  wall-clock numbers, kept apart so that metrics are deterministic.
"""

from __future__ import annotations

import csv
import io as _io
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from wmil import io
from wmil.config import RunConfig
from wmil.envs.env import VectorEnv
from wmil.envs.tasks import make_task
from wmil.models.baby import BabyModel
from wmil.parents import make_parent
from wmil.training.buffer import RolloutBuffer
from wmil.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from wmil.training.reinforce import ALGORITHMS
from wmil.training.rewards import RewardComputer

log = logging.getLogger("wmil.train")

#: Logged scalars, one row per logging step. Rates and rewards are means over the steps since
#: the previous row; ``rolling_success`` is over the last ``success_window`` episodes.
CURVE_COLUMNS = (
    "env_steps",        # environment steps so far (all envs together)
    "episodes",         # finished episodes so far
    "updates",          # gradient updates so far
    "level",            # difficulty level of the episodes collected
    "success_rate",     # fraction of successful episodes since the previous row
    "rolling_success",  # fraction of successful episodes among the last success_window
    "reward_goal", "reward_pred", "reward_cons", "reward_total",  # per-step means
    "entropy",          # policy entropy, nats
    "world_model_mse",  # MSE of the raw next-state prediction at collection time (before training on it)
    "policy_loss", "world_model_loss", "loss", "baseline", "grad_norm",
    "steps_per_s",      # env steps per wall-clock second since the previous row (not deterministic)
)
TIMING_COLUMNS = ("steps_per_s",)
SUCCESS_THRESHOLDS = (0.5, 0.9)
FINISHED_FILES = ("metrics.json", "model.pt", "timing.json")


def seed_streams(seed: int) -> tuple[int, int, int]:
    """Independent seeds for model init, environment and action sampling."""
    a, b, c = np.random.SeedSequence(seed).generate_state(3, dtype=np.uint64)
    return int(a >> 1), int(b >> 1), int(c >> 1)


class Trainer:
    def __init__(self, config: RunConfig, run_dir: str | Path):
        torch.set_num_threads(1)
        self.config = config
        self.run_dir = Path(run_dir)
        init_seed, env_seed, policy_seed = seed_streams(config.seed)
        self.task = make_task(config.env.task, config.env.num_actions)
        self.parent = make_parent(config.parent.name, self.task)
        self.env = VectorEnv(self.parent, config.env.num_envs, config.env.episode_length,
                             torch.Generator().manual_seed(env_seed))
        algorithm = ALGORITHMS[config.algorithm.name]
        torch.manual_seed(init_seed)
        self.model = BabyModel(self.task, config.model, value_head=algorithm.needs_value)
        self.algorithm = algorithm(self.model, config.algorithm, self.task)
        self.rewards = RewardComputer(config.rewards, self.task)
        self.policy_generator = torch.Generator().manual_seed(policy_seed)
        self.buffer = RolloutBuffer(config.env.episode_length, config.env.num_envs, self.task.num_slots)
        window = config.training.success_window
        self.window = torch.zeros(window, dtype=torch.bool)
        self.episodes = 0
        self.env_steps = 0
        self.updates = 0
        self.curve: list[dict[str, float]] = []
        self.pending: list[dict[str, float]] = []  # per-update stats since the last curve row
        self.steps_to: dict[str, int | None] = {f"steps_to_{t:g}": None for t in SUCCESS_THRESHOLDS}
        self.elapsed = 0.0
        self.env.reset(config.env.level)

    # ---- one iteration -------------------------------------------------------------------
    def collect(self) -> dict[str, torch.Tensor]:
        """Roll out one episode in every env; returns the flat batch for the algorithm."""
        buf, model = self.buffer, self.model
        for t in range(buf.num_steps):
            states = self.env.states
            with torch.inference_mode():
                h, logits, _ = model(states)
                probs = F.softmax(logits, -1)
                actions = torch.multinomial(probs, 1, generator=self.policy_generator).squeeze(1)
                predicted = model.predict_next_state(h, actions) if model.world_model is not None else None
            step = self.env.step(actions)
            reward = self.rewards.compute(step.goal, predicted, step.next_states)
            buf.states[t], buf.next_states[t], buf.actions[t] = states, step.next_states, actions
            buf.log_probs[t] = probs.gather(1, actions.unsqueeze(1)).squeeze(1).log()
            buf.goal[t], buf.pred[t], buf.cons[t] = reward.goal, reward.pred, reward.cons
            buf.rewards[t] = self.rewards.scalar(reward)
            buf.dones[t], buf.success[t] = step.done, step.success
            if predicted is not None:
                buf.world_model_mse[t] = ((predicted - self.task.one_hot(step.next_states)) ** 2).mean(-1)
        return buf.flat(returns=buf.discounted_returns(self.config.algorithm.gamma))

    def record_episodes(self) -> float:
        """Push each finished episode's success (any successful step) into the rolling window."""
        successes = self.buffer.success.any(0)  # every rollout is one whole episode per env
        n, w = len(successes), len(self.window)
        idx = (torch.arange(n) + self.episodes) % w
        self.window[idx[-w:]] = successes[-w:]
        self.episodes += n
        return float(successes.float().mean())

    def rolling_success(self) -> float:
        filled = min(self.episodes, len(self.window))
        return float(self.window.float().sum() / filled) if filled else 0.0

    def iterate(self) -> None:
        batch = self.collect()
        stats = self.algorithm.update(batch)
        self.env_steps += self.buffer.num_steps * self.buffer.num_envs
        self.updates += 1
        success_rate = self.record_episodes()
        if self.episodes >= len(self.window):
            rolling = self.rolling_success()
            for key, threshold in zip(self.steps_to, SUCCESS_THRESHOLDS):
                if self.steps_to[key] is None and rolling >= threshold:
                    self.steps_to[key] = self.env_steps
        buf = self.buffer
        self.pending.append({
            **stats,
            "success_rate": success_rate,
            "reward_goal": float(buf.goal.mean()), "reward_pred": float(buf.pred.mean()),
            "reward_cons": float(buf.cons.mean()), "reward_total": float(buf.rewards.mean()),
            "world_model_mse": float(buf.world_model_mse.mean()) if self.model.world_model is not None else float("nan"),
        })

    def log_row(self, steps_per_s: float) -> dict[str, float]:
        means = {k: float(np.mean([p[k] for p in self.pending])) for k in self.pending[0]}
        row = {
            "env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
            "level": self.env.level, "rolling_success": self.rolling_success(),
            "steps_per_s": steps_per_s, **means,
        }
        self.pending = []
        row = {k: row[k] for k in CURVE_COLUMNS}
        self.curve.append(row)
        return row

    # ---- the loop --------------------------------------------------------------------------
    def train(self, resume: str = "never", progress: bool | None = None) -> dict[str, Any]:
        """Train to ``training.max_steps`` env steps. ``resume``: ``never`` (start fresh),
        ``auto`` (continue a compatible checkpoint if there is one) or ``must``."""
        cfg = self.config.training
        self.run_dir.mkdir(parents=True, exist_ok=True)
        io.write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        for name in FINISHED_FILES:  # until rewritten, nothing may claim that this run finished
            (self.run_dir / name).unlink(missing_ok=True)
        self._maybe_resume(resume)
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=cfg.max_steps, initial=self.env_steps, unit="step", disable=not show)
        last_log_steps, last_log_time = self.env_steps, time.perf_counter()
        started = time.perf_counter() - self.elapsed
        while self.env_steps < cfg.max_steps:
            before = self.env_steps
            self.iterate()
            bar.update(self.env_steps - before)
            if self.env_steps // cfg.log_every > before // cfg.log_every or self.env_steps >= cfg.max_steps:
                now = time.perf_counter()
                row = self.log_row((self.env_steps - last_log_steps) / max(now - last_log_time, 1e-9))
                last_log_steps, last_log_time = self.env_steps, now
                bar.set_postfix(success=f"{row['rolling_success']:.2f}", entropy=f"{row['entropy']:.2f}")
            self.elapsed = time.perf_counter() - started
            if self.env_steps // cfg.save_every > before // cfg.save_every or self.env_steps >= cfg.max_steps:
                self.save()
        bar.close()
        return self.finish()

    # ---- persistence ---------------------------------------------------------------------
    def _maybe_resume(self, resume: str) -> None:
        path = self.run_dir / "checkpoint.pt"
        if resume == "never" or (resume == "auto" and not path.exists()):
            return
        try:
            state = load_checkpoint(path, self.config.fingerprint())
        except CheckpointError:
            if resume == "auto" and path.exists():
                log.warning("%s does not match this configuration; starting afresh", path)
                return
            raise
        if state["env_steps"] > self.config.training.max_steps:
            message = (f"{path}: checkpoint is at env step {state['env_steps']}, past "
                       f"training.max_steps={self.config.training.max_steps}")
            if resume == "must":
                raise CheckpointError(message)
            log.warning("%s; starting afresh", message)
            return
        self.model.load_state_dict(state["model"])
        self.algorithm.load_state_dict(state["algorithm"])
        self.env.load_state_dict(state["env"])
        self.policy_generator.set_state(state["policy_generator"])
        self.window = state["window"].clone()
        for key in ("episodes", "env_steps", "updates", "elapsed"):
            setattr(self, key, state[key])
        self.curve, self.pending, self.steps_to = state["curve"], state["pending"], state["steps_to"]
        log.info("resumed %s at env step %d", path, self.env_steps)

    def save(self) -> None:
        save_checkpoint(self.run_dir / "checkpoint.pt", {
            "fingerprint": self.config.fingerprint(), "config": self.config.to_dict(),
            "model": self.model.state_dict(), "algorithm": self.algorithm.state_dict(),
            "env": self.env.state_dict(), "policy_generator": self.policy_generator.get_state(),
            "window": self.window.clone(), "episodes": self.episodes, "env_steps": self.env_steps,
            "updates": self.updates, "elapsed": self.elapsed, "curve": self.curve,
            "pending": self.pending, "steps_to": self.steps_to,
        })
        io.write_text(self.run_dir / "curve.csv", curve_to_csv(self.curve))

    def finish(self) -> dict[str, Any]:
        last = self.curve[-1]
        metrics = {
            "experiment": self.config.experiment, "task": self.config.env.task, "seed": self.config.seed,
            "env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
            "num_parameters": self.model.num_parameters(),
            "final_rolling_success": last["rolling_success"], "final_entropy": last["entropy"],
            "final_world_model_mse": None if np.isnan(last["world_model_mse"]) else last["world_model_mse"],
            **self.steps_to,
        }
        io.save_torch(self.run_dir / "model.pt", {"config": self.config.to_dict(), "model": self.model.state_dict()})
        io.write_json(self.run_dir / "timing.json", {
            "wall_seconds": self.elapsed, "env_steps_per_s": self.env_steps / max(self.elapsed, 1e-9)})
        io.write_json(self.run_dir / "metrics.json", metrics)
        return metrics


def curve_to_csv(rows: list[dict[str, float]]) -> str:
    out = _io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


if __name__ == "__main__":  # the plan's command: python -m wmil.training.trainer --task ...
    from wmil.cli import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
