"""Speed of the LLM parent: training env steps/s with a warm cache against the deterministic parent
(target: at most 2x slower), and cold-cache requests/s with ``concurrency`` requests in flight
against one at a time. Experiments ``llm`` and ``mvp`` on pattern_echo; caches live in a temporary
folder, so the project's cache is neither read nor changed."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from wmil.config import Params, RunConfig
from wmil.envs.tasks import make_task
from wmil.parents.llm.parent import ParentLLM
from wmil.parents.llm.server import LocalLLMServer
from wmil.training.trainer import Trainer

TARGET_SLOWDOWN = 2.0  # warm LLM parent vs deterministic parent, in training steps/s
TASK = "pattern_echo"


def train_seconds(config: RunConfig, run_dir: str | Path) -> tuple[float, dict[str, Any]]:
    """Wall seconds of ``training.max_steps`` env steps (rollouts and updates, no files), and the
    parent's stats."""
    trainer = Trainer(config, run_dir)
    try:
        started = time.perf_counter()
        while trainer.env_steps < config.training.max_steps:
            trainer.iterate()
            trainer.pending.clear()
        return time.perf_counter() - started, trainer.parent.stats()
    finally:
        trainer.parent.close()


def requests_per_second(params: Params, server: LocalLLMServer, cache_path: Path, concurrency: int,
                        n: int) -> float:
    """Cold-cache throughput: ``n`` distinct reward questions sent at most ``concurrency`` at once."""
    config = params.run_config("llm", TASK)
    llm = dataclasses.replace(config.parent.llm, concurrency=concurrency, cache_path=str(cache_path))
    task = make_task(TASK, config.env.num_actions, config.env.episode_length)
    states = task.initial_states(torch.arange(n).remainder(task.num_actions).unsqueeze(1))
    actions = torch.arange(n).div(task.num_actions, rounding_mode="floor").remainder(task.num_actions)
    with ParentLLM(task, llm, server=server) as parent:
        requests = [parent.reward_request(s, int(a)) for s, a in zip(states, actions)]
        started = time.perf_counter()
        parent.resolve(requests)
        return n / (time.perf_counter() - started)


def bench_llm(params: Params, max_steps: int = 10_000, requests: int = 16) -> dict[str, Any]:
    """The report: steps/s of both parents, the slowdown (deterministic / warm LLM), the cold run's
    seconds and stats, and cold requests/s at ``concurrency`` and at 1."""
    torch.set_num_threads(1)
    steps = {"training": {"max_steps": max_steps}}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache.sqlite"
        llm_config = params.run_config("llm", TASK, 0, {**steps, "parent": {"llm": {"cache_path": str(cache)}}})
        deterministic_s, _ = train_seconds(params.run_config("mvp", TASK, 0, steps), Path(tmp) / "mvp")
        cold_s, cold_stats = train_seconds(llm_config, Path(tmp) / "cold")  # fills the cache
        warm_s, warm_stats = train_seconds(llm_config, Path(tmp) / "warm")  # same seed: every answer cached
        concurrency = llm_config.parent.llm.concurrency
        with LocalLLMServer() as server:
            serial = requests_per_second(params, server, Path(tmp) / "serial.sqlite", 1, requests)
            parallel = requests_per_second(params, server, Path(tmp) / "parallel.sqlite", concurrency, requests)
    report = {
        "env_steps": max_steps,
        "deterministic_steps_per_s": max_steps / deterministic_s,
        "llm_warm_steps_per_s": max_steps / warm_s,
        "llm_warm_slowdown": warm_s / deterministic_s,
        "llm_warm_slowdown_target": TARGET_SLOWDOWN,
        "llm_warm_stats": warm_stats,
        "llm_cold_train_seconds": cold_s,
        "llm_cold_stats": cold_stats,
        "cold_requests": requests,
        "cold_requests_per_s_serial": serial,
        "cold_requests_per_s_concurrent": parallel,
        "concurrency": concurrency,
    }
    print(f"deterministic parent: {report['deterministic_steps_per_s']:,.0f} steps/s; LLM parent, warm cache: "
          f"{report['llm_warm_steps_per_s']:,.0f} steps/s ({report['llm_warm_slowdown']:.2f}x slower, "
          f"target <= {TARGET_SLOWDOWN:g}x); cold run {cold_s:.1f} s for {cold_stats['requests']} requests")
    print(f"cold requests/s: {serial:.2f} one at a time, {parallel:.2f} with {concurrency} in flight")
    return report
