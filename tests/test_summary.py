"""Known answers of ``wmil summarize`` on synthetic run directories: censored steps to 90%, regret
arithmetic, the direction of each probability of improvement and its Holm verdict, training- and
held-out-problem success beside the tabular reference, the parent-quality points and the LLM runs
against their audit."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import PARAMS_PATH

from wmil.config import parse_params
from wmil.evaluation.summary import CURVE_FIELDS, j_curve, summarize

SEEDS = [10, 11, 12, 13, 14]
HELD_OUT = 4  # problems a conditional run holds out (of 16)


def small_params():
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["seeds"] = SEEDS
    keep = {"mvp", "ppo", "ppo_matched", "curriculum", "random", "rl_only", "kl_distill", "quality_mvp", "llm_solve",
            "llm_verdict", "llm_mvp", "raw_then_embedding", "ppo_fresh", "rl_only_fresh"}
    raw["experiments"] = {n: e for n, e in raw["experiments"].items() if n in keep}
    raw["experiments"]["world_model_coef"] = {  # a sweep among the world-model variants
        "extends": "ppo", "sweep": {"axes": {"coef": "algorithm.world_model_coef"}, "points": [[1.0], [10.0]]}}
    raw["llm_audit"]["experiment"] = "llm_mvp"
    raw["experiments"]["ppo"]["tasks"] = ["pattern_echo", "conditional"]
    for name in ("ppo_matched", "curriculum", "raw_then_embedding"):
        raw["experiments"][name]["tasks"] = ["pattern_echo"]
    raw["experiments"]["quality_mvp"]["sweep"]["points"] = [[0.3, 0.3], [0.6, 0.0]]
    raw["evaluation"].update(noise=["mvp", "quality_mvp"], bootstrap_reps=200, representation=["ppo", "rl_only"],
                             world_model={"ppo": "rl_only", "world_model_coef": "rl_only", "raw_then_embedding": "rl_only",
                                          "ppo_fresh": "rl_only_fresh"})
    return parse_params(raw)


def write_run(root: Path, params, experiment: str, task: str, seed: int, success: float, steps_to_90: int | None,
              run: tuple[dict[str, list[float]], dict[str, int | None]], switch: int | None = None,
              by_level: tuple[float, float, float] | None = None, held_out: float = 0.25,
              climb: list[int | None] | None = None) -> None:
    """``run``: its curve and its regret as the trainer records it (MASTERED or NEVER); ``by_level``:
    training-problem success at levels 0-2 (default: ``success`` at each); ``held_out``: success on
    held-out problems, where the task holds some out (conditional, not pattern_echo); ``climb``: a
    curriculum's env steps at which it entered each level."""
    curve, regret = run
    config = params.run_config(experiment, task, seed)
    d = root / experiment / task / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    steps = None if climb is None else [0 if at is None else (nxt if nxt is not None else config.training.max_steps) - at
                                        for at, nxt in zip(climb, [*climb[1:], None])]
    (d / "metrics.json").write_text(json.dumps({"steps_to_0.9": steps_to_90, **regret, "embedding_switch_step": switch,
                                                "level_entered_at": climb, "steps_per_level": steps}))
    holds = task == "conditional"
    levels = {str(lv): {"greedy": {"success": rate}, "held_out_greedy": {"success": held_out} if holds else None}
              for lv, rate in enumerate(by_level or (success,) * 3)}
    (d / "eval.json").write_text(json.dumps({
        "success_greedy": success, "success_sampled": success, "entropy": 0.1, "world_model_mse": 0.01,
        "held_out_success_greedy": held_out if holds else None, "held_out_success_sampled": held_out if holds else None,
        "training_problems": 16 - HELD_OUT * holds, "held_out_problems": [[2, 0, 0, 0]] * HELD_OUT * holds,
        "episodes_per_level": 1000, "by_level": levels}))
    frame = pd.DataFrame({c: [0.0] * len(curve["episodes"]) for c in CURVE_FIELDS})
    for column, values in curve.items():
        frame[column] = values
    frame.to_csv(d / "curve.csv", index=False)


