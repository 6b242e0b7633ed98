"""The paper's numbers: every run's held-out score and learning curve, aggregated across seeds.

``wmil summarize`` reads the run directories that ``params.yaml`` defines and writes
``results/metrics/summary.json`` (DVC metrics) and the tidy tables under ``results/plots/`` (DVC
plots) that the figures read. Aggregates are rliable's IQM with 95% stratified-bootstrap
intervals over seeds (``wmil.evaluation.stats``); per-seed values are kept beside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from wmil import layout, results
from wmil.config import Params
from wmil.evaluation import stats
from wmil.jobs import failure_of
from wmil.results import (
    CURRICULUM_MEASURE_KEYS,
    FAILURES_TO_MASTERY,
    REACHED_MASTERY,
    STEPS_TO_90,
    Climb,
    Comparison,
    CurriculumComparison,
    Estimate,
    ExperimentSummary,
    Interval,
    LlmOutcome,
    MissingEntry,
    NoComparison,
    ParentQualityPoint,
    Prediction,
    RuleEntry,
    SeedPrediction,
    StepsToMastery,
    Summary,
    WorldModelComparison,
    WorldModelVariant,
)
from wmil.seeding import split_seed
from wmil.tasks.registry import TASKS
from wmil.tasks.rules import NUM_LEVELS, Task, make_task

CURVE_FIELDS = ("env_steps", "episodes", "level", "success_rate", "rolling_success", "rolling_success_top", "entropy",
                "world_model_mse", "reward_goal", "reward_pred", "reward_cons")
#: The files of a run that the summary reads, each made by a (guarded) job of the pipeline.
RUN_RESULTS = (layout.RUN_METRICS, "curve.csv", layout.RUN_EVALUATION)
#: Per-run scores (one row per run in ``runs.csv``); the first is the headline score. Success on the
#: run's training problems, and ``held_out_*`` on the problems it never trained on (NaN: none held out).
RUN_SCORES = ("success_greedy", "held_out_success_greedy", "success_sampled", "held_out_success_sampled", "entropy",
              "world_model_mse")
#: The run table's env steps to 90% with a run that never got there at its budget: every run ranks.
STEPS_CENSORED = f"{STEPS_TO_90}_censored"


def run_dirs(params: Params, runs_root: Path, experiments: list[str] | None = None):
    """(experiment, task, seed, run directory) of every run that params.yaml defines."""
    for name in experiments or params.experiments:
        for task in params.experiments[name].tasks:
            for seed in params.seeds_of(name):
                yield name, task, seed, layout.run_dir(name, task, seed, runs_root)


def missing_entry(result: str, record: dict[str, Any], experiment: str | None = None) -> MissingEntry:
    """How the summary lists a result whose job failed."""
    return {"result": result, "experiment": experiment, "job": record["job"], "reason": record["reason"],
            "log": record["log"]}


def failed_runs(params: Params, runs_root: Path) -> list[MissingEntry]:
    """The runs whose results are failure records (their job failed), as :func:`missing_entry`."""
    missing = []
    for exp, task, seed, run_dir in run_dirs(params, runs_root):
        record = next((r for r in map(failure_of, (run_dir / n for n in RUN_RESULTS)) if r is not None), None)
        if record is not None:
            missing.append(missing_entry(f"runs/{layout.run_name(exp, task, seed)}", record, exp))
    return missing


def _read_config(run_dir: Path) -> dict[str, Any]:
    """A run's resolved configuration, as its ``config.yaml`` holds it."""
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def curves(params: Params, runs_root: Path) -> pd.DataFrame:
    """Every run's learning curve in one tidy table (DVC plot data); experiments with a failed
    run are left out."""
    frames = [pd.read_csv(d / "curve.csv", usecols=list(CURVE_FIELDS)).assign(experiment=e, task=t, seed=s)
              for e, t, s, d in run_dirs(params, runs_root, complete_experiments(params, runs_root))]
    return pd.concat(frames, ignore_index=True)[["experiment", "task", "seed", *CURVE_FIELDS]]


