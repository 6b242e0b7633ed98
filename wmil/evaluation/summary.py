"""The paper's numbers: every run's held-out score and learning curve, aggregated across seeds.

``wmil summarize`` reads the run directories that ``params.yaml`` defines and writes
``results/metrics/summary.json`` (DVC metrics) and the tidy tables under ``results/plots/`` (DVC
plots) that the figures read. Aggregates are rliable's IQM with 95% stratified-bootstrap
intervals over seeds (``wmil.evaluation.stats``); per-seed values are kept beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from wmil.config import Params
from wmil.envs.tasks import NUM_LEVELS, make_task
from wmil.evaluation import stats

CURVE_FIELDS = ("env_steps", "episodes", "level", "success_rate", "rolling_success", "rolling_success_top", "entropy",
                "world_model_mse", "reward_goal", "reward_pred", "reward_cons")
#: Per-run scores (one row per run in ``runs.csv``); the first is the headline score.
SCORES = ("success_greedy", "success_sampled", "entropy", "world_model_mse")
MASTERY = 0.99  # rolling success that ends the regret count


def run_dirs(params: Params, runs_root: Path, experiments: list[str] | None = None):
    """(experiment, task, seed, run directory) of every run that params.yaml defines."""
    for name in experiments or params.experiments:
        for task in params.experiments[name].tasks:
            for seed in params.seeds:
                yield name, task, seed, Path(runs_root) / name / task / f"seed{seed}"


def _read(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (run not finished or not evaluated)")
    return json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())


def curves(params: Params, runs_root: Path) -> pd.DataFrame:
    """Every run's learning curve in one tidy table (DVC plot data)."""
    frames = [pd.read_csv(d / "curve.csv", usecols=list(CURVE_FIELDS)).assign(experiment=e, task=t, seed=s)
              for e, t, s, d in run_dirs(params, runs_root)]
    return pd.concat(frames, ignore_index=True)[["experiment", "task", "seed", *CURVE_FIELDS]]


def run_table(params: Params, runs_root: Path) -> pd.DataFrame:
    """One row per run: held-out scores (``eval.json``), steps to 90% (``metrics.json``), regret
    (every failed episode, at any level) until 99% rolling success on the full task and the ideal
    learner's regret (``curve.csv``), reward noise."""
    rows = []
    for exp, task_name, seed, run_dir in run_dirs(params, runs_root):
        evaluation, metrics = _read(run_dir / "eval.json"), _read(run_dir / "metrics.json")
        config = _read(run_dir / "config.yaml")
        curve = pd.read_csv(run_dir / "curve.csv")
        failures, mastered = stats.cumulative_failures(
            curve["episodes"].to_numpy(), curve["success_rate"].to_numpy(), curve["rolling_success_top"].to_numpy(), MASTERY)
        env = config["env"]
        task = make_task(task_name, env["num_actions"], env["episode_length"])
        top = NUM_LEVELS - 1
        rows.append({
            "experiment": exp, "task": task_name, "seed": seed,
            **{key: evaluation[key] for key in SCORES},
            **{f"success_greedy_level{lv}": evaluation["by_level"][str(lv)]["greedy"]["success"] for lv in range(NUM_LEVELS)},
            "steps_to_0.9": metrics["steps_to_0.9"], "max_steps": config["training"]["max_steps"],
            "failures_to_0.99": failures, "reached_0.99": mastered,
            # an ideal trial-and-error learner on single-step episodes of the full task
            "ideal_failures": (stats.ideal_trial_and_error_failures(len(task.problems(top)), task.num_actions)
                               if env["episode_length"] == 1 and not config["curriculum"]["enabled"] else None),
            "reward_flip_prob": config["parent"]["reward_flip_prob"],
            "algorithm": config["algorithm"]["name"],
            "parent": config["parent"]["name"],
        })
    return pd.DataFrame(rows)


def _matrix(table: pd.DataFrame, experiment: str, column: str, tasks: list[str]) -> np.ndarray:
    """``(runs, tasks)`` of ``column`` for ``experiment``, runs ordered by seed."""
    sub = table[table["experiment"] == experiment].pivot(index="seed", columns="task", values=column)
    return sub[tasks].to_numpy(dtype=float)