MASTERED = ({"env_steps": [100, 200, 300], "episodes": [100, 200, 300], "success_rate": [0.5, 0.9, 1.0],
             "rolling_success_top": [0.5, 0.995, 1.0]},
            {"steps_to_0.99": 200, "failures": 60, "failures_to_0.99": 60})  # 100*.5 + 100*.1 failed before 99%
NEVER = ({"env_steps": [100, 200], "episodes": [100, 200], "success_rate": [0.2, 0.3], "rolling_success_top": [0.2, 0.25]},
         {"steps_to_0.99": None, "failures": 150, "failures_to_0.99": None})  # 80 + 70 failed


def tabular_reference(successes: tuple[float, float]) -> dict:
    """A ``wmil tabular`` output for ppo's conditional runs: training and held-out success."""
    runs = [{"seed": s, "level": 2, "max_steps": 24576, "steps_to_0.9": 2048, "problems_learned": 12,
             "success_greedy": successes[0], "held_out_success_greedy": successes[1]} for s in SEEDS]
    return {"experiment": "ppo", "tasks": {"conditional": {"num_actions": 16, "runs": runs},
                                           "pattern_echo": {"num_actions": 16, "runs": [
                                               {**r, "held_out_success_greedy": None} for r in runs]}}}


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    params = small_params()
    root = tmp_path_factory.mktemp("runs")
    for name in params.experiments:
        for task in params.experiments[name].tasks:
            for i, seed in enumerate(SEEDS):
                run = functools.partial(write_run, root, params, name, task, seed)
                if name == "random":
                    run(0.0, None, NEVER, held_out=0.0)
                elif name == "llm_solve":
                    run(1.0 if i < 4 else 0.5, 1000, MASTERED)
                elif name == "raw_then_embedding":  # faster than rl_only in every pairing, switched on seeds 0-3
                    run(1.0, 500 + i, MASTERED, 200 if i < 4 else None)
                elif name == "curriculum":  # the easier levels learnt, the full task half, 90% never reached;
                    # four of five runs reached level 2, the last stuck on level 1
                    run(0.5, None, NEVER, by_level=(1.0, 1.0, 0.5), climb=[0, 1000, 3000] if i < 4 else [0, 2000, None])
                elif name == "world_model_coef-coef1":  # as slow as the slowest rl_only seed, lower success
                    run(0.5, 1004, MASTERED)
                elif name == "llm_verdict":  # no signal: each of 8 problems' greedy pick is right with chance 1/8
                    run([0.0, 0.125, 0.25, 0.125, 0.5][i], None, NEVER)
                elif name == "ppo":  # on conditional, held-out problems as well as trained ones
                    run(1.0, 1000 + i, MASTERED, held_out=1.0)
                else:
                    run(0.9 if name.startswith("quality") else 1.0, 1000 + i, MASTERED)
    # the prediction reads the episode ceiling (here unlike the per-state one, to tell them apart), over
    # the run's training problems: pattern_echo holds none out
    problems = [[target] for target in range(8)]
    verdict = {"j": 0.0, "tpr": 1.0, "fpr": 1.0, "problems": 8,
               "ceiling": {"mean": 0.5, "lo": 0.0, "hi": 1.0, "pick_variance": 0.25},
               "episode": {"ceiling": {"mean": 0.125, "lo": 0.125, "hi": 0.125, "pick_variance": 0.125 * 0.875},
                           "per_problem": [{"problem": p, "ceiling": [0.125, 0.125, 0.125]} for p in problems]}}
    small = {"model": "smollm2-135m-instruct", "num_actions": 8, "episode_length": 1}
    exact = {"mean": 1.0, "lo": 1.0, "hi": 1.0, "pick_variance": 0.0}
    audit = {"protocols": {"verdict": {**small, "by_task_level": {"pattern_echo": {"2": verdict}}},
                           "solve": {**small, "by_task_level": {"pattern_echo": {"2": {
        "j": 1.0, "tpr": 1.0, "fpr": 0.0, "problems": 8, "ceiling": exact, "episode": {
            "ceiling": exact, "per_problem": [{"problem": p, "ceiling": [1.0, 1.0, 1.0]} for p in problems]}}}}},
                           # audited at A = 16, T = 4 (as the llm experiment runs): no prediction for llm_mvp
                           "program": {"model": "qwen2.5-coder-1.5b-instruct", "num_actions": 16, "episode_length": 4,
                                       "by_task_level": {"pattern_echo": {"2": verdict}}}}}
    summary, tables = summarize(params, root, audit, tabular_reference((1.0, 0.0)))
    return params, summary, tables["runs"]