def complete_experiments(params: Params, runs_root: Path) -> list[str]:
    """The experiments none of whose runs failed: an experiment missing some seeds is not
    aggregated at all (the seeds that fail are not a random sample)."""
    failed = {m["experiment"] for m in failed_runs(params, runs_root)}
    return [name for name in params.experiments if name not in failed]


def run_table(params: Params, runs_root: Path) -> pd.DataFrame:
    """One row per run of the complete experiments: evaluation scores (``eval.json``), steps to 90%
    and the regret (every failed episode, at any level, until 99% rolling success on the full task,
    as the trainer counted them after every update: ``metrics.json``), the ideal learner's regret,
    reward noise."""
    rows = []
    for exp, task_name, seed, run_dir in run_dirs(params, runs_root, complete_experiments(params, runs_root)):
        evaluation, metrics = results.read_evaluation(run_dir), results.read_metrics(run_dir)
        config = _read_config(run_dir)
        mastered = metrics[FAILURES_TO_MASTERY] is not None  # its regret is counted when it reaches MASTERY
        scores: Mapping[str, object] = evaluation  # RUN_SCORES are keys of it
        env = config["env"]
        rows.append({
            "experiment": exp, "task": task_name, "seed": seed,
            **{key: scores[key] for key in RUN_SCORES},
            **{f"success_greedy_level{lv}": evaluation["by_level"][str(lv)]["greedy"]["success"] for lv in range(NUM_LEVELS)},
            "success_all_levels": float(np.mean([evaluation["by_level"][str(lv)]["greedy"]["success"]
                                                 for lv in range(NUM_LEVELS)])),
            STEPS_TO_90: metrics[STEPS_TO_90], "max_steps": config["training"]["max_steps"],
            "embedding_switch_step": metrics["embedding_switch_step"],
            # a curriculum's climb: the highest level it reached and the env steps it played at each
            "top_level": (env["level"] if metrics["level_entered_at"] is None else
                          max(lv for lv, at in enumerate(metrics["level_entered_at"]) if at is not None)),
            "level_entered_at": metrics["level_entered_at"], "steps_per_level": metrics["steps_per_level"],
            # the regret: failed episodes until mastery, or all of them when it never came
            FAILURES_TO_MASTERY: metrics[FAILURES_TO_MASTERY] if mastered else metrics["failures"], REACHED_MASTERY: mastered,
            # an ideal trial-and-error learner on single-step episodes of the full task's training problems
            "ideal_failures": (stats.ideal_trial_and_error_failures(evaluation["training_problems"], env["num_actions"])
                               if env["episode_length"] == 1 and not config["curriculum"]["enabled"] else None),
            "false_positive_rate": config["parent"]["false_positive_rate"],
            "false_negative_rate": config["parent"]["false_negative_rate"],
            "noise_correction": config["rewards"]["noise_correction"],
            "algorithm": config["algorithm"]["name"],
            "parent": config["parent"]["name"],
            "protocol": config["parent"]["llm"]["protocol"] if config["parent"]["name"] == "llm" else None,
            "level": env["level"], "held_out_episodes": evaluation["episodes_per_level"],
            "training_problems": evaluation["training_problems"], "held_out_problems": len(evaluation["held_out_problems"]),
        })
    return pd.DataFrame(rows)


def _matrix(table: pd.DataFrame, experiment: str, column: str, tasks: list[str]) -> np.ndarray:
    """``(runs, tasks)`` of ``column`` for ``experiment``, runs ordered by seed."""
    sub = table[table["experiment"] == experiment].pivot(index="seed", columns="task", values=column)
    return sub[tasks].to_numpy(dtype=float)


