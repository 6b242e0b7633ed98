"""``wmil bench``: sample efficiency first, then wall time, then speed (medians and ranges over seeds).

For the MVP (experiment ``mvp``) and for PPO (experiment ``ppo``) on each of its tasks, every seed
trains (no files written) until its rolling success on the full task over the last
``success_window`` episodes reaches 99% or its budget runs out, and reports:

1. **env steps to 90%** (each step may be an LLM request: what a run costs),
2. **wall seconds to 90%** (what a researcher waits; interpreter start-up excluded),
3. **regret**: failed episodes before 99% (all of them when it never got there),
4. **env steps/s** over the whole run.

Targets (this 2-core machine, one torch thread) are in :data:`TARGETS`; a value of ``None`` means
not reached within the budget. ``--llm`` adds the LLM parent's cost per protocol (wmil.bench.llm).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from wmil.config import Params
from wmil.errors import ConfigError
from wmil.results import FAILURES_TO_MASTERY, REACHED_MASTERY, STEPS_TO_90
from wmil.training.trainer import Trainer

SECONDS_TO_90 = "seconds_to_0.9"  # wall seconds to 90% rolling success (the clock of STEPS_TO_90)

#: (experiment, task, measure) -> target; steps and regret are medians over seeds, lower is better.
TARGETS: dict[tuple[str, str, str], float] = {
    ("mvp", "pattern_echo", STEPS_TO_90): 2000,
    ("mvp", "pattern_echo", FAILURES_TO_MASTERY): 800,
    ("ppo", "pattern_echo", STEPS_TO_90): 12_000,
    ("ppo", "conditional", STEPS_TO_90): 15_000,
    ("ppo", "sequence_next", STEPS_TO_90): 32_768,  # reached inside the budget (a median: 3/5 seeds at least)
}


def run_to_mastery(trainer: Trainer) -> dict[str, float | int | None]:
    """Train until 99% rolling success on the full task (or the budget): env steps and wall seconds
    to 90%, failed episodes before 99% (as the trainer's recorder counts them for metrics.json),
    env steps/s."""
    recorder, seconds_to_90 = trainer.recorder, None
    started = time.perf_counter()
    with trainer:
        for _ in trainer.iterations():
            if seconds_to_90 is None and recorder.steps_to[STEPS_TO_90] is not None:
                seconds_to_90 = time.perf_counter() - started
            if recorder.failures_to_mastery is not None:
                break
    mastered = recorder.failures_to_mastery is not None
    return {STEPS_TO_90: recorder.steps_to[STEPS_TO_90], SECONDS_TO_90: seconds_to_90,
            # never mastered: every failure of the budget counts
            FAILURES_TO_MASTERY: recorder.failures_to_mastery if mastered else recorder.failures,
            REACHED_MASTERY: mastered, "env_steps": trainer.env_steps,
            "env_steps_per_s": trainer.env_steps / (time.perf_counter() - started)}


def _spread(values: list[float | None]) -> dict[str, Any]:
    """Median and range over seeds; ``None`` (not reached) ranks worse than any value, so the
    median is None when half the seeds or more never got there, and so is the max."""
    median = statistics.median(float("inf") if v is None else v for v in values)
    reached = sorted(v for v in values if v is not None)
    return {"median": None if median == float("inf") else median, "min": reached[0] if reached else None,
            "max": reached[-1] if len(reached) == len(values) else None, "reached": len(reached),
            "runs": len(values), "per_seed": values}


def bench(params: Params, experiment: str, task: str, seeds: int) -> dict[str, Any]:
    if seeds > len(params.tuning_seeds):
        raise ConfigError(f"--seeds {seeds}: bench runs tuning seeds only, and params.yaml has {len(params.tuning_seeds)}")
    rows = []
    for seed in params.tuning_seeds[:seeds]:  # bench tunes: never a reported seed
        with tempfile.TemporaryDirectory() as run_dir:
            rows.append(run_to_mastery(Trainer(params.run_config(experiment, task, seed), run_dir)))
    out: dict[str, Any] = {key: _spread([r[key] for r in rows]) for key in (STEPS_TO_90, SECONDS_TO_90, FAILURES_TO_MASTERY)}
    # a run that never reached 99% still has a regret (every failure of its budget): count the masters
    out[FAILURES_TO_MASTERY]["reached"] = sum(bool(r[REACHED_MASTERY]) for r in rows)
    out["env_steps_per_s"] = _spread([r["env_steps_per_s"] for r in rows])
    out["budget"] = params.run_config(experiment, task).training.max_steps
    return out


def _fmt(spread: dict[str, Any], unit: str = "") -> str:
    def f(v):
        return "-" if v is None else (f"{v:,.1f}" if isinstance(v, float) and v < 100 else f"{v:,.0f}")
    return f"{f(spread['median'])}{unit} [{f(spread['min'])}, {f(spread['max'])}] ({spread['reached']}/{spread['runs']})"


def run_bench(params: Params, seeds: int = 5, llm: bool = False) -> dict[str, Any]:
    report: dict[str, Any] = {"seeds": seeds, "results": {}}
    runs = [("mvp", t) for t in params.experiments["mvp"].tasks] + [("ppo", t) for t in params.experiments["ppo"].tasks]
    print(f"{'run':<26}{'env steps to 90%':>30}{'wall s to 90%':>26}{'failed episodes to 99%':>32}{'env steps/s':>32}")
    for experiment, task in runs:
        result = report["results"].setdefault(experiment, {})[task] = bench(params, experiment, task, seeds)
        print(f"{experiment + ' ' + task:<26}{_fmt(result[STEPS_TO_90]):>30}{_fmt(result[SECONDS_TO_90], ' s'):>26}"
              f"{_fmt(result[FAILURES_TO_MASTERY]):>32}{_fmt(result['env_steps_per_s']):>32}", flush=True)
    print("median [min, max] over seeds (seeds that got there / seeds); '-': not reached within the budget")
    report["targets"] = []
    for (experiment, task, measure), target in TARGETS.items():
        spread = report["results"][experiment][task][measure]
        value = spread["median"]
        # a regret counts only over runs that mastered: a run that never did has its whole budget's failures
        ok = value is not None and value <= target and (measure != FAILURES_TO_MASTERY or spread["reached"] == spread["runs"])
        report["targets"].append({"experiment": experiment, "task": task, "measure": measure, "target": target,
                                  "median": value, "met": ok})
        print(f"target {experiment} {task} {measure} <= {target:,}: {'met' if ok else 'NOT met'} "
              f"(median {'-' if value is None else f'{value:,}'})")
    if llm:
        from wmil.bench.llm import bench_llm  # starts the bundled local LLM server

        report["llm"] = bench_llm(params)
    return report