def test_steps_to_90_are_kaplan_meier_medians_censored_at_the_budget(summary):
    params, s, _ = summary
    budget = params.run_config("random", "pattern_echo").training.max_steps
    never = s["experiments"]["random"]["steps_to_0.9"]["pattern_echo"]
    assert never == {"median": None, "lo": None, "hi": None, "reached": 0, "runs": 5, "budget": budget,
                     "per_seed": [None] * 5}  # no run got there: no median, never the budget
    ppo = s["experiments"]["ppo"]["steps_to_0.9"]["pattern_echo"]
    assert ppo["per_seed"] == [1000, 1001, 1002, 1003, 1004] and (ppo["median"], ppo["reached"]) == (1002, 5)
    assert ppo["lo"] == 1000 and ppo["hi"] == 1004
    assert "all_tasks" not in s["experiments"]["ppo"]["steps_to_0.9"]  # budgets differ per task: never pooled
    assert "all_tasks" not in s["experiments"]["ppo"]["failures_to_0.99"]


def test_regret_counts_failed_episodes_until_mastery_or_all_of_them(summary):
    _, s, _ = summary
    assert s["experiments"]["ppo"]["failures_to_0.99"]["pattern_echo"]["per_seed"] == [60.0] * 5  # 100*.5 + 100*.1
    assert s["experiments"]["random"]["failures_to_0.99"]["pattern_echo"]["per_seed"] == [150.0] * 5  # 80 + 70
    assert s["experiments"]["random"]["reached_0.99"] == {"pattern_echo": 0, "conditional": 0}


def test_training_and_held_out_success_are_apart_beside_the_tabular_reference_and_chance(summary):
    _, s, _ = summary
    ppo = s["experiments"]["ppo"]
    assert ppo["held_out_success_greedy"]["conditional"]["per_seed"] == [1.0] * 5
    assert "pattern_echo" not in ppo["held_out_success_greedy"]  # it holds none out
    rule = s["rule"]
    assert list(rule) == ["conditional"]
    entry = rule["conditional"]
    assert entry["chance"] == pytest.approx(16.0 ** -4) and entry["episode_length"] == 4
    assert entry["experiments"]["ppo"]["held_out"]["value"] == 1.0
    assert entry["experiments"]["rl_only"]["held_out"]["value"] == 0.25
    assert entry["experiments"]["random"]["training"]["value"] == 0.0
    assert "curriculum" not in entry["experiments"]  # it runs pattern_echo only here
    assert (entry["tabular"]["training"]["value"], entry["tabular"]["held_out"]["value"]) == (1.0, 0.0)