def parent_quality(params: Params, experiments: dict[str, ExperimentSummary], complete: list[str]
                   ) -> list[ParentQualityPoint]:
    """One point per experiment x task of the parent-quality sweeps (``evaluation.noise``): the
    rule parent's error rates, its J = 1 - FPR - FNR, whether the learner corrected for them, and
    success on the training problems (IQM over seeds, 95% CI)."""
    ev = params.evaluation
    points: list[ParentQualityPoint] = []
    for name in params.expand(ev.noise):
        if name not in complete:
            continue
        exp = params.experiments[name]
        for task in exp.tasks:
            parent = params.run_config(name, task).parent
            points.append({"experiment": name, "sweep": exp.sweep or name, "task": task,
                           "false_positive_rate": parent.false_positive_rate,
                           "false_negative_rate": parent.false_negative_rate, "j": parent.informativeness,
                           "noise_correction": params.run_config(name, task).rewards.noise_correction,
                           "success_greedy": experiments[name]["success_greedy"][task]})
    return points


def j_curve(points: list[ParentQualityPoint], task: str, j: float, chance: float) -> float | None:
    """Success at informativeness ``j`` on ``task`` read off the uncorrected sweep points
    (linear interpolation in J of the IQMs, points of equal J averaged): what a parent whose
    errors are random would give. Below the sweep the curve is anchored where it is known without
    training: at J = 0 the verdicts carry no information and success is ``chance`` (a uniform
    policy's); at J = -1 they always favour a wrong answer, which the learner then gives, so 0."""
    curve: dict[float, list[float]] = {}
    for p in points:
        if p["task"] == task and not p["noise_correction"]:
            curve.setdefault(round(p["j"], 6), []).append(p["success_greedy"]["value"])
    if not curve:
        return None
    curve.setdefault(0.0, [chance])
    curve.setdefault(-1.0, [0.0])
    xs = sorted(curve)
    return float(np.interp(j, xs, [float(np.mean(curve[x])) for x in xs]))


def world_model_comparison(params: Params, table: pd.DataFrame, complete: list[str]
                           ) -> WorldModelComparison | NoComparison:
    """Each world-model variant or control (the keys of ``evaluation.world_model``, sweeps
    expanded) against its reference without a world model on the tasks both run: the variant's
    settings and the probability that one of its runs beats one of the reference's (rliable; ties
    count half, 95% CI, and the test's p-value), per task and over all tasks when there are
    several, on success (``p_success``) and on env steps to 90% (``p_steps``: fewer is better; a
    run that never got there ranks at the budget, which both share). Its steps and success
    themselves are the variant's entry under ``experiments``."""
    ev = params.evaluation
    out: dict[str, WorldModelVariant] = {}
    for variant, reference in ev.world_model.items():
        for name in params.expand([variant]):
            if name in complete and reference in complete:
                out[name] = _world_model_entry(params, table, name, reference)
    if not out:
        return {}
    # whether the rules' next problem depends on the answer (SequenceNext moves on by it): there the
    # next state a world model predicts holds the answer
    tasks = {t for v in out.values() for t in v["tasks"]}
    holds = {t: TASKS[t].next_problem is not Task.next_problem for t in sorted(tasks)}
    return {"variants": out, "next_problem_holds_answer": holds}


def _world_model_entry(params: Params, table: pd.DataFrame, name: str, reference: str) -> WorldModelVariant:
    """One variant of :func:`world_model_comparison` against ``reference``."""
    ev = params.evaluation
    tasks = [t for t in params.experiments[name].tasks if t in params.experiments[reference].tasks]
    config = params.run_config(name, tasks[0])

    def improvement(column: str, sign: float) -> dict[str, Comparison]:
        """P(a run of the variant beats one of the reference) on ``column`` (``sign`` +1: higher is better)."""
        x, y = sign * _matrix(table, name, column, tasks), sign * _matrix(table, reference, column, tasks)
        out = {task: stats.probability_of_improvement(x[:, [i]], y[:, [i]], ev.bootstrap_reps, ev.seed)
               for i, task in enumerate(tasks)}
        if len(tasks) > 1:
            out["all_tasks"] = stats.probability_of_improvement(x, y, ev.bootstrap_reps, ev.seed)
        return out

    entry: WorldModelVariant = {"reference": reference, "target": config.model.world_model_target,
                                "head": config.model.world_model_head, "detached": config.model.world_model_detached,
                                "next_problem": config.env.next_problem, "distill_coef": config.algorithm.distill_coef,
                                "world_model_coef": config.algorithm.world_model_coef,
                                "embedding_after_steps": config.model.embedding_after_steps,
                                "embedding_after_success": config.model.embedding_after_success, "tasks": tasks,
                                "p_success": improvement("success_greedy", 1.0), "p_steps": improvement(STEPS_CENSORED, -1.0)}
    if config.model.world_model_target == "embedding":  # env steps at each seed's switch (None: never)
        runs = table[table["experiment"] == name].sort_values("seed")
        entry["embedding_switch_step"] = {task: [None if pd.isna(v) else int(v) for v in
                                                 runs[runs["task"] == task]["embedding_switch_step"]]
                                          for task in tasks}
    return entry


