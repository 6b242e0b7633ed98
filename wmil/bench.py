"""``wmil bench``: speed and sample-efficiency of the MVP, the env and PPO (medians over seeds).

Targets (2-core machine, one torch thread): the MVP's 10,000 steps train in <= 1.5 s of wall time
(interpreter start-up excluded), the vector env steps >= 5M env-steps/s, the MVP reaches 90%
rolling success (last 500 episodes) in <= 2,000 env steps, and PPO (the ``ppo`` experiment's
configuration) trains at >= 10,000 env steps/s end to end. ``--ppo-levels`` adds the env steps PPO
needs to reach 90% rolling success on each task at each fixed level.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import torch

from wmil.config import Params
from wmil.envs.env import VectorEnv
from wmil.envs.tasks import TASKS, make_task
from wmil.parents import DeterministicParent
from wmil.training.trainer import Trainer

TARGETS = {"mvp_train_seconds": 1.5, "env_steps_per_second": 5e6, "mvp_steps_to_0.9": 2000,
           "ppo_env_steps_per_second": 1e4}
HIGHER_IS_BETTER = {"env_steps_per_second", "ppo_env_steps_per_second"}
PPO_THROUGHPUT_STEPS = 20480
PPO_LEVEL_BUDGET = 300_000
ENV_BENCH_ENVS = 1 << 16


def time_env_step(task_name: str, num_actions: int, num_envs: int, repeats: int) -> float:
    """Median seconds of one batched env step of ``num_envs`` single-step episodes at level 2,
    problem generation included (with T = 1 every step starts a fresh episode)."""
    task = make_task(task_name, num_actions)
    env = VectorEnv(DeterministicParent(task), num_envs, 1, torch.Generator().manual_seed(0))
    env.level = 2
    actions = torch.randint(num_actions, (num_envs,), generator=torch.Generator().manual_seed(1))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        env.reset()
        env.step(actions)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_mvp(params: Params, seeds: int) -> dict[str, Any]:
    experiment = params.mvp_criteria.experiment
    task = params.experiments[experiment].tasks[0]
    walls, steps_to = [], []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as run_dir:
            trainer = Trainer(params.run_config(experiment, task, seed), run_dir)
            t0 = time.perf_counter()
            metrics = trainer.train(progress=False)
            walls.append(time.perf_counter() - t0)
            steps_to.append(metrics["steps_to_0.9"])
    reached = [s for s in steps_to if s is not None]
    return {
        "mvp_train_seconds": statistics.median(walls),
        "mvp_train_seconds_per_seed": walls,
        "mvp_steps_to_0.9": statistics.median(reached) if len(reached) == len(steps_to) else None,
        "mvp_steps_to_0.9_per_seed": steps_to,
    }


def bench_ppo_throughput(params: Params) -> dict[str, float]:
    """Env steps per wall second of the ``ppo`` experiment on each task (rollout + update)."""
    rates = {}
    for task in params.experiments["ppo"].tasks:
        config = params.run_config("ppo", task, 0, {"training": {"max_steps": PPO_THROUGHPUT_STEPS}})
        with tempfile.TemporaryDirectory() as run_dir:
            trainer = Trainer(config, run_dir)
            t0 = time.perf_counter()
            trainer.train(progress=False)
            rates[task] = config.training.max_steps / (time.perf_counter() - t0)
    return rates


def bench_ppo_levels(params: Params, seeds: int) -> dict[str, dict[str, float | None]]:
    """Median env steps to 90% rolling success, PPO at each fixed level (None: not within budget)."""
    out: dict[str, dict[str, float | None]] = {}
    for task in params.experiments["ppo"].tasks:
        out[task] = {}
        for level in range(3):
            steps = []
            for seed in range(seeds):
                config = params.run_config("ppo", task, seed, {"env": {"level": level},
                                                              "training": {"max_steps": PPO_LEVEL_BUDGET}})
                with tempfile.TemporaryDirectory() as run_dir:
                    steps.append(Trainer(config, run_dir).train_until_success(0.9))
            reached = [s for s in steps if s is not None]
            out[task][str(level)] = statistics.median(reached) if len(reached) == len(steps) else None
            print(f"ppo steps to 90%: {task} level {level}: {steps}", flush=True)
    return out


def run_bench(params: Params, seeds: int = 5, ppo_levels: bool = False, ppo_seeds: int = 3,
              llm: bool = False) -> dict[str, Any]:
    torch.set_num_threads(1)
    num_actions = params.defaults["env"]["num_actions"]
    env_rates = {name: ENV_BENCH_ENVS / time_env_step(name, num_actions, ENV_BENCH_ENVS, 50) for name in TASKS}
    ppo_rates = bench_ppo_throughput(params)
    report = {"env_steps_per_second_by_task": env_rates,
              "env_steps_per_second": statistics.median(env_rates.values()), **bench_mvp(params, seeds),
              "ppo_env_steps_per_second_by_task": ppo_rates,
              "ppo_env_steps_per_second": statistics.median(ppo_rates.values())}
    if ppo_levels:
        report["ppo_steps_to_0.9_by_task_level"] = bench_ppo_levels(params, ppo_seeds)
    if llm:
        from wmil.llm_bench import bench_llm  # starts the bundled local LLM server

        report["llm"] = bench_llm(params)
    print(f"{'measure':<26}{'median':>14}{'target':>14}{'ratio':>9}")
    for key, target in TARGETS.items():
        value = report[key]
        if value is None:
            print(f"{key:<26}{'not reached':>14}{target:>14g}{'-':>9}")
            continue
        ratio = value / target if key in HIGHER_IS_BETTER else target / value
        print(f"{key:<26}{value:>14,.3f}{target:>14,g}{ratio:>8.2f}x")
    print("ratio > 1 means better than the target")
    report["targets"] = TARGETS
    return report