def test_the_curriculum_is_compared_with_the_method_at_equal_steps_on_level_2_and_all_levels(summary):
    params, s, _ = summary
    c = s["curriculum"]
    assert (c["reference"], c["curriculum"]) == ("ppo_matched", "curriculum")
    budget = params.run_config("ppo_matched", "pattern_echo").training.max_steps
    assert c["budget"] == {"pattern_echo": budget} and budget == params.run_config("curriculum", "pattern_echo").training.max_steps
    assert c["reached_top"] == {"pattern_echo": 4}
    assert [run["top_level"] for run in c["climb"]["pattern_echo"]] == [2, 2, 2, 2, 1]
    assert c["climb"]["pattern_echo"][0]["steps_per_level"] == [1000, 2000, budget - 3000]
    assert c["climb"]["pattern_echo"][4]["steps_per_level"] == [2000, budget - 2000, 0]
    assert c["success_level2"]["curriculum"]["pattern_echo"]["value"] == pytest.approx(0.5)
    assert c["success_all_levels"]["curriculum"]["all_tasks"]["value"] == pytest.approx(2.5 / 3)
    assert c["success_all_levels"]["ppo_matched"]["all_tasks"]["value"] == pytest.approx(1.0)
    assert c["steps_to_0.9"]["curriculum"]["pattern_echo"]["median"] is None  # never: censored, no median
    assert "all_tasks" not in c["steps_to_0.9"]["p"]  # steps are not pooled over tasks
    for measure in ("success_level2", "success_all_levels", "steps_to_0.9"):  # worse in every pairing
        poi = c[measure]["p"]["pattern_echo"]
        assert (poi["p"], poi["lo"], poi["hi"]) == (0.0, 0.0, 0.0), measure
        assert poi["p_value"] < 0.01 and poi["verdict"] in ("worse", "no clear difference")  # ties: normal approx.


def test_a_curriculum_that_did_not_reach_the_full_task_gets_no_verdict(summary):
    """Below four in five runs at level 2 the comparison would be zero-shot transfer: no test."""
    from wmil.evaluation.summary import curriculum_comparison

    params, _, table = summary
    stuck = table.copy()
    stuck.loc[(stuck["experiment"] == "curriculum") & (stuck["seed"] == SEEDS[0]), "top_level"] = 1
    c = curriculum_comparison(params, stuck, list(params.experiments))
    assert c["reached_top"] == {"pattern_echo": 3}
    for measure in ("success_level2", "success_all_levels", "steps_to_0.9"):
        poi = c[measure]["p"]["pattern_echo"]
        assert poi["p_value"] is None and poi["inconclusive"] == "inconclusive: 3/5 curriculum runs reached level 2"
    assert "inconclusive" not in c["success_level2"]["p"]["all_tasks"]  # pooled: never tested anyway


def test_probability_of_improvement_points_from_the_method_to_the_baseline(summary):
    _, s, _ = summary
    poi = s["probability_of_improvement"]
    assert poi["random"]["pattern_echo"]["p"] == poi["random"]["all_tasks"]["p"] == 1.0  # 1.0 beats 0.0 every time
    assert poi["rl_only"]["pattern_echo"]["p"] == 0.5 and poi["kl_distill"]["all_tasks"]["p"] == 0.5  # ties: half
    assert poi["rl_only"]["conditional"]["p"] == 0.5  # the same training success; held out is the rule table's
    assert poi["random"]["all_tasks"]["p_value"] is None and "verdict" not in poi["random"]["all_tasks"]


def test_every_per_task_comparison_gets_a_holm_verdict_from_one_family(summary):
    """The family is every per-task comparison of the summary: each adjusted p lies between its own
    p-value and m times it; the verdict follows the adjusted p, and ties are never a difference."""
    _, s, _ = summary
    tested = s["settings"]["comparisons_tested"]
    per_task = [poi for pois in s["probability_of_improvement"].values() for t, poi in pois.items() if t != "all_tasks"]
    assert tested >= len(per_task) + 3 and all("p_holm" in poi for poi in per_task)
    random = s["probability_of_improvement"]["random"]["pattern_echo"]
    assert random["p_value"] < random["p_holm"] <= min(1.0, tested * random["p_value"]) + 1e-12
    assert s["probability_of_improvement"]["rl_only"]["pattern_echo"]["verdict"] == "no clear difference"
    assert random["verdict"] == ("better" if random["p_holm"] < 0.05 else "no clear difference")


