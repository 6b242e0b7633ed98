"""Statistics across seeds: aggregate scores with stratified-bootstrap confidence intervals
(rliable) and the sample-efficiency numbers read off learning curves.

Scores are laid out as rliable expects: ``(runs, tasks)`` for final scores and
``(runs, tasks, points)`` for curves sampled at common points. Every interval is a 95% percentile
interval of ``reps`` stratified bootstrap resamples of the runs (resampled within each task).

Reproducibility: rliable 1.2's bootstraps draw their resampling indices from NumPy's *global*
generator (``np.random.choice`` in ``update_indices``), not from the ``random_state`` they are
given. Each estimate therefore seeds the global generator for its duration and restores the
caller's state afterwards, so results depend only on ``seed`` and calls leave no trace.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from rliable import library as rly
from rliable import metrics
from scipy import stats

from wmil.results import Comparison, KaplanMeier

logging.getLogger("absl").setLevel(logging.WARNING)  # rliable logs one INFO line per estimate
CONFIDENCE = 0.95
#: Aggregates reported by :func:`interval_estimates`, in this order.
def aggregate_iqm(scores: np.ndarray) -> float:
    """rliable's ``aggregate_iqm`` (``scipy.stats.trim_mean`` at 25% over all runs x tasks), done
    as trim_mean does it, without scipy's per-call argument handling: a bootstrap calls it
    thousands of times, and that handling cost the summary minutes."""
    flat = np.ravel(scores)
    low = int(0.25 * flat.size)
    high = flat.size - low
    return float(np.mean(np.partition(flat, (low, high - 1))[low:high]))


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "iqm": aggregate_iqm,                # 25% trimmed mean over all runs x tasks
    "mean": metrics.aggregate_mean,      # mean over tasks of the per-task mean
    "median": metrics.aggregate_median,  # median over tasks of the per-task mean
}


@contextmanager
def _seeded(seed: int) -> Iterator[np.random.RandomState]:
    """Seeds NumPy's global generator (which rliable really draws from) and restores it after."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            # arch deprecates ``random_state``, which rliable always passes on; the warning says
            # nothing about our results.
            warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
            yield np.random.RandomState(seed)
    finally:
        np.random.set_state(saved)