#: The share of a curriculum's runs that must reach the top level for its verdict on a task: below
#: it the comparison is zero-shot transfer to a level it never trained on, and reads "inconclusive".
CURRICULUM_CLIMBED = 0.8


def curriculum_comparison(params: Params, table: pd.DataFrame, complete: list[str]
                          ) -> CurriculumComparison | NoComparison:
    """The method with the mastery curriculum (``evaluation.curriculum``) against the matched arm
    without it (``evaluation.curriculum_reference``), which shares every setting, the env-step
    budget and the learning-rate schedule: greedy success on the training problems of the full task
    (level 2) and averaged over all levels (IQM [95% CI]), and env steps to 90% on the full task
    (Kaplan-Meier median, censored at the budget). Per measure and task (and over all tasks for
    the rates): each arm's estimate and P(curriculum beats the reference) (rliable; ties count
    half; fewer steps is better, never ranks at the budget). ``climb``: each curriculum run's top
    level and env steps per level. On a task where fewer than :data:`CURRICULUM_CLIMBED` of the
    runs reached the top level, its comparisons carry no test (``inconclusive``)."""
    ev = params.evaluation
    reference, curriculum = ev.curriculum_reference, ev.curriculum
    if reference not in complete or curriculum not in complete:
        return {}
    tasks = [t for t in params.experiments[curriculum].tasks if t in params.experiments[reference].tasks]
    reps, seed = ev.bootstrap_reps, ev.seed
    runs = table[table["experiment"] == curriculum].sort_values("seed")
    climb: dict[str, list[Climb]] = {
        t: [{"seed": int(r["seed"]), "top_level": int(r["top_level"]), "level_entered_at": r["level_entered_at"],
             "steps_per_level": r["steps_per_level"]} for _, r in runs[runs["task"] == t].iterrows()] for t in tasks}
    top = NUM_LEVELS - 1
    reached = {t: sum(r["top_level"] == top for r in climb[t]) for t in tasks}
    inconclusive = {t: f"inconclusive: {reached[t]}/{len(climb[t])} curriculum runs reached level {top}"
                    for t in tasks if reached[t] < CURRICULUM_CLIMBED * len(climb[t])}

    def measure(column: str, sign: float, pooled: bool) -> dict[str, Any]:
        """Both arms on the run table's ``column`` (``sign`` +1 where higher is better), per task and,
        when ``pooled``, over all tasks (rates are; env steps, with a budget per task, are not)."""
        per_experiment = {name: {**{t: _matrix(table, name, column, [t]) for t in tasks},
                                 **({"all_tasks": _matrix(table, name, column, tasks)} if pooled else {})}
                          for name in (curriculum, reference)}
        if pooled:
            entry: dict[str, Any] = {name: {key: est["iqm"] for key, est in stats.interval_estimates(
                matrices, reps, seed, aggregates=("iqm",)).items()} for name, matrices in per_experiment.items()}
        else:
            entry = {name: {t: steps_to_mastery(table, name, t) for t in tasks} for name in (curriculum, reference)}
        entry["p"] = {key: stats.probability_of_improvement(sign * per_experiment[curriculum][key],
                                                            sign * per_experiment[reference][key], reps, seed)
                      for key in per_experiment[curriculum]}
        for task, reason in inconclusive.items():  # no test where the curriculum never trained on the full task
            entry["p"][task] = {**entry["p"][task], "p_value": None, "inconclusive": reason}
        return entry

    return {"reference": reference, "curriculum": curriculum,
            "budget": {t: params.run_config(curriculum, t).training.max_steps for t in tasks},
            "climb": climb, "reached_top": reached,
            "success_level2": measure("success_greedy", 1.0, pooled=True),
            "success_all_levels": measure("success_all_levels", 1.0, pooled=True),
            STEPS_TO_90: measure(STEPS_CENSORED, -1.0, pooled=False)}