def test_world_model_variants_are_compared_with_the_method_without_one(summary):
    _, s, _ = summary
    variants = s["world_model"]["variants"]
    assert list(variants) == ["ppo", "world_model_coef-coef1", "world_model_coef-coef10", "raw_then_embedding", "ppo_fresh"]
    assert {v["reference"] for n, v in variants.items() if n != "ppo_fresh"} == {"rl_only"}
    fresh = variants["ppo_fresh"]
    assert (fresh["reference"], fresh["next_problem"], fresh["tasks"]) == ("rl_only_fresh", "fresh", ["sequence_next"])
    assert (variants["ppo"]["head"], variants["ppo"]["detached"], variants["ppo"]["next_problem"]) == ("dynamics", False, "rules")
    emb = variants["raw_then_embedding"]
    assert (emb["target"], emb["world_model_coef"], emb["embedding_after_success"]) == ("embedding", 100.0, 0.5)
    assert emb["tasks"] == ["pattern_echo"] and "all_tasks" not in emb["p_steps"]  # one task: nothing to pool
    assert emb["p_steps"]["pattern_echo"]["p"] == 1.0  # 500+ < 1000+
    assert emb["p_success"]["pattern_echo"]["p"] == 0.5  # both 1.0: ties count half
    assert emb["embedding_switch_step"] == {"pattern_echo": [200, 200, 200, 200, None]}
    weak = variants["world_model_coef-coef1"]
    assert weak["target"] == "raw" and weak["world_model_coef"] == 1.0 and "embedding_switch_step" not in weak
    assert weak["tasks"] == ["pattern_echo", "conditional"] and "all_tasks" in weak["p_steps"]
    assert weak["p_success"]["pattern_echo"]["p"] == 0.0  # 0.5 below 1.0 in every pairing
    assert weak["p_steps"]["pattern_echo"]["p"] == pytest.approx(0.1)  # 1004 ties rl_only's seed 4 (half), loses to the rest
    assert variants["world_model_coef-coef10"]["p_steps"]["pattern_echo"]["p"] == 0.5  # the same seeds' steps as rl_only


def test_parent_quality_points_carry_their_rates_and_informativeness(summary):
    _, s, _ = summary
    points = {(p["experiment"], p["task"]): p for p in s["parent_quality"]}
    assert points[("mvp", "pattern_echo")]["j"] == 1.0
    p = points[("quality_mvp-fpr0.6-fnr0", "pattern_echo")]
    assert (p["false_positive_rate"], p["false_negative_rate"], p["j"]) == (0.6, 0.0, pytest.approx(0.4))
    assert p["success_greedy"]["value"] == pytest.approx(0.9) and not p["noise_correction"]
    assert j_curve(s["parent_quality"], "pattern_echo", 0.7, 1 / 8) == pytest.approx(0.95)  # halfway from J 0.4 to 1
    assert j_curve(s["parent_quality"], "pattern_echo", 1.0, 1 / 8) == pytest.approx(1.0)
    # below the sweep: chance at J = 0 (no information), 0 at J = -1 (always misled), never the lowest point's value
    assert j_curve(s["parent_quality"], "pattern_echo", 0.0, 1 / 8) == pytest.approx(1 / 8)
    assert j_curve(s["parent_quality"], "pattern_echo", -0.5, 1 / 8) == pytest.approx(1 / 16)
    assert j_curve(s["parent_quality"], "sequence_next", 0.5, 1 / 8) is None  # no sweep on that task


def test_llm_runs_are_checked_against_their_episode_ceiling(summary):
    _, s, _ = summary
    e = s["llm"]["llm_solve"]["pattern_echo"]
    assert e["protocol"] == "solve" and e["prediction"]["interval"][1] == 1.0
    assert e["inside"] == [True, True, True, True, False] and not e["agrees"]  # seed 4 learnt half: outside
    v = s["llm"]["llm_verdict"]["pattern_echo"]
    lo, hi = v["prediction"]["interval"]  # 1/8 +- 1.96 sqrt(7/64 / 8 + 7/64 / 1000)
    assert (lo, hi) == (0.0, pytest.approx(0.125 + 1.96 * (0.109375 / 8 + 0.109375 / 1000) ** 0.5))
    assert v["inside"] == [True, True, True, True, False]
    mvp = s["llm"]["llm_mvp"]["pattern_echo"]  # its program was audited at A = 16, T = 4
    assert mvp["prediction"] is None and mvp["no_prediction"] == "no audit of its protocol at its model, A and T"
