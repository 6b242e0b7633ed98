"""The training loop: batched rollouts -> rewards -> update -> log -> checkpoint.

The trainer never knows which parent or algorithm it drives. One run writes one run directory:

* ``config.yaml``  the resolved configuration;
* ``curve.csv``    one row per logging step (columns: :data:`CURVE_COLUMNS`);
* ``checkpoint.pt`` everything needed to resume bit-identically (updated every ``save_every``);
* ``model.pt``     final weights and config (what evaluation reads);
* ``metrics.json`` final metrics (env steps to 50% and 90% rolling success, final success, entropy
                   and world-model MSE); written last, its presence marks a finished run (held-out
                   evaluation is ``wmil evaluate``, which writes ``eval.json``);
* ``tensorboard/`` the curve and timing rows as TensorBoard scalars (``wmil.training.event_log``);
* ``timing.json``  wall-clock numbers (also env steps/s per curve row), and ``parent_stats.json``
                   the parent's counters (an LLM's requests, cache hits, latencies; a noisy
                   parent's flips): both kept apart so that metrics and curve are deterministic.
"""

from __future__ import annotations

import csv
import io
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

from wmil import atomic
from wmil.config import RunConfig
from wmil.training.curriculum import CurriculumManager, SuccessWindow
from wmil.envs.env import VectorEnv
from wmil.tasks.rules import NUM_LEVELS, make_task
from wmil.models.baby import BabyModel
from wmil.parents import make_parent
from wmil.provenance import code_hash
from wmil.training.algorithms import ALGORITHMS
from wmil.training.buffer import RolloutBuffer
from wmil.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from wmil.training.event_log import write_events
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
SUCCESS_THRESHOLDS = (0.5, 0.9)
FINISHED_FILES = ("metrics.json", "model.pt", "timing.json", "parent_stats.json", "eval.json")


def seed_streams(seed: int) -> tuple[int, ...]:
    """Independent seeds: model init, environment, action sampling, the algorithm's own
    randomness and the parent's own randomness (its errors). Held-out evaluation draws from a
    stream of its own (``wmil.evaluation.held_out``)."""
    return tuple(int(x >> 1) for x in np.random.SeedSequence(seed).generate_state(5, dtype=np.uint64))


