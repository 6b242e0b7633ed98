"""Cost of the LLM parent (``wmil bench --llm``): for a whole ``llm_mvp`` run (the MVP taught by a
bundled model) under each judge protocol x bundled model (:data:`COMBINATIONS`), the requests a
cold cache needs and the wall seconds they take; then the same run again with the cache warm,
whose training speed should stay within :data:`TARGET_SLOWDOWN` of the rule parent's. Caches live
in a temporary folder, so the project's cache is neither read nor changed; one local server per
model serves every protocol."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from wmil.config import Params, RunConfig
from wmil.parents.llm.models import BUNDLED
from wmil.parents.llm.protocols import PROTOCOLS
from wmil.parents.llm.server import DEFAULT_MODEL, LocalLLMServer
from wmil.training.trainer import Trainer

TARGET_SLOWDOWN = 1.2  # warm LLM parent vs rule parent, in training wall time
EXPERIMENT, TASK = "llm_mvp", "pattern_echo"
#: (protocol, model): the program protocol on every bundled model; the per-state ones on the small
#: model only (a per-state request to the 1.5B model takes 5-20 s here: a cold run would take hours)
COMBINATIONS = tuple(("program", m) for m in BUNDLED) + tuple((p, DEFAULT_MODEL) for p in PROTOCOLS)


def train_seconds(config: RunConfig, run_dir: Path, server: LocalLLMServer | None = None) -> tuple[float, dict[str, Any]]:
    """Wall seconds of the run's whole budget (rollouts and updates, no files), and the parent's stats."""
    with Trainer(config, run_dir, server=server) as trainer:
        started = time.perf_counter()
        for _ in trainer.iterations():
            pass
        return time.perf_counter() - started, trainer.parent.stats()


def bench_llm(params: Params) -> dict[str, Any]:
    report: dict[str, Any] = {"experiment": EXPERIMENT, "task": TASK, "protocols": {}}
    servers = {model: LocalLLMServer(model=model) for model in dict.fromkeys(m for _, m in COMBINATIONS)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rule_s, _ = train_seconds(params.run_config(params.experiments[EXPERIMENT].extends, TASK), Path(tmp) / "rule")
            report["rule_parent_seconds"] = rule_s
            for protocol, model in COMBINATIONS:
                name = f"{protocol}@{model}"
                llm = {"parent": {"llm": {"protocol": protocol, "model": model,
                                          "cache_path": str(Path(tmp) / f"{name}.sqlite")}}}
                config = params.run_config(EXPERIMENT, TASK, 0, llm)
                cold_s, cold = train_seconds(config, Path(tmp) / f"{name}-cold", servers[model])
                warm_s, warm = train_seconds(config, Path(tmp) / f"{name}-warm", servers[model])
                entry = report["protocols"][name] = {
                    "protocol": protocol, "model": model,
                    "cold_requests": cold["requests"], "cold_seconds": cold_s, "warm_requests": warm["requests"],
                    "warm_seconds": warm_s, "warm_slowdown": warm_s / rule_s, "env_steps": config.training.max_steps}
                print(f"llm {name:<36} cold: {entry['cold_requests']:>4} requests, {cold_s:6.1f} s; warm: "
                      f"{warm_s:5.2f} s = {entry['warm_slowdown']:.2f}x the rule parent's {rule_s:.2f} s "
                      f"(target <= {TARGET_SLOWDOWN:g}x)", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    report["target_slowdown"] = TARGET_SLOWDOWN
    return report
