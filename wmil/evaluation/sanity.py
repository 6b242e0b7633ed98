"""The plan's "If MVP fails" checks as one report.

1. The reward signal: a uniform random policy succeeds ~1/A and the oracle (the parent's
   ``action_distribution`` arg-max) exactly 1.0, on every task x level, for the action-space sizes
   used by the experiments.
2. The state encoding: the answer is a function of the observed state across all levels, and a
   linear probe on the raw one-hot state recovers PatternEcho's target.
3. The gradient: one REINFORCE update reaches every parameter of the model.

Speed is measured too (:func:`env_speed`: a batched env step), but reported apart and never
judged: a loaded machine is slower without anything being wrong, and a wall-clock number in the
report would make it differ between identical runs. ``wmil bench`` holds the speed targets.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from wmil.config import Params
from wmil.envs.env import VectorEnv
from wmil.models.baby import BabyModel
from wmil.parents import DeterministicParent
from wmil.tasks.rules import NUM_LEVELS, TASKS, make_task
from wmil.training.buffer import RolloutBatch
from wmil.training.reinforce import REINFORCE

STEP_TIMING_ENVS = 1024
PROBE_SAMPLES = 2000


def _success(parent, level: int, n: int, policy: str, generator: torch.Generator) -> float:
    states = parent.generate(level, n, generator)
    if policy == "random":
        actions = torch.randint(parent.task.num_actions, (n,), generator=generator)
    else:
        actions = parent.action_distribution(states).argmax(-1)
    return float(parent.reward(states, actions).mean())


def check_rewards(params: Params, action_sizes: list[int]) -> dict[str, Any]:
    cfg = params.sanity
    rows, failures = [], []
    generator = torch.Generator().manual_seed(cfg.seed)
    for A in action_sizes:
        for name in TASKS:
            parent = DeterministicParent(make_task(name, A))
            for level in range(NUM_LEVELS):
                random = _success(parent, level, cfg.episodes, "random", generator)
                oracle = _success(parent, level, cfg.episodes, "oracle", generator)
                row = {"task": name, "num_actions": A, "level": level, "random": random,
                       "chance": 1 / A, "oracle": oracle}
                rows.append(row)
                if abs(random - 1 / A) > cfg.random_tolerance:
                    failures.append(f"random policy on {name} level {level} A={A}: {random:.4f} vs 1/A={1 / A:.4f}")
                if oracle != 1.0:
                    failures.append(f"oracle on {name} level {level} A={A}: {oracle:.4f} != 1.0")
    return {"rows": rows, "failures": failures}


def check_state_encoding(action_sizes: list[int], seed: int) -> dict[str, Any]:
    """Linear probe: logistic regression on the one-hot raw state, fit on sampled states and scored
    on a second, independent sample."""
    from sklearn.linear_model import LogisticRegression

    rows, failures = [], []
    generator = torch.Generator().manual_seed(seed)
    for A in action_sizes:
        for name in TASKS:
            task = make_task(name, A)
            states = torch.cat([task.initial_states(task.problems(level)) for level in range(NUM_LEVELS)])
            answers = task.answer(states)
            unique, inverse = torch.unique(states, dim=0, return_inverse=True)
            first = torch.zeros(len(unique), dtype=torch.long).scatter_(0, inverse, answers)
            determined = bool((first[inverse] == answers).all())
            draw = torch.randint(len(states), (2 * PROBE_SAMPLES,), generator=generator)
            x, y = task.one_hot(states[draw]).numpy(), answers[draw].numpy()
            probe = LogisticRegression(C=100.0, max_iter=2000).fit(x[:PROBE_SAMPLES], y[:PROBE_SAMPLES])
            accuracy = float(probe.score(x[PROBE_SAMPLES:], y[PROBE_SAMPLES:]))
            rows.append({"task": name, "num_actions": A, "state_determines_answer": determined,
                         "linear_probe_accuracy": accuracy})
            if not determined:
                failures.append(f"{name} A={A}: two levels give one state different answers")
            if name == "pattern_echo" and accuracy < 1.0:
                failures.append(f"linear probe on the raw state recovers only {accuracy:.3f} of PatternEcho targets")
    return {"rows": rows, "failures": failures}


def check_gradients(params: Params, action_sizes: list[int]) -> dict[str, Any]:
    rows, failures = [], []
    for A in action_sizes:
        for name in TASKS:
            config = params.run_config(None, name, 0, {"env": {"num_actions": A}})
            torch.manual_seed(0)
            task = make_task(name, A)
            model = BabyModel(task, config.model)
            algo = REINFORCE(model, config.algorithm, task, torch.Generator())
            parent = DeterministicParent(task)
            generator = torch.Generator().manual_seed(0)
            states = parent.generate(config.env.level, 64, generator)
            actions = torch.randint(A, (64,), generator=generator)
            goal, next_states = parent.step(states, actions)
            zeros = torch.zeros(1, 64)
            algo.update(RolloutBatch(states=states[None], next_states=next_states[None], actions=actions[None],
                                     log_probs=zeros, values=zeros, rewards=goal[None],
                                     dones=torch.ones(1, 64, dtype=torch.bool), parent_probs=None))
            dead = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
            rows.append({"task": name, "num_actions": A, "parameters": model.num_parameters(),
                         "without_gradient": dead})
            if dead:
                failures.append(f"{name} A={A}: no gradient reaches {dead}")
    return {"rows": rows, "failures": failures}


def env_speed(params: Params, repeats: int = 200) -> dict[str, Any]:
    """Median seconds of one batched env step of ``STEP_TIMING_ENVS`` single-step Conditional
    episodes at level 2, problem generation included (wall-clock: kept out of the report)."""
    task = make_task("conditional", params.defaults["env"]["num_actions"])
    env = VectorEnv(DeterministicParent(task), STEP_TIMING_ENVS, 1, torch.Generator().manual_seed(0))
    env.level = 2
    actions = torch.randint(task.num_actions, (STEP_TIMING_ENVS,), generator=torch.Generator().manual_seed(1))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        env.reset()
        env.step(actions)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {"num_envs": STEP_TIMING_ENVS, "median_step_seconds": median, "env_steps_per_second": STEP_TIMING_ENVS / median}


def run_sanity(params: Params) -> dict[str, Any]:
    sizes = sorted({params.run_config(e.name, t).env.num_actions for e in params.experiments.values() for t in e.tasks}
                   | {params.defaults["env"]["num_actions"]})
    report = {
        "action_sizes": sizes,
        "rewards": check_rewards(params, sizes),
        "state_encoding": check_state_encoding(sizes, params.sanity.seed),
        "gradients": check_gradients(params, sizes),
    }
    failures = [f for section in report.values() if isinstance(section, dict) for f in section["failures"]]
    return {**report, "passed": not failures, "failures": failures}