def training_ceiling(block: dict[str, Any], task: Task, run_seed: int) -> tuple[float, float, int] | None:
    """``(mean, pick variance, problems)`` of the audit's episode ceilings over the problems of one
    run's training split (``block``: the audit's task x level block); None when the audit has no
    per-problem ceilings (written before they were) or none of its problems is a training one."""
    per_problem = block["episode"].get("per_problem")
    if not per_problem:
        return None
    held_out = task.held_out(torch.tensor([p["problem"] for p in per_problem]), split_seed(run_seed)).numpy()
    chances = np.array([p["ceiling"][0] for p in per_problem])[~held_out]
    return (float(chances.mean()), stats.pick_variance(chances), len(chances)) if len(chances) else None


def predict_runs(block: dict[str, Any], task: Task, rows: pd.DataFrame) -> Prediction | None:
    """Each run's predicted success from the audit's task x level ``block`` (see
    :func:`llm_outcomes`), over its own training problems; None where the audit cannot say."""
    found = [training_ceiling(block, task, int(run_seed)) for run_seed in rows["seed"]]
    ceilings = [c for c in found if c is not None]
    if len(ceilings) < len(found):
        return None
    episodes = int(rows["held_out_episodes"].iloc[0])
    per_seed: list[SeedPrediction] = []
    for c, pick, problems in ceilings:
        sd = float(np.sqrt(pick / problems + c * (1 - c) / episodes))
        per_seed.append({"mean": c, "interval": [max(0.0, c - 1.96 * sd), min(1.0, c + 1.96 * sd)]})
    return {"rule": "episode ceiling over the run's training problems (systematic errors)",
            "mean": float(np.mean([p["mean"] for p in per_seed])),
            "interval": [min(p["interval"][0] for p in per_seed), max(p["interval"][1] for p in per_seed)],
            "per_seed": per_seed}


def llm_outcomes(params: Params, table: pd.DataFrame, experiments: dict[str, ExperimentSummary], complete: list[str],
                 audit: dict[str, Any] | None, points: list[ParentQualityPoint]) -> dict[str, dict[str, LlmOutcome]]:
    """For every experiment x task taught by the LLM: success on its training problems (IQM, CI,
    per seed) beside what its audit predicts, when the audit covers its protocol at its model,
    action space and episode length. The rule: the parent answers at temperature 0, so its errors
    are systematic and the prediction for a run is the audit's episode ceiling ``c`` at the run's
    protocol, task and level (the per-state ceilings multiplied along each problem's episode,
    continuations included), averaged over the run's training problems, with a 95% interval ``c
    +- 1.96 sd``: ``sd^2 = pick_variance / problems`` (the policy's choice where the verdicts leave
    one, a coin per problem) ``+ c (1 - c) / episodes`` (the evaluation episodes), clipped to ``[0,
    1]``; a run agrees when its success lies inside its own interval. The J curve's value at the
    audited J (random errors) is shown beside it."""
    out: dict[str, dict[str, LlmOutcome]] = {}
    for name, exp in params.experiments.items():
        for task_name in exp.tasks:
            config = params.run_config(name, task_name)
            if config.parent.name != "llm" or name not in complete:
                continue
            rows = table[(table["experiment"] == name) & (table["task"] == task_name)].sort_values("seed")
            entry: LlmOutcome = {"protocol": config.parent.llm.protocol, "level": config.env.level,
                                 "success_greedy": experiments[name]["success_greedy"][task_name], "prediction": None}
            audited = (audit or {}).get("protocols", {}).get(config.parent.llm.protocol)
            settings = (config.parent.llm.model, config.env.num_actions, config.env.episode_length)
            if audited is not None and (audited["model"], audited["num_actions"], audited["episode_length"]) != settings:
                audited = None  # audited with another model, action space or episode length: no prediction
            block = None if audited is None else audited["by_task_level"][task_name][str(config.env.level)]
            task = make_task(task_name, config.env.num_actions, config.env.episode_length)
            predicted = None if block is None else predict_runs(block, task, rows)
            entry["prediction"] = predicted
            if block is None or predicted is None:
                entry["no_prediction"] = ("no audit of its protocol at its model, A and T" if block is None else
                                          "its audit has no episode ceiling per problem (rerun wmil llm-audit)")
            else:
                inside = [bool(p["interval"][0] <= s <= p["interval"][1])
                          for p, s in zip(predicted["per_seed"], rows["success_greedy"])]
                entry.update({"audited_j": block["j"], "audited_tpr": block["tpr"], "audited_fpr": block["fpr"],
                              "j_curve": j_curve(points, task_name, block["j"],
                                                 (1 / config.env.num_actions) ** config.env.episode_length),
                              "inside": inside, "agrees": all(inside)})
            out.setdefault(name, {})[task_name] = entry
    return out


