"""Statistics across seeds: known answers, interval sanity and determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wmil.evaluation.stats import (
    ideal_trial_and_error_failures,
    interval_estimates,
    probability_of_improvement,
    sample_efficiency,
)

REPS = 200


def skewed_scores(runs: int, tasks: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).exponential(size=(runs, tasks))


def test_iqm_is_the_25_percent_trimmed_mean_over_all_runs_and_tasks():
    # 0..99 squared (skewed, so IQM, mean and median all differ): rliable trims int(0.25 * 100) = 25
    # scores from each end of the pooled, sorted scores and averages the middle 50.
    scores = (np.arange(100.0) ** 2).reshape(10, 10)
    out = interval_estimates({"a": scores}, reps=REPS, seed=0)["a"]
    assert out["iqm"]["value"] == pytest.approx(np.mean(np.arange(25, 75) ** 2.0))
    assert out["mean"]["value"] == pytest.approx(scores.mean())
    assert out["median"]["value"] == pytest.approx(np.median(scores.mean(axis=0)))
    assert (out["runs"], out["tasks"]) == (10, 10)


def test_iqm_trimming_rounds_down_the_cut():
    # 10 scores: int(2.5) = 2 cut from each end, so the mean of the 6 middle ones.
    scores = np.array([[0.0, 1, 2, 3, 4, 5, 6, 7, 8, 1000]])
    assert interval_estimates({"a": scores}, reps=REPS, seed=0)["a"]["iqm"]["value"] == pytest.approx(4.5)


def test_intervals_contain_the_estimate_and_shrink_with_more_runs():
    widths = []
    for runs in (5, 80):
        out = interval_estimates({"a": skewed_scores(runs, 3)}, reps=REPS, seed=1)["a"]
        for name in ("iqm", "mean", "median"):
            assert out[name]["lo"] <= out[name]["value"] <= out[name]["hi"], name
        widths.append(out["iqm"]["hi"] - out["iqm"]["lo"])
    assert widths[1] < widths[0] / 2  # ~ 1/sqrt(runs): 4x narrower for 16x the runs


def test_constant_scores_have_a_zero_width_interval():
    out = interval_estimates({"a": np.full((5, 3), 0.7)}, reps=REPS, seed=0)["a"]
    for name in ("iqm", "mean", "median"):
        assert out[name] == pytest.approx({"value": 0.7, "lo": 0.7, "hi": 0.7})


def test_estimates_are_deterministic_json_able_and_independent_of_other_methods():
    a, b = skewed_scores(6, 3, seed=1), skewed_scores(4, 3, seed=2)
    first = interval_estimates({"a": a, "b": b}, reps=REPS, seed=7)
    assert interval_estimates({"b": b, "a": a}, reps=REPS, seed=7) == first
    assert interval_estimates({"a": a}, reps=REPS, seed=7)["a"] == first["a"]
    assert interval_estimates({"a": a}, reps=REPS, seed=8)["a"] != first["a"]
    assert json.loads(json.dumps(first)) == first


def test_bootstrap_leaves_the_global_numpy_generator_as_it_was():
    # rliable draws from np.random's global state; we seed it for the call and must restore it.
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    interval_estimates({"a": skewed_scores(5, 2)}, reps=REPS, seed=0)
    probability_of_improvement(skewed_scores(5, 2), skewed_scores(5, 2, seed=1), reps=REPS, seed=0)
    assert np.random.random() == expected


@pytest.mark.parametrize("case, expected", [("better", 1.0), ("worse", 0.0)])
def test_probability_of_improvement_when_every_run_wins_or_loses(case, expected):
    y = skewed_scores(5, 3)
    x = y.max() + 1 + y if case == "better" else y.min() - 1 - y  # beats / loses to every run of y
    out = probability_of_improvement(x, y, reps=REPS, seed=0)
    assert {k: out[k] for k in ("p", "lo", "hi")} == pytest.approx({"p": expected, "lo": expected, "hi": expected})
    assert out["p_value"] is None  # three tasks: runs of different tasks are not exchangeable, no test
    one = probability_of_improvement(x[:, [0]], y[:, [0]], reps=REPS, seed=0)
    assert one["p_value"] == pytest.approx(2 / 252)  # 5 vs 5, complete separation: the exact two-sided p


def test_the_test_of_one_task_is_the_exact_mann_whitney_test_ties_included():
    from scipy.stats import PermutationMethod, mannwhitneyu

    from wmil.evaluation.stats import mann_whitney_p

    x, y = skewed_scores(10, 1), skewed_scores(10, 1, seed=1)
    assert probability_of_improvement(x, y, reps=REPS, seed=0)["p_value"] == pytest.approx(
        mannwhitneyu(x[:, 0], y[:, 0], alternative="two-sided", method="exact").pvalue)  # no ties: SciPy's exact
    # ties, as with success 1.0 on many runs: a full permutation test agrees, the normal approximation does not
    a, b = np.array([1.0, 1.0, 1.0, 0.5, 1.0, 1.0]), np.array([1.0, 0.5, 0.5, 0.0, 1.0])
    exact = mannwhitneyu(a, b, method=PermutationMethod(n_resamples=np.inf)).pvalue
    assert mann_whitney_p(a, b) == pytest.approx(exact) and mann_whitney_p(b, a) == pytest.approx(exact)
    assert abs(mannwhitneyu(a, b).pvalue - exact) > 0.01
    assert mann_whitney_p(np.ones(5), np.zeros(5)) == pytest.approx(2 / 252)  # complete separation of 5 and 5
    same = np.ones((10, 1))
    assert probability_of_improvement(same, same, reps=REPS, seed=0)["p_value"] == 1.0


def test_holm_verdicts_name_the_direction_only_where_the_family_allows():
    from wmil.evaluation.stats import holm_verdicts

    comparisons = [{"p": 0.9, "p_value": 0.001}, {"p": 0.1, "p_value": 0.01}, {"p": 0.8, "p_value": 0.03},
                   {"p": 0.7, "p_value": 0.04}, {"p": 0.7, "p_value": None}]
    assert holm_verdicts(comparisons) == 4
    assert [c.get("verdict") for c in comparisons] == ["better", "worse", "no clear difference", "no clear difference",
                                                       None]
    assert [c.get("p_holm") for c in comparisons[:4]] == pytest.approx([0.004, 0.03, 0.06, 0.06])
    # alone, the third would have been called better: the family is what makes it no clear difference
    alone = [{"p": 0.8, "p_value": 0.03}]
    holm_verdicts(alone)
    assert alone[0]["verdict"] == "better"


def test_pick_variance_is_the_mean_coin_variance():
    from wmil.evaluation.stats import pick_variance

    assert pick_variance(np.array([0.5, 1.0, 0.0, 0.25])) == pytest.approx((0.25 + 0 + 0 + 0.1875) / 4)


def test_probability_of_improvement_of_identical_scores_is_one_half():
    y = skewed_scores(5, 3)
    out = probability_of_improvement(y.copy(), y, reps=REPS, seed=0)
    assert out["p"] == 0.5
    assert out["lo"] < 0.5 < out["hi"]  # resampled independently, the two copies differ


def test_probability_of_improvement_interval_and_determinism():
    x, y = skewed_scores(6, 3, seed=1) + 0.5, skewed_scores(4, 3, seed=2)  # unequal run counts
    out = probability_of_improvement(x, y, reps=REPS, seed=3)
    assert 0.5 < out["p"] < 1.0
    assert out["lo"] <= out["p"] <= out["hi"]
    assert probability_of_improvement(x, y, reps=REPS, seed=3) == out


def test_sample_efficiency_is_the_iqm_of_each_point():
    curves = skewed_scores(8, 3 * 5).reshape(8, 3, 5)
    out = sample_efficiency({"a": curves}, reps=REPS, seed=0)["a"]
    iqm_each = [interval_estimates({"p": curves[..., j]}, reps=REPS, seed=0)["p"]["iqm"]["value"] for j in range(5)]
    assert out["iqm"] == pytest.approx(iqm_each)
    assert all(lo <= v <= hi for lo, v, hi in zip(out["lo"], out["iqm"], out["hi"]))
    assert sample_efficiency({"a": curves}, reps=REPS, seed=0)["a"] == out
    assert len(out["lo"]) == len(out["hi"]) == 5


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match=r"scores\['a'\]"):
        interval_estimates({"a": np.ones(5)}, reps=REPS, seed=0)
    with pytest.raises(ValueError, match=r"scores\['a'\].*finite"):
        interval_estimates({"a": np.array([[np.nan]])}, reps=REPS, seed=0)
    with pytest.raises(ValueError, match="reps"):
        interval_estimates({"a": np.ones((2, 2))}, reps=0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        interval_estimates({"a": np.ones((2, 2))}, reps=REPS, seed=-1)
    with pytest.raises(ValueError, match="y: has 2 tasks"):
        probability_of_improvement(np.ones((3, 3)), np.ones((3, 2)), reps=REPS, seed=0)
    with pytest.raises(ValueError, match=r"curves\['a'\]"):
        sample_efficiency({"a": np.ones((2, 2))}, reps=REPS, seed=0)


# ---- regret ----------------------------------------------------------------------------------

def test_ideal_trial_and_error_failures():
    assert ideal_trial_and_error_failures(8, 8) == 28.0  # PatternEcho, 8 actions, 8 problems
    assert ideal_trial_and_error_failures(3, 1) == 0.0
    with pytest.raises(ValueError, match="num_actions"):
        ideal_trial_and_error_failures(8, 0)


def test_ideal_trial_and_error_failures_matches_a_simulation():
    rng = np.random.default_rng(0)
    problems, actions, trials = 8, 8, 20000
    # Try actions in the order of random keys; the failures before the right action (say 0) are
    # the wrong actions whose keys come first.
    keys = rng.random((trials, problems, actions))
    failures = (keys[..., 1:] < keys[..., :1]).sum(axis=(1, 2))
    assert failures.mean() == pytest.approx(ideal_trial_and_error_failures(problems, actions), rel=0.02)


def test_steps_to_mastery_is_the_kaplan_meier_median_with_censored_runs():
    from wmil.evaluation.stats import steps_to_mastery

    # 3 of 5 got there at 100, 200, 300; 2 censored at their budget 400: S = .8, .6, .4 -> median 300
    out = steps_to_mastery(np.array([100, 200, 300, 400, 400]), np.array([True, True, True, False, False]))
    assert (out["median"], out["reached"], out["runs"]) == (300.0, 3, 5)
    assert out["lo"] == 100.0 and out["hi"] is None  # the upper band (0.75 at 300) never falls to one half
    # every run got there: the median of the times, the band closes at S = 0
    every = steps_to_mastery(np.array([500, 100, 300, 200, 400]), np.ones(5, bool))
    assert (every["median"], every["lo"], every["hi"]) == (300.0, 100.0, 500.0)
    # none got there: no median, not the budget
    none = steps_to_mastery(np.full(5, 400.0), np.zeros(5, bool))
    assert (none["median"], none["lo"], none["hi"], none["reached"]) == (None, None, None, 0)
    # counting a censored run as its budget would have said 300 too here, but not with fewer reaching
    two = steps_to_mastery(np.array([100, 200, 400, 400, 400]), np.array([True, True, False, False, False]))
    assert two["median"] is None  # S = 0.6 after the last event: fewer than half got there


@pytest.mark.parametrize("steps, reached, error", [
    (np.array([]), np.array([], bool), "non-empty"), (np.array([1.0, np.nan]), np.array([True, False]), "finite"),
    (np.array([1.0, 2.0]), np.array([True]), "equal")])
def test_steps_to_mastery_names_bad_input(steps, reached, error):
    from wmil.evaluation.stats import steps_to_mastery

    with pytest.raises(ValueError, match=error):
        steps_to_mastery(steps, reached)


def test_holm_adjusts_the_family_and_keeps_the_order():
    from wmil.evaluation.stats import holm

    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "b": 0.09, "c": 0.09, "d": 0.5})
    assert list(adjusted) == ["a", "b", "c", "d"] and holm({"x": 0.7}) == {"x": 0.7}
    with pytest.raises(ValueError, match=r"p_values\['e'\] = 1.5"):
        holm({"e": 1.5})