class Trainer:
    def __init__(self, config: RunConfig, run_dir: str | Path, server=None):
        """``server``: a running local LLM server for an LLM parent to use instead of starting its own."""
        torch.set_num_threads(1)
        self.config = config
        self.run_dir = Path(run_dir)
        init_seed, env_seed, policy_seed, algo_seed, parent_seed = seed_streams(config.seed)
        env = config.env
        self.task = make_task(env.task, env.num_actions, env.episode_length)
        self.parent = make_parent(config.parent, self.task, torch.Generator().manual_seed(parent_seed), server)
        self.env = VectorEnv(self.parent, env.num_envs, env.episode_length, torch.Generator().manual_seed(env_seed))
        algorithm = ALGORITHMS[config.algorithm.name]
        torch.manual_seed(init_seed)
        self.model = BabyModel(self.task, config.model, value_head=algorithm.needs_value)
        self.algorithm = algorithm(self.model, config.algorithm, self.task, torch.Generator().manual_seed(algo_seed),
                                   config.model.target_ema)
        p = config.parent
        self.rewards = RewardComputer(config.rewards, self.task, (p.false_positive_rate, p.false_negative_rate)
                                      if config.rewards.noise_correction else None)
        self.policy_generator = torch.Generator().manual_seed(policy_seed)
        self.buffer = RolloutBuffer(env.episode_length, env.num_envs, self.task.num_slots, self.task.num_actions)
        self.distill = config.algorithm.distill_coef > 0
        cur = config.curriculum
        self.curriculum = (CurriculumManager(NUM_LEVELS - 1, cur.mastery_threshold, cur.window)
                           if cur.enabled else None)
        self.window = SuccessWindow(config.training.success_window)
        # success on the full task alone: a curriculum's easier levels must not count as mastery
        self.top_window = SuccessWindow(config.training.success_window)
        self.episodes = 0
        self.env_steps = 0
        self.updates = 0
        self.curve: list[dict[str, float]] = []
        self.rates: list[dict[str, float]] = []  # TIMING_COLUMNS per curve row
        self.pending: list[dict[str, float]] = []  # per-update stats since the last curve row
        self.steps_to: dict[str, int | None] = {f"steps_to_{t:g}": None for t in SUCCESS_THRESHOLDS}
        self.embedding_switch_step: int | None = None  # env steps at the switch to the embedding target
        self.elapsed = 0.0

    @property
    def level(self) -> int:
        return self.curriculum.level if self.curriculum is not None else self.config.env.level

    def episode_levels(self) -> int | torch.Tensor:
        """The level of each new episode: the current one, except a ``replay`` share of the
        batch that goes back to a uniformly chosen easier level."""
        level, replay = self.level, self.config.curriculum.replay
        if self.curriculum is None or level == 0 or replay == 0:
            return level
        n, g = self.env.num_envs, self.env.generator
        back = torch.rand(n, generator=g) < replay
        return torch.where(back, torch.randint(level, (n,), generator=g), torch.full((n,), level))

    # ---- one iteration -------------------------------------------------------------------
    def collect(self) -> dict[str, torch.Tensor]:
        """Play one whole episode in every env at the current level; returns the ``(T, N)`` batch."""
        buf, model = self.buffer, self.model
        states = self.env.reset(self.episode_levels())
        for t in range(buf.num_steps):
            with torch.inference_mode():
                h, logits, values = model(states)
                log_probs = F.log_softmax(logits, -1)
                actions = torch.multinomial(log_probs.exp(), 1, generator=self.policy_generator).squeeze(1)
                predicted = model.predict_next_state(h, actions) if model.world_model is not None else None
            step = self.env.step(actions)
            reward, mse = self.rewards.compute(step.goal, predicted, step.next_states)
            buf.states[t], buf.next_states[t], buf.actions[t] = states, step.next_states, actions
            if self.distill:
                buf.parent_probs[t] = self.parent.action_distribution(states)
            buf.log_probs[t] = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
            if values is not None:
                buf.values[t] = values
            buf.goal[t], buf.pred[t], buf.cons[t] = reward.goal, reward.pred, reward.cons
            buf.rewards[t] = self.rewards.scalar(reward)
            buf.dones[t], buf.success[t] = step.done, step.success
            if mse is not None:
                buf.world_model_mse[t] = mse
            states = step.next_states
        return buf.batch()

    def iterate(self) -> None:
        self.maybe_switch_target()
        level = self.level
        batch = self.collect()
        stats = self.algorithm.update(batch, self.env_steps / self.config.training.max_steps)
        self.env_steps += self.buffer.num_steps * self.buffer.num_envs
        self.updates += 1
        successes = self.buffer.success.all(0)  # an episode succeeds when every answer is right
        self.episodes += len(successes)
        self.window.push(successes)
        levels = self.env.level
        if isinstance(levels, int):
            levels = torch.full_like(successes, levels, dtype=torch.long)
        self.top_window.push(successes[levels == NUM_LEVELS - 1])
        if self.curriculum is not None:  # mastery counts the current level's episodes only
            self.curriculum.update(successes[levels == level])
        if self.top_window.full:
            for key, threshold in zip(self.steps_to, SUCCESS_THRESHOLDS):
                if self.steps_to[key] is None and self.top_window.rate() >= threshold:
                    self.steps_to[key] = self.env_steps
        buf = self.buffer
        self.pending.append({
            **stats,
            "level": level,
            "success_rate": float(successes.float().mean()),
            "reward_goal": float(buf.goal.mean()), "reward_pred": float(buf.pred.mean()),
            "reward_cons": float(buf.cons.mean()), "reward_total": float(buf.rewards.mean()),
            "world_model_mse": float(buf.world_model_mse.mean()) if self.model.world_model is not None else float("nan"),
        })

    def maybe_switch_target(self) -> None:
        """Switch the world model to the embedding target once ``model.embedding_after_steps`` env
        steps and a rolling full-task success of ``model.embedding_after_success`` (over a full
        window, unless it is 0) are both reached; checked before each iteration, so with both at 0
        the first update already uses it."""
        model, m = self.model, self.config.model
        if model.embedding_predictor is None or model.predicts_embeddings or self.env_steps < m.embedding_after_steps:
            return
        if m.embedding_after_success > 0 and not (self.top_window.full
                                                  and self.top_window.rate() >= m.embedding_after_success):
            return
        model.embedding_target_on.fill_(True)
        self.embedding_switch_step = self.env_steps

    def make_row(self) -> dict[str, float]:
        """A learning-curve row from the updates since the previous row (``self.pending``)."""
        means = {k: float(np.mean([p[k] for p in self.pending])) for k in self.pending[0]}
        row = {
            **dict.fromkeys(CURVE_COLUMNS, float("nan")), **means,
            "env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
            "level": self.pending[-1]["level"], "rolling_success": self.window.rate(),
            "rolling_success_top": self.top_window.rate() if self.top_window.count else float("nan"),
        }
        return {k: row[k] for k in CURVE_COLUMNS}

    # ---- the loop --------------------------------------------------------------------------
    def train(self, resume: str = "never", progress: bool | None = None) -> dict[str, Any]:
        """Train to ``training.max_steps`` env steps. ``resume``: ``never`` (start fresh),
        ``auto`` (continue a compatible checkpoint if there is one) or ``must``. The parent is
        closed at the end, also on failure (an LLM parent stops the server it started)."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            for name in FINISHED_FILES:  # until rewritten, nothing may claim that this run finished
                (self.run_dir / name).unlink(missing_ok=True)
            self._maybe_resume(resume)
            return self._train(progress)
        finally:
            self.parent.close()

    def _train(self, progress: bool | None) -> dict[str, Any]:
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
                row = self.make_row()
                self.curve.append(row)
                self.rates.append({"env_steps": self.env_steps, "steps_per_s": rate()})
                self.pending = []
                last_log_steps, last_log_time = self.env_steps, time.perf_counter()
                bar.set_postfix(success=f"{row['rolling_success']:.2f}", entropy=f"{row['entropy']:.2f}")
            self.elapsed = time.perf_counter() - started
            if self.env_steps // cfg.save_every > before // cfg.save_every or self.env_steps >= cfg.max_steps:
                self.save()
        bar.close()
        # an off-cadence last row goes to the outputs only: a longer run resuming from this
        # checkpoint must log exactly as an uninterrupted one
        last = ([self.make_row()], [{"env_steps": self.env_steps, "steps_per_s": rate()}]) if self.pending else ([], [])
        return self.finish(self.curve + last[0], self.rates + last[1])

    def train_until_success(self, threshold: float) -> int | None:
        """Train (no files written) until the rolling success over a full window reaches
        ``threshold`` or ``max_steps`` runs out; returns the env steps taken, or None."""
        while self.env_steps < self.config.training.max_steps:
            self.iterate()
            self.pending.clear()
            if self.window.full and self.window.rate() >= threshold:
                return self.env_steps
        return None

    # ---- persistence ---------------------------------------------------------------------
    def _maybe_resume(self, resume: str) -> None:
        path = self.run_dir / "checkpoint.pt"
        if resume == "never" or (resume == "auto" and not path.exists()):
            return
        try:
            state = load_checkpoint(path, self.config.fingerprint(), code_hash(self.config.parent.name == "llm"))
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
        self.model.load_state_dict(state["model"])
        self.algorithm.load_state_dict(state["algorithm"])
        self.env.load_state_dict(state["env"])
        self.parent.load_state_dict(state["parent"])
        self.policy_generator.set_state(state["policy_generator"])
        self.window.load_state_dict(state["window"])
        self.top_window.load_state_dict(state["top_window"])
        if self.curriculum is not None:
            self.curriculum.load_state_dict(state["curriculum"])
        for key in ("episodes", "env_steps", "updates", "elapsed"):
            setattr(self, key, state[key])
        self.curve, self.pending, self.steps_to = state["curve"], state["pending"], state["steps_to"]
        self.embedding_switch_step = state["embedding_switch_step"]
        self.rates = state["rates"]
        log.info("resumed %s at env step %d", path, self.env_steps)

    def save(self) -> None:
        save_checkpoint(self.run_dir / "checkpoint.pt", {
            "fingerprint": self.config.fingerprint(), "code": code_hash(self.config.parent.name == "llm"), "config": self.config.to_dict(),
            "model": self.model.state_dict(), "algorithm": self.algorithm.state_dict(),
            "env": self.env.state_dict(), "parent": self.parent.state_dict(), "policy_generator": self.policy_generator.get_state(),
            "window": self.window.state_dict(), "top_window": self.top_window.state_dict(), "episodes": self.episodes, "env_steps": self.env_steps,
            "curriculum": self.curriculum.state_dict() if self.curriculum is not None else None,
            "updates": self.updates, "elapsed": self.elapsed, "curve": self.curve,
            "pending": self.pending, "steps_to": self.steps_to, "rates": self.rates,
            "embedding_switch_step": self.embedding_switch_step,
        })
        atomic.write_text(self.run_dir / "curve.csv", curve_to_csv(self.curve))
        write_events(self.run_dir, self.curve, self.rates)

    def finish(self, curve: list[dict[str, float]], rates: list[dict[str, float]]) -> dict[str, Any]:
        last = curve[-1]
        metrics = {
            "experiment": self.config.experiment, "task": self.config.env.task, "seed": self.config.seed,
            "env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
            "num_parameters": self.model.num_parameters(),
            "final_level": last["level"],
            "final_rolling_success": last["rolling_success"],
            "final_rolling_success_top": None if np.isnan(last["rolling_success_top"]) else last["rolling_success_top"],
            "final_entropy": last["entropy"],
            "final_world_model_mse": None if np.isnan(last["world_model_mse"]) else last["world_model_mse"],
            **self.steps_to,
            "embedding_switch_step": self.embedding_switch_step,
        }
        atomic.write_text(self.run_dir / "curve.csv", curve_to_csv(curve))
        write_events(self.run_dir, curve, rates)
        atomic.save_torch(self.run_dir / "model.pt", {"config": self.config.to_dict(), "model": self.model.state_dict()})
        atomic.write_json(self.run_dir / "timing.json", {
            "wall_seconds": self.elapsed, "env_steps_per_s": self.env_steps / max(self.elapsed, 1e-9),
            "curve": rates})
        atomic.write_json(self.run_dir / "parent_stats.json", self.parent.stats())
        atomic.write_json(self.run_dir / "metrics.json", metrics)
        return metrics


def curve_to_csv(rows: list[dict[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()



if __name__ == "__main__":  # the plan's command, python -m wmil.training.trainer --task ...: an entry point, not an import
    from wmil.cli import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