def steps_to_mastery(table: pd.DataFrame, experiment: str, task: str) -> StepsToMastery:
    """Env steps to 90% rolling success of ``experiment``'s runs on ``task`` as censored data: the
    Kaplan-Meier median [95% CI] (a run that never got there is censored at its budget), the share
    that got there, and the budget (one per task, never pooled across tasks)."""
    runs = table[(table["experiment"] == experiment) & (table["task"] == task)].sort_values("seed")
    reached = runs[STEPS_TO_90].notna().to_numpy()
    km = stats.steps_to_mastery(runs[STEPS_CENSORED].to_numpy(), reached)
    return {**km, "budget": int(runs["max_steps"].max()),
            "per_seed": [None if pd.isna(v) else int(v) for v in runs[STEPS_TO_90]]}


def the_rule(params: Params, table: pd.DataFrame, experiments: dict[str, ExperimentSummary], complete: list[str],
             tabular: dict[str, Any] | None) -> dict[str, RuleEntry]:
    """Does the baby learn the rule? Per task that holds problems out, at the method's settings:
    each experiment's success on its training problems and on its held-out problems (IQM [95% CI]
    over seeds), the tabular reference's (it memorises and never generalises), and chance (a uniform
    guess at every step of an episode)."""
    method = params.experiments[params.evaluation.method]
    reps, seed = params.evaluation.bootstrap_reps, params.evaluation.seed
    out: dict[str, RuleEntry] = {}
    for task in method.tasks:
        config = params.run_config(params.evaluation.method, task)
        entry: RuleEntry = {"chance": (1 / config.env.num_actions) ** config.env.episode_length,
                            "episode_length": config.env.episode_length, "experiments": {}}
        for name in complete:
            if task not in params.experiments[name].tasks:
                continue
            runs = table[(table["experiment"] == name) & (table["task"] == task)]
            exp_config = params.run_config(name, task)
            same = (exp_config.env.num_actions, exp_config.env.episode_length) == (config.env.num_actions,
                                                                                    config.env.episode_length)
            if not same or runs["held_out_success_greedy"].isna().all():
                continue
            entry["experiments"][name] = {"training": experiments[name]["success_greedy"][task],
                                          "held_out": experiments[name]["held_out_success_greedy"][task],
                                          "seeds": len(runs)}
        if tabular is not None and task in tabular["tasks"]:
            t_runs = tabular["tasks"][task]["runs"]
            held = [r["held_out_success_greedy"] for r in t_runs]
            if None not in held:
                estimates = stats.interval_estimates(
                    {"training": np.array([[r["success_greedy"]] for r in t_runs]), "held_out": np.array([[h] for h in held])},
                    reps, seed, aggregates=("iqm",))
                entry["tabular"] = {"training": estimates["training"]["iqm"], "held_out": estimates["held_out"]["iqm"],
                                    "seeds": len(t_runs), STEPS_TO_90: stats.steps_to_mastery(
                                        np.array([r[STEPS_TO_90] or r["max_steps"] for r in t_runs], dtype=float),
                                        np.array([r[STEPS_TO_90] is not None for r in t_runs]))}
        if entry["experiments"]:
            out[task] = entry
    return out


