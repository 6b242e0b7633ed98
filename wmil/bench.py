"""``wmil bench``: speed and sample-efficiency of the MVP and the env (medians over seeds).

Targets (2-core machine, one torch thread): the MVP's 10,000 steps train in <= 1.5 s of wall time
(interpreter start-up excluded), the vector env steps >= 5M env-steps/s, and the MVP reaches 90%
rolling success (last 500 episodes) in <= 2,000 env steps.
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
from wmil.parents import make_parent
from wmil.training.trainer import Trainer

TARGETS = {"mvp_train_seconds": 1.5, "env_steps_per_second": 5e6, "mvp_steps_to_0.9": 2000}
ENV_BENCH_ENVS = 1 << 16


def bench_env(task_name: str, num_actions: int, repeats: int = 50) -> float:
    task = make_task(task_name, num_actions)
    env = VectorEnv(make_parent("deterministic", task), ENV_BENCH_ENVS, 1, torch.Generator().manual_seed(0))
    env.reset(2)
    actions = torch.randint(num_actions, (ENV_BENCH_ENVS,), generator=torch.Generator().manual_seed(1))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        env.step(actions)
        times.append(time.perf_counter() - t0)
    return ENV_BENCH_ENVS / statistics.median(times)


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


def run_bench(params: Params, seeds: int = 5) -> dict[str, Any]:
    torch.set_num_threads(1)
    num_actions = params.defaults["env"]["num_actions"]
    env_rates = {name: bench_env(name, num_actions) for name in TASKS}
    report = {"env_steps_per_second_by_task": env_rates,
              "env_steps_per_second": statistics.median(env_rates.values()), **bench_mvp(params, seeds)}
    print(f"{'measure':<26}{'median':>14}{'target':>14}{'ratio':>9}")
    for key, target in TARGETS.items():
        value = report[key]
        if value is None:
            print(f"{key:<26}{'not reached':>14}{target:>14g}{'-':>9}")
            continue
        higher_is_better = key == "env_steps_per_second"
        ratio = value / target if higher_is_better else target / value
        print(f"{key:<26}{value:>14,.3f}{target:>14,g}{ratio:>8.2f}x")
    print("ratio > 1 means better than the target")
    report["targets"] = TARGETS
    return report