def _bootstrap(scores: np.ndarray | list[np.ndarray], func: Callable[..., np.ndarray], reps: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate ``(k,)`` and interval ``(2, k)`` (rows: lower, upper) of ``func``."""
    with _seeded(seed) as random_state:
        point, interval = rly.get_interval_estimates(
            {"x": scores}, func, reps=reps, confidence_interval_size=CONFIDENCE, random_state=random_state)
    return np.asarray(point["x"], dtype=float), np.asarray(interval["x"], dtype=float)


def _check_bootstrap_args(reps: int, seed: int) -> None:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps={reps!r}: expected a positive integer number of bootstrap resamples")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed!r}: expected an integer in [0, 2**32) (NumPy's legacy seed range)")


def _check_scores(name: str, scores: np.ndarray, ndim: int) -> np.ndarray:
    layout = "(runs, tasks)" if ndim == 2 else "(runs, tasks, points)"
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != ndim or 0 in scores.shape:
        raise ValueError(f"{name}: expected a non-empty array shaped {layout}, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name}: scores must be finite (a run without a value has no place in {layout})")
    return scores


def interval_estimates(scores: dict[str, np.ndarray], reps: int, seed: int,
                       aggregates: tuple[str, ...] = tuple(AGGREGATES)) -> dict[str, dict]:
    """IQM, mean and median (or the ``aggregates`` named) of each method's scores with 95%
    stratified-bootstrap CIs.

    ``scores[method]`` is ``(runs, tasks)``; methods may differ in their number of runs. Each
    method is resampled with its own generator seeded by ``seed``, so adding or reordering methods
    leaves the others' intervals unchanged.

    Returns ``{method: {"iqm" | "mean" | "median": {"value": float, "lo": float, "hi": float},
    "runs": int, "tasks": int}}``.
    """
    _check_bootstrap_args(reps, seed)
    if not scores:
        raise ValueError("scores: expected at least one method")
    out: dict[str, dict] = {}
    funcs = [AGGREGATES[name] for name in aggregates]
    for method, raw in scores.items():
        data = _check_scores(f"scores[{method!r}]", raw, ndim=2)
        point, interval = _bootstrap(data, lambda s: np.array([agg(s) for agg in funcs]), reps, seed)
        out[method] = {
            name: {"value": float(point[i]), "lo": float(interval[0, i]), "hi": float(interval[1, i])}
            for i, name in enumerate(aggregates)
        }
        out[method].update(runs=int(data.shape[0]), tasks=int(data.shape[1]))
    return out


def probability_of_improvement(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> Comparison:
    """P(X > Y): the chance that a run of method X beats a run of method Y on the same task (ties
    count half), averaged over tasks, with its 95% CI from resampling X's and Y's runs independently.

    ``x``: ``(runs_x, tasks)``, ``y``: ``(runs_y, tasks)`` with the tasks in the same order.
    Returns ``{"p": float, "lo": float, "hi": float, "p_value": float | None, "p_floor": float | None}``;
    ``p`` is 1.0 when X beats Y in every pairing, 0.5 for identical scores. ``p_value`` (one task
    only; None over several, where runs of different tasks are not exchangeable):
    :func:`mann_whitney_p`, the test of P(X > Y) = 1/2, whose statistic is this P times the number
    of pairings; ``p_floor``: the smallest p-value the test can give at these numbers of runs
    (complete separation, ``2 / C(n + m, n)``), which says whether a verdict was reachable at all.
    """
    _check_bootstrap_args(reps, seed)
    x = _check_scores("x", x, ndim=2)
    y = _check_scores("y", y, ndim=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"y: has {y.shape[1]} tasks but x has {x.shape[1]}; both must cover the same tasks")
    point, interval = _bootstrap(
        [x, y], lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps, seed)
    single = x.shape[1] == 1
    p_value = mann_whitney_p(x[:, 0], y[:, 0]) if single else None
    p_floor = min(1.0, 2 / math.comb(len(x) + len(y), len(x))) if single else None
    return {"p": float(point[0]), "lo": float(interval[0, 0]), "hi": float(interval[1, 0]), "p_value": p_value,
            "p_floor": p_floor}


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided exact p-value of the Mann-Whitney U test, ties included: twice the smaller tail
    share of the ``C(n + m, n)`` equally likely ways to split the pooled runs into ``n`` and ``m``
    with a rank sum (midranks) at least, or at most, ``x``'s (SciPy's two-sided convention). Counted exactly by a dynamic programme
    over rank sums, where SciPy's default falls back to a normal approximation whenever there are
    ties (success 1.0 on many runs, or runs censored at one budget), which is too small at 5-10
    runs. 1.0 when every value is the same."""
    pooled = np.concatenate([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    n = len(x)
    twice = np.rint(2 * stats.rankdata(pooled)).astype(int)  # midranks are whole or halves
    total = int(twice.sum())
    ways = np.zeros((n + 1, total + 1))  # ways[k, s]: subsets of k runs whose doubled rank sum is s
    ways[0, 0] = 1.0
    for r in twice:  # each run in or out; the right side is read before it is written (0/1 knapsack)
        ways[1:, r:] = ways[1:, r:] + ways[:-1, : total + 1 - r]
    share = ways[n] / ways[n].sum()
    observed = int(twice[:n].sum())
    return float(min(1.0, 2 * min(share[observed:].sum(), share[: observed + 1].sum())))


ALPHA = 0.05  # the family-wise error rate of the report's verdicts


def holm_verdicts(comparisons: list[Comparison]) -> int:
    """Adds ``p_holm`` and ``verdict`` to every comparison (a :func:`probability_of_improvement`
    result) that has a ``p_value``: the Holm-adjusted p-value over all of them (one family: every
    verdict the report makes), and ``better`` or ``worse`` (by which side of 1/2 ``p`` lies) when
    it is below :data:`ALPHA`, else ``no clear difference``. Returns the family's size."""
    tested = [(c, p) for c in comparisons if (p := c["p_value"]) is not None]
    adjusted = holm({str(i): p for i, (_, p) in enumerate(tested)})
    for i, (c, _) in enumerate(tested):
        c["p_holm"] = adjusted[str(i)]
        c["verdict"] = "no clear difference" if adjusted[str(i)] >= ALPHA else "better" if c["p"] > 0.5 else "worse"
    return len(tested)


def _iqm_per_point(scores: np.ndarray) -> np.ndarray:
    """``(runs, tasks, points)`` -> ``(points,)``: rliable's IQM (``scipy.stats.trim_mean`` at 25%
    over all runs x tasks) of each point, vectorised over the points, as trim_mean computes it."""
    flat = scores.reshape(-1, scores.shape[-1])
    low = int(0.25 * flat.shape[0])
    high = flat.shape[0] - low
    return np.mean(np.partition(flat, (low, high - 1), axis=0)[low:high], axis=0)


def sample_efficiency(curves: dict[str, np.ndarray], reps: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """IQM learning curve of each method with pointwise 95% CIs.

    ``curves[method]`` is ``(runs, tasks, points)``: a score per run and task at common points
    (e.g. rolling success at the same logged env steps). As in rliable's own sample-efficiency
    curves, runs are resampled independently at each point, so each interval is pointwise, not a
    band for the whole curve. Returns ``{method: {"iqm": [points], "lo": [points], "hi": [points]}}``.
    """
    _check_bootstrap_args(reps, seed)
    if not curves:
        raise ValueError("curves: expected at least one method")
    out: dict[str, dict[str, list[float]]] = {}
    for method, raw in curves.items():
        data = _check_scores(f"curves[{method!r}]", raw, ndim=3)
        point, interval = _bootstrap(data, _iqm_per_point, reps, seed)
        out[method] = {"iqm": point.tolist(), "lo": interval[0].tolist(), "hi": interval[1].tolist()}
    return out


def ideal_trial_and_error_failures(num_problems: int, num_actions: int) -> float:
    """Expected total failures of an ideal trial-and-error learner that, per problem, tries
    untried actions uniformly at random and never repeats a wrong one: the right action's position
    in a random order of the ``A`` actions is uniform on ``1..A``, so it fails ``(A - 1) / 2`` times
    per problem on average, ``num_problems * (A - 1) / 2`` in all."""
    if num_problems < 1:
        raise ValueError(f"num_problems={num_problems!r}: expected at least 1")
    if num_actions < 1:
        raise ValueError(f"num_actions={num_actions!r}: expected at least 1")
    return num_problems * (num_actions - 1) / 2


def steps_to_mastery(steps: np.ndarray, reached: np.ndarray, confidence: float = CONFIDENCE) -> KaplanMeier:
    """Kaplan-Meier median of env steps to mastery over runs, each either reaching it at
    ``steps[i]`` (``reached[i]``) or censored at its budget ``steps[i]`` (it never got there).

    The median is the first time the survival function (the share of runs not yet there) is at or
    below one half (lifelines' convention; R's ``survfit`` takes the midpoint to the next event
    where it is exactly one half), None when it never is (fewer than half got there); its interval takes the same
    first time from the pointwise log-log confidence band of the survival function (the way
    lifelines and R's ``survfit`` print a median's interval): ``lo`` from the lower band, ``hi``
    from the upper, None when that band never falls to one half. Where the band is undefined (the
    survival function at 0 or 1) it is that value. Returns ``{"median", "lo", "hi", "reached",
    "runs"}``, steps in env steps.
    """
    steps = np.asarray(steps, dtype=float)
    reached = np.asarray(reached, dtype=bool)
    if steps.ndim != 1 or steps.shape != reached.shape or steps.size == 0:
        raise ValueError(f"steps {steps.shape} and reached {reached.shape}: expected two equal, non-empty 1-d arrays")
    if not np.isfinite(steps).all() or (steps < 0).any():
        raise ValueError("steps: expected finite, non-negative env steps (a run that never got there: its budget)")
    survival = stats.ecdf(stats.CensoredData(uncensored=steps[reached], right=steps[~reached])).sf
    times, points = survival.quantiles, survival.probabilities
    with warnings.catch_warnings():  # undefined where the survival function is 0 or 1: filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        band = survival.confidence_interval(confidence, method="log-log")

    def first_half(probabilities: np.ndarray) -> float | None:
        below = np.flatnonzero(np.where(np.isnan(probabilities), points, probabilities) <= 0.5)
        return float(times[below[0]]) if below.size else None

    return {"median": first_half(points), "lo": first_half(band.low.probabilities),
            "hi": first_half(band.high.probabilities), "reached": int(reached.sum()), "runs": int(steps.size)}


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values of a family of comparisons (controls the family-wise error
    rate): the ``i``-th smallest of ``m`` is multiplied by ``m - i`` (``i`` from 0), made
    non-decreasing in that order, and capped at 1."""
    order = sorted(p_values, key=p_values.__getitem__)
    adjusted, running = {}, 0.0
    for i, name in enumerate(order):
        p = p_values[name]
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p_values[{name!r}] = {p!r}: expected a probability in [0, 1]")
        running = max(running, min(1.0, (len(order) - i) * p))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


def pick_variance(chances: np.ndarray) -> float:
    """The variance of a run's success that comes from its policy's pick among the answers its
    parent's verdicts leave open: the mean of ``c (1 - c)`` over problems whose success is a coin
    of chance ``c`` each (``chances (P,)``)."""
    chances = np.asarray(chances, dtype=float)
    return float((chances * (1 - chances)).mean())