def comparisons(improvements: dict[str, dict[str, Comparison]], world_model: WorldModelComparison | NoComparison,
                curriculum: CurriculumComparison | NoComparison) -> list[Comparison]:
    """Every comparison result (P(X > Y) with its interval) of the summary, in a fixed order."""
    found = [poi[key] for poi in improvements.values() for key in poi]
    if "variants" in world_model:
        for variant in world_model["variants"].values():
            found += [*variant["p_steps"].values(), *variant["p_success"].values()]
    if "reference" in curriculum:
        for measure in CURRICULUM_MEASURE_KEYS:
            found += list(curriculum[measure]["p"].values())
    return found


def experiment_summary(params: Params, table: pd.DataFrame, name: str) -> ExperimentSummary:
    """One complete experiment's entry: its scores per task (IQM [95% CI] over seeds, each seed's
    beside it) and over all tasks where they pool, env steps to 90%, the runs that reached 99%."""
    ev = params.evaluation
    tasks = list(params.experiments[name].tasks)

    def estimates(column: str, pooled: bool) -> dict[str, Estimate]:
        """``column`` per task where every run has a value (and over all tasks when ``pooled``)."""
        per_task = {task: m for task in tasks if not np.isnan(m := _matrix(table, name, column, [task])).any()}
        matrices = {**per_task, **({"all_tasks": _matrix(table, name, column, tasks)} if pooled else {})}
        found = stats.interval_estimates(matrices, ev.bootstrap_reps, ev.seed, aggregates=("iqm",)) if matrices else {}
        out: dict[str, Estimate] = {}
        for key, est in found.items():
            iqm: Interval = est["iqm"]
            out[key] = {**iqm, "per_seed": per_task[key][:, 0].tolist() if key in per_task else None}
        return out

    runs = table[table["experiment"] == name]
    ideal = runs["ideal_failures"].dropna()
    return {"seeds": len(params.seeds_of(name)),
            "success_greedy": estimates("success_greedy", pooled=True),
            "held_out_success_greedy": estimates("held_out_success_greedy", pooled=False),
            "success_sampled": estimates("success_sampled", pooled=True),
            FAILURES_TO_MASTERY: estimates(FAILURES_TO_MASTERY, pooled=False),
            STEPS_TO_90: {task: steps_to_mastery(table, name, task) for task in tasks},
            REACHED_MASTERY: {task: int(runs[runs["task"] == task][REACHED_MASTERY].sum()) for task in tasks},
            "ideal_failures": float(ideal.iloc[0]) if len(ideal) else None}


