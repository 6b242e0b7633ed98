"""Known answers of ``wmil summarize`` on synthetic run directories: censored steps to 90%, regret
arithmetic, the direction of each probability of improvement, the parent-quality points and the
LLM runs against their audit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import PARAMS_PATH

from wmil.config import parse_params
from wmil.evaluation.summary import CURVE_FIELDS, j_curve, summarize

SEEDS = [0, 1, 2, 3, 4]


def small_params():
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["seeds"] = SEEDS
    keep = {"mvp", "ppo", "curriculum", "random", "rl_only", "kl_distill", "quality_mvp", "llm_solve", "llm_verdict",
            "llm_mvp",
            "world_model_coef", "raw_then_embedding"}
    raw["experiments"] = {n: e for n, e in raw["experiments"].items() if n in keep}
    raw["llm_audit"]["experiment"] = "llm_mvp"
    raw["experiments"]["ppo"]["tasks"] = raw["experiments"]["curriculum"]["tasks"] = ["pattern_echo"]
    raw["experiments"]["quality_mvp"]["sweep"]["points"] = [[0.3, 0.3], [0.6, 0.0]]
    raw["evaluation"].update(noise=["mvp", "quality_mvp"], bootstrap_reps=200, representation=["ppo", "rl_only"],
                             world_model=["world_model_coef", "raw_then_embedding"])
    return parse_params(raw)


def write_run(root: Path, params, experiment: str, seed: int, success: float, steps_to_90: int | None,
              run: tuple[dict[str, list[float]], dict[str, int | None]], switch: int | None = None,
              by_level: tuple[float, float, float] | None = None) -> None:
    """``run``: its curve and its regret as the trainer records it (MASTERED or NEVER); ``by_level``:
    held-out success at levels 0-2 (default: ``success`` at each)."""
    curve, regret = run
    config = params.run_config(experiment, "pattern_echo", seed)
    d = root / experiment / "pattern_echo" / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    (d / "metrics.json").write_text(json.dumps({"steps_to_0.9": steps_to_90, **regret, "embedding_switch_step": switch}))
    levels = {str(lv): {"greedy": {"success": rate}} for lv, rate in enumerate(by_level or (success,) * 3)}
    (d / "eval.json").write_text(json.dumps({"success_greedy": success, "success_sampled": success, "entropy": 0.1,
                                             "world_model_mse": 0.01, "episodes_per_level": 1000, "by_level": levels}))
    frame = pd.DataFrame({c: [0.0] * len(curve["episodes"]) for c in CURVE_FIELDS})
    for column, values in curve.items():
        frame[column] = values
    frame.to_csv(d / "curve.csv", index=False)


MASTERED = ({"env_steps": [100, 200, 300], "episodes": [100, 200, 300], "success_rate": [0.5, 0.9, 1.0],
             "rolling_success_top": [0.5, 0.995, 1.0]},
            {"steps_to_0.99": 200, "failures": 60, "failures_to_0.99": 60})  # 100*.5 + 100*.1 failed before 99%
NEVER = ({"env_steps": [100, 200], "episodes": [100, 200], "success_rate": [0.2, 0.3], "rolling_success_top": [0.2, 0.25]},
         {"steps_to_0.99": None, "failures": 150, "failures_to_0.99": None})  # 80 + 70 failed


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    params = small_params()
    root = tmp_path_factory.mktemp("runs")
    for name in params.experiments:
        for seed in SEEDS:
            if name == "random":
                write_run(root, params, name, seed, 0.0, None, NEVER)
            elif name == "llm_solve":
                write_run(root, params, name, seed, 1.0 if seed < 4 else 0.5, 1000, MASTERED)
            elif name == "raw_then_embedding":  # faster than rl_only in every pairing, switched on seeds 0-3
                write_run(root, params, name, seed, 1.0, 500 + seed, MASTERED, 200 if seed < 4 else None)
            elif name == "curriculum":  # the easier levels learnt, the full task half, 90% never reached
                write_run(root, params, name, seed, 0.5, None, NEVER, by_level=(1.0, 1.0, 0.5))
            elif name == "world_model_coef-coef1":  # as slow as the slowest rl_only seed, lower success
                write_run(root, params, name, seed, 0.5, 1004, MASTERED)
            elif name == "llm_verdict":  # no signal: each of 8 problems' greedy pick is right with chance 1/8
                write_run(root, params, name, seed, [0.0, 0.125, 0.25, 0.125, 0.5][seed], None, NEVER)
            else:
                write_run(root, params, name, seed, 0.9 if name.startswith("quality") else 1.0, 1000 + seed, MASTERED)
    # the prediction reads the episode ceiling (here unlike the per-state one, to tell them apart)
    verdict = {"j": 0.0, "tpr": 1.0, "fpr": 1.0, "problems": 8,
               "ceiling": {"mean": 0.5, "lo": 0.0, "hi": 1.0, "pick_variance": 0.25},
               "episode": {"ceiling": {"mean": 0.125, "lo": 0.125, "hi": 0.125, "pick_variance": 0.125 * 0.875}}}
    small = {"model": "smollm2-135m-instruct", "num_actions": 8, "episode_length": 1}
    exact = {"mean": 1.0, "lo": 1.0, "hi": 1.0, "pick_variance": 0.0}
    audit = {"protocols": {"verdict": {**small, "by_task_level": {"pattern_echo": {"2": verdict}}},
                           "solve": {**small, "by_task_level": {"pattern_echo": {"2": {
        "j": 1.0, "tpr": 1.0, "fpr": 0.0, "problems": 8, "ceiling": exact, "episode": {"ceiling": exact}}}}},
                           # audited at A = 16, T = 4 (as the llm experiment runs): no prediction for llm_mvp
                           "program": {"model": "qwen2.5-coder-1.5b-instruct", "num_actions": 16, "episode_length": 4,
                                       "by_task_level": {"pattern_echo": {"2": verdict}}}}}
    return params, summarize(params, root, audit)[0]


def test_steps_to_90_are_censored_at_the_budget(summary):
    params, s = summary
    budget = params.run_config("random", "pattern_echo").training.max_steps
    assert s["experiments"]["random"]["steps_to_0.9_censored"]["pattern_echo"]["per_seed"] == [budget] * 5
    assert s["experiments"]["random"]["reached_0.9"] == {"pattern_echo": 0}
    assert s["experiments"]["ppo"]["steps_to_0.9_censored"]["pattern_echo"]["per_seed"] == [1000, 1001, 1002, 1003, 1004]
    assert s["experiments"]["ppo"]["steps_to_0.9_censored"]["pattern_echo"]["value"] == pytest.approx(1002)


def test_regret_counts_failed_episodes_until_mastery_or_all_of_them(summary):
    _, s = summary
    assert s["experiments"]["ppo"]["failures_to_0.99"]["pattern_echo"]["per_seed"] == [60.0] * 5  # 100*.5 + 100*.1
    assert s["experiments"]["random"]["failures_to_0.99"]["pattern_echo"]["per_seed"] == [150.0] * 5  # 80 + 70
    assert s["experiments"]["random"]["reached_0.99"] == {"pattern_echo": 0}


def test_the_curriculum_is_compared_with_the_method_at_equal_steps_on_level_2_and_all_levels(summary):
    params, s = summary
    c = s["curriculum"]
    assert (c["method"], c["curriculum"]) == ("ppo", "curriculum")
    assert c["budget"] == {"pattern_echo": params.run_config("ppo", "pattern_echo").training.max_steps}
    assert c["success_level2"]["curriculum"]["pattern_echo"]["value"] == pytest.approx(0.5)
    assert c["success_all_levels"]["curriculum"]["all_tasks"]["value"] == pytest.approx(2.5 / 3)
    assert c["success_all_levels"]["ppo"]["all_tasks"]["value"] == pytest.approx(1.0)
    assert c["steps_to_0.9"]["curriculum"]["pattern_echo"]["value"] == c["budget"]["pattern_echo"]  # never: the budget
    for measure in ("success_level2", "success_all_levels", "steps_to_0.9"):  # worse in every pairing
        assert c[measure]["p"]["all_tasks"] == {"p": 0.0, "lo": 0.0, "hi": 0.0}, measure


def test_probability_of_improvement_points_from_the_method_to_the_baseline(summary):
    _, s = summary
    poi = s["probability_of_improvement"]
    assert poi["random"]["p"] == 1.0  # ppo (1.0) beats random (0.0) in every pairing
    assert poi["rl_only"]["p"] == 0.5 and poi["kl_distill"]["p"] == 0.5  # ties count half


def test_world_model_variants_are_compared_with_the_method_without_one(summary):
    _, s = summary
    comparison = s["world_model"]
    assert comparison["reference"] == "rl_only"
    variants = comparison["variants"]
    assert list(variants) == ["world_model_coef-coef1", "world_model_coef-coef10", "raw_then_embedding"]
    emb = variants["raw_then_embedding"]
    assert (emb["target"], emb["world_model_coef"], emb["embedding_after_success"]) == ("embedding", 100.0, 0.5)
    assert emb["p_steps"]["pattern_echo"]["p"] == 1.0 and emb["p_steps"]["all_tasks"]["p"] == 1.0  # 500+ < 1000+
    assert emb["p_success"]["pattern_echo"]["p"] == 0.5  # both 1.0: ties count half
    assert emb["embedding_switch_step"] == {"pattern_echo": [200, 200, 200, 200, None]}
    weak = variants["world_model_coef-coef1"]
    assert weak["target"] == "raw" and weak["world_model_coef"] == 1.0 and "embedding_switch_step" not in weak
    assert weak["p_success"]["pattern_echo"]["p"] == 0.0  # 0.5 below 1.0 in every pairing
    assert weak["p_steps"]["pattern_echo"]["p"] == pytest.approx(0.1)  # 1004 ties rl_only's seed 4 (half), loses to the rest
    assert variants["world_model_coef-coef10"]["p_steps"]["pattern_echo"]["p"] == 0.5  # the same seeds' steps as rl_only


def test_parent_quality_points_carry_their_rates_and_informativeness(summary):
    _, s = summary
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
    _, s = summary
    e = s["llm"]["llm_solve"]["pattern_echo"]
    assert e["protocol"] == "solve" and e["prediction"]["interval"][1] == 1.0
    assert e["inside"] == [True, True, True, True, False] and not e["agrees"]  # seed 4 learnt half: outside
    v = s["llm"]["llm_verdict"]["pattern_echo"]
    lo, hi = v["prediction"]["interval"]  # 1/8 +- 1.96 sqrt(7/64 / 8 + 7/64 / 1000)
    assert (lo, hi) == (0.0, pytest.approx(0.125 + 1.96 * (0.109375 / 8 + 0.109375 / 1000) ** 0.5))
    assert v["inside"] == [True, True, True, True, False]
    assert s["llm"]["llm_mvp"]["pattern_echo"]["prediction"] is None  # its program was audited at A = 16, T = 4
