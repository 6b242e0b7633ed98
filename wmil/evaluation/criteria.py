"""The plan's four LOCKED MVP success criteria, checked on every seed's learning curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from wmil import layout, results
from wmil.config import Params
from wmil.errors import MissingResult


def trend_falls(values: pd.Series) -> tuple[float, float, bool]:
    """Mean of the first and of the last quarter of a curve, and whether it fell."""
    k = max(1, len(values) // 4)
    first, last = float(values.iloc[:k].mean()), float(values.iloc[-k:].mean())
    return first, last, last < first


def seed_criteria(run_dir: Path, by_step: int, by_step_success: float) -> dict[str, Any]:
    curve = pd.read_csv(run_dir / "curve.csv")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    chance = 1.0 / config["env"]["num_actions"]
    final = float(curve["rolling_success"].iloc[-1])
    upto = curve[curve["env_steps"] <= by_step]
    at_step = float(upto["rolling_success"].iloc[-1]) if len(upto) else 0.0
    e0, e1, entropy_falls = trend_falls(curve["entropy"])
    m0, m1, mse_falls = trend_falls(curve["world_model_mse"])
    checks = {
        "beats_chance": final > chance,
        f"above_{by_step_success:g}_by_step_{by_step}": at_step > by_step_success,
        "entropy_falls": entropy_falls,
        "world_model_mse_falls": mse_falls,
    }
    return {
        "run_dir": str(run_dir), "chance": chance, "final_rolling_success": final,
        f"rolling_success_at_step_{by_step}": at_step,
        "entropy_first_quarter": e0, "entropy_last_quarter": e1,
        "world_model_mse_first_quarter": m0, "world_model_mse_last_quarter": m1,
        "checks": checks, "passed": all(checks.values()),
    }


def mvp_criteria(params: Params, runs_root: Path) -> dict[str, Any]:
    crit = params.mvp_criteria
    exp = params.experiments[crit.experiment]
    seeds: dict[str, Any] = {}
    failures = []
    for task in exp.tasks:
        for seed in params.seeds_of(crit.experiment):
            run_dir = layout.run_dir(crit.experiment, task, seed, runs_root)
            try:
                results.read_metrics(run_dir)  # a finished run, not its job's failure record
            except MissingResult as missing:
                record = missing.record
                failures.append(f"{run_dir}: its job {record['job']!r} failed ({record['reason']}; see {record['log']})")
                continue
            except FileNotFoundError:
                failures.append(f"{run_dir}: no finished run ({layout.RUN_METRICS} missing)")
                continue
            result = seed_criteria(run_dir, crit.by_step, crit.by_step_success)
            seeds[f"{task}/seed{seed}"] = result
            failures += [f"{task}/seed{seed}: {name} failed" for name, ok in result["checks"].items() if not ok]
    return {"experiment": crit.experiment, "seeds": seeds, "passed": not failures, "failures": failures}