def summarize(params: Params, runs_root: Path, audit: dict[str, Any] | None = None,
              tabular: dict[str, Any] | None = None) -> tuple[Summary, dict[str, pd.DataFrame]]:
    """``summary.json`` and the plot tables ``{"runs": ..., "sample_efficiency": ...}``. An
    experiment with a failed run is listed under ``missing`` (with each failed job and its log)
    and its entry is ``{"missing": true}``; comparisons that need it are left out."""
    ev = params.evaluation
    missing = failed_runs(params, runs_root)
    complete = [name for name in params.experiments if name not in {m["experiment"] for m in missing}]
    table = run_table(params, runs_root)
    reps, seed = ev.bootstrap_reps, ev.seed
    # steps to 90% for rank comparisons at one budget: a run that never got there ranks at its budget
    table[STEPS_CENSORED] = table[STEPS_TO_90].fillna(table["max_steps"]).astype(float)
    experiments = {name: experiment_summary(params, table, name) for name in complete}
    tasks = list(params.experiments[ev.method].tasks)
    improvements = {
        baseline: {**{task: stats.probability_of_improvement(_matrix(table, ev.method, "success_greedy", [task]),
                                                             _matrix(table, baseline, "success_greedy", [task]), reps, seed)
                      for task in tasks},
                   "all_tasks": stats.probability_of_improvement(_matrix(table, ev.method, "success_greedy", tasks),
                                                                 _matrix(table, baseline, "success_greedy", tasks), reps, seed)}
        for baseline in ev.baselines if ev.method in complete and baseline in complete}
    world_model = world_model_comparison(params, table, complete)
    curriculum = curriculum_comparison(params, table, complete)
    points = parent_quality(params, experiments, complete)
    summary: Summary = {
        "settings": {
            "score": "greedy episode success on the full task (level 2) in fresh episodes of the run's training "
                     "problems (an evaluation stream apart from training's), eval.json; held-out: the same on the "
                     "problems the run's split kept out of training",
            "aggregate": "IQM over seeds with 95% stratified-bootstrap interval (rliable)",
            STEPS_TO_90: "Kaplan-Meier median of env steps to 90% rolling success with its 95% interval (log-log), "
                         "a run that never got there censored at its budget; per task, never pooled",
            "verdicts": "two-sided Mann-Whitney U test of P(X > Y) = 1/2 per task, Holm-adjusted over every "
                        f"verdict of the report (family-wise error {stats.ALPHA}); pooled over tasks: no verdict",
            "alpha": stats.ALPHA, "bootstrap_reps": reps, "seeds": list(params.seeds),
            "tuning_seeds": list(params.tuning_seeds),
            "comparisons_tested": stats.holm_verdicts(comparisons(improvements, world_model, curriculum))},
        "experiments": {name: experiments.get(name) or {"missing": True} for name in params.experiments},
        "missing": missing,
        "probability_of_improvement": improvements,
        "rule": the_rule(params, table, experiments, complete, tabular),
        "parent_quality": points,
        "world_model": world_model,
        "curriculum": curriculum,
        "llm": llm_outcomes(params, table, experiments, complete, audit, points)}
    return summary, {"runs": table, "sample_efficiency": sample_efficiency_table(params, runs_root, complete)}


def sample_efficiency_table(params: Params, runs_root: Path, experiments: list[str]) -> pd.DataFrame:
    """IQM rolling success on the full task (top level) with pointwise 95% CIs at every logged env
    step, per experiment x task; before a curriculum reaches the full task its success there is 0."""
    ev = params.evaluation
    frames = []
    for name in experiments:
        exp = params.experiments[name]
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
    ``untrained``. Outputs whose job failed are left out (:func:`failed_analyses` lists them)."""
    rows = []
    for path in analysis_files:
        if failure_of(path) is not None:
            continue  # its job failed: the summary lists it under missing
        report = results.read_result(path)
        entries = [(name, a["run_seed"], a) for name, seeds in report["runs"].items() for a in seeds]
        entries += [(name, None, a) for name, a in report["references"].items()]
        for source, seed, analysis in entries:
            for attribute, probe in analysis["probes"].items():
                cluster = analysis["clusters"].get(attribute, {})
                rows.append({"task": report["task"], "source": source, "seed": seed, "attribute": attribute,
                             "probe_accuracy": probe["accuracy"], "chance": probe["chance"],
                             "ari": cluster.get("ari"), "silhouette": cluster.get("silhouette")})
    return pd.DataFrame(rows, columns=["task", "source", "seed", "attribute", "probe_accuracy", "chance", "ari",
                                       "silhouette"])


def failed_analyses(analysis_files: list[Path]) -> list[MissingEntry]:
    """The ``wmil analyze`` outputs whose job failed, as :func:`missing_entry`."""
    return [missing_entry(f"analysis/{Path(p).name}", record) for p in analysis_files
            if (record := failure_of(p)) is not None]


def representation_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Mean probe accuracy, ARI and silhouette over seeds per task x source x attribute."""
    means = table.groupby(["task", "source", "attribute"], sort=False)[["probe_accuracy", "chance", "ari", "silhouette"]].mean()
    out: dict[str, Any] = {}
    for (task, source, attribute), row in means.iterrows():
        out.setdefault(task, {}).setdefault(source, {})[attribute] = {k: float(v) for k, v in row.items()}
    return out