def summarize(params: Params, runs_root: Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """``summary.json`` and the plot tables ``{"runs": ..., "sample_efficiency": ...}``."""
    ev = params.evaluation
    table = run_table(params, runs_root)
    reps, seed = ev.bootstrap_reps, ev.seed
    # steps to 90%: a run that never got there counts as its whole budget (a censored value)
    table["steps_to_0.9_censored"] = table["steps_to_0.9"].fillna(table["max_steps"]).astype(float)
    summary: dict[str, Any] = {"settings": {
        "score": "greedy episode success on the full task (level 2) in held-out episodes (an independent "
                 "stream of the same problem tables), eval.json",
        "aggregate": "IQM over seeds with 95% stratified-bootstrap interval (rliable)",
        "bootstrap_reps": reps, "seeds": list(params.seeds)}, "experiments": {}}
    for name, exp in params.experiments.items():
        tasks = list(exp.tasks)
        entry: dict[str, Any] = {}
        for column in ("success_greedy", "success_sampled", "steps_to_0.9_censored", "failures_to_0.99"):
            per_task = {task: _matrix(table, name, column, [task]) for task in tasks}
            estimates = stats.interval_estimates({**per_task, "all_tasks": _matrix(table, name, column, tasks)}, reps, seed)
            entry[column] = {key: {**est["iqm"], "per_seed": per_task[key][:, 0].tolist() if key in per_task else None}
                             for key, est in estimates.items()}
        runs = table[table["experiment"] == name]
        entry["reached_0.9"] = {task: int(runs[runs["task"] == task]["steps_to_0.9"].notna().sum()) for task in tasks}
        entry["reached_0.99"] = {task: int(runs[runs["task"] == task]["reached_0.99"].sum()) for task in tasks}
        ideal = runs["ideal_failures"].dropna()
        entry["ideal_failures"] = float(ideal.iloc[0]) if len(ideal) else None
        summary["experiments"][name] = entry
    method = params.experiments[ev.method]
    summary["probability_of_improvement"] = {
        baseline: stats.probability_of_improvement(
            _matrix(table, ev.method, "success_greedy", list(method.tasks)),
            _matrix(table, baseline, "success_greedy", list(method.tasks)), reps, seed)
        for baseline in ev.baselines}
    summary["noise"] = {
        str(table[table["experiment"] == name]["reward_flip_prob"].iloc[0]): summary["experiments"][name]["success_greedy"]["all_tasks"]
        for name in ev.noise}
    return summary, {"runs": table, "sample_efficiency": sample_efficiency_table(params, runs_root)}


def sample_efficiency_table(params: Params, runs_root: Path) -> pd.DataFrame:
    """IQM rolling success on the full task (top level) with pointwise 95% CIs at every logged env
    step, per experiment x task; before a curriculum reaches the full task its success there is 0."""
    ev = params.evaluation
    frames = []
    for name, exp in params.experiments.items():
        for task in exp.tasks:
            runs = [pd.read_csv(d / "curve.csv", usecols=["env_steps", "rolling_success_top"])
                    for _, t, _, d in run_dirs(params, runs_root, [name]) if t == task]
            steps = runs[0]["env_steps"].to_numpy()
            # an empty success window logs NaN: it counts as no success yet
            scores = np.stack([r["rolling_success_top"].fillna(0.0).to_numpy() for r in runs])[:, None, :]
            curve = stats.sample_efficiency({"x": scores}, ev.bootstrap_reps, ev.seed)["x"]
            frames.append(pd.DataFrame({"experiment": name, "task": task, "env_steps": steps,
                                        "iqm": curve["iqm"], "lo": curve["lo"], "hi": curve["hi"]}))
    return pd.concat(frames, ignore_index=True)


def representation_table(analysis_files: list[Path]) -> pd.DataFrame:
    """One row per (task, source, seed, attribute) from ``wmil analyze`` outputs: probe accuracy
    and its chance level, k-means ARI and silhouette. ``source`` is an experiment, ``raw`` or
    ``untrained``."""
    rows = []
    for path in analysis_files:
        report = _read(Path(path))
        entries = [(name, a["run_seed"], a) for name, seeds in report["runs"].items() for a in seeds]
        entries += [(name, None, a) for name, a in report["references"].items()]
        for source, seed, analysis in entries:
            for attribute, probe in analysis["probes"].items():
                cluster = analysis["clusters"].get(attribute, {})
                rows.append({"task": report["task"], "source": source, "seed": seed, "attribute": attribute,
                             "probe_accuracy": probe["accuracy"], "chance": probe["chance"],
                             "ari": cluster.get("ari"), "silhouette": cluster.get("silhouette")})
    return pd.DataFrame(rows)


def representation_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Mean probe accuracy, ARI and silhouette over seeds per task x source x attribute."""
    means = table.groupby(["task", "source", "attribute"], sort=False)[["probe_accuracy", "chance", "ari", "silhouette"]].mean()
    out: dict[str, Any] = {}
    for (task, source, attribute), row in means.iterrows():
        out.setdefault(task, {}).setdefault(source, {})[attribute] = {k: float(v) for k, v in row.items()}
    return out
