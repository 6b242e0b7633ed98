"""The result files every stage after training reads: their schema, their paths and one reader each.

* ``metrics.json`` (:class:`Metrics`): a training run's final metrics, written last by the trainer
  (its presence marks a finished run);
* ``eval.json`` (:class:`Evaluation`): the run's held-out evaluation (``wmil evaluate``);
* ``summary.json`` (:class:`Summary`): every experiment aggregated over seeds (``wmil summarize``).

Producers build the dicts typed here and write them with the writer beside each type (JSON with
sorted keys, atomically); consumers read them with its reader alone. A reader raises
:class:`~wmil.errors.MissingResult` where the file is the failure record of the job that should
have made it (``wmil.jobs``): no consumer can take a failure record for a result. The types are
the writers' contract, checked statically (mypy) and on real files by ``tests/test_results.py``;
a reader checks that the file is a JSON object, not each key (``wmil verify`` reads results
committed by older versions).

The keys that name a success threshold (``steps_to_0.9``) are not identifiers: the types that hold
them are spelled in TypedDict's functional form (where mypy takes literal keys only), and code
indexes them with the constants below; ``tests/test_results.py`` checks that every spelling agrees.
"""

# No ``from __future__ import annotations``: TypedDict reads NotRequired off evaluated annotations
# alone (__required_keys__ would hold every key).
import errno
import json
import os
from pathlib import Path
from typing import Any, Final, Literal, NotRequired, TypedDict, final, get_args

from wmil import atomic, layout
from wmil.errors import MissingResult, WmilError
from wmil.jobs import record_in

MASTERY: Final = 0.99  # the rolling full-task success that ends the regret count
STEPS_TO_90: Final = "steps_to_0.9"  # env steps to 90% rolling success: the threshold every table reports
FAILURES_TO_MASTERY: Final = "failures_to_0.99"  # the regret: failed episodes until MASTERY
REACHED_MASTERY: Final = "reached_0.99"  # whether (or by how many runs) MASTERY was reached
#: The keys of the env steps at which a run's rolling full-task success first reached a threshold.
StepsKey = Literal["steps_to_0.5", "steps_to_0.9", "steps_to_0.99"]
#: Each :data:`StepsKey` and its threshold, lowest first.
SUCCESS_THRESHOLDS: Final[dict[StepsKey, float]] = {"steps_to_0.5": 0.5, STEPS_TO_90: 0.9, "steps_to_0.99": MASTERY}


class ResultError(WmilError, ValueError):
    """A result file that is not what its writer writes (not JSON, or not a JSON object)."""


# ---- metrics.json -----------------------------------------------------------------------------

#: Env steps to each of :data:`SUCCESS_THRESHOLDS` (None: never within the budget).
StepsTo = TypedDict("StepsTo", {"steps_to_0.5": int | None, "steps_to_0.9": int | None, "steps_to_0.99": int | None})
#: A run's :class:`StepsTo` before any threshold is reached (copy it).
UNREACHED: Final[StepsTo] = {"steps_to_0.5": None, "steps_to_0.9": None, "steps_to_0.99": None}
#: Failed episodes (at any level) until :data:`MASTERY`; None: never mastered.
Regret = TypedDict("Regret", {"failures_to_0.99": int | None})


class Metrics(StepsTo, Regret):
    """``metrics.json``: a finished training run, as its trainer counted it after every update."""
    experiment: str
    task: str
    seed: int
    env_steps: int
    episodes: int
    updates: int
    num_parameters: int
    final_level: int
    final_rolling_success: float
    final_rolling_success_top: float | None  # None: no full-task episode in the last window
    final_entropy: float  # nats
    final_world_model_mse: float | None  # None: no world model
    failures: int  # failed episodes, at any level
    embedding_switch_step: int | None  # env steps when the world model's target became the embedding
    level_entered_at: list[int | None] | None  # a curriculum's env steps at each level's start (None: never)
    steps_per_level: list[int] | None  # a curriculum's env steps while each level was the current one


# ---- eval.json --------------------------------------------------------------------------------

class EpisodeScores(TypedDict):
    """One policy (greedy or sampled) on fresh episodes of one level's problems."""
    success: float  # share of episodes with every answer right
    step_success: float  # share of right answers
    entropy: float  # the policy's, nats per step
    world_model_mse: float | None  # the raw next-state prediction's; None: no world model


class LevelEvaluation(TypedDict):
    """One level: on the run's training problems, and on its held-out ones (None: none held out)."""
    greedy: EpisodeScores
    sampled: EpisodeScores
    held_out_greedy: EpisodeScores | None
    held_out_sampled: EpisodeScores | None


class Evaluation(TypedDict):
    """``eval.json``: a finished run's held-out evaluation; the headline scores are its top level's."""
    experiment: str
    task: str
    seed: int
    episodes_per_level: int
    level: int  # the top level, whose scores are the headline ones
    success_greedy: float
    success_sampled: float
    entropy: float
    world_model_mse: float | None
    held_out_success_greedy: float | None  # None: the task holds no problem out
    held_out_success_sampled: float | None
    held_out_problems: list[list[int]]  # at the top level, each its problem slots
    training_problems: int  # at the top level
    by_level: dict[str, LevelEvaluation]  # "0", "1", ...


# ---- summary.json -----------------------------------------------------------------------------

class Interval(TypedDict):
    """An estimate and its 95% interval."""
    value: float
    lo: float
    hi: float


class Estimate(Interval):
    """IQM over seeds [95% stratified-bootstrap CI], with each seed's score (None: pooled over tasks)."""
    per_seed: list[float] | None


class KaplanMeier(TypedDict):
    """Kaplan-Meier median of env steps to 90% with its 95% interval (None: not reached, open end)."""
    median: float | None
    lo: float | None
    hi: float | None
    reached: int  # runs that got there
    runs: int


class StepsToMastery(KaplanMeier):
    """:class:`KaplanMeier` of one experiment on one task, with its budget and each seed's steps."""
    budget: int
    per_seed: list[int | None]


class Comparison(TypedDict):
    """P(X > Y) [95% CI]; ``p_value`` and ``p_floor`` for one task (None pooled over tasks), and its
    Holm-adjusted verdict where tested."""
    p: float
    lo: float
    hi: float
    p_value: float | None
    p_floor: float | None
    p_holm: NotRequired[float]
    verdict: NotRequired[str]
    inconclusive: NotRequired[str]  # why a comparison carries no test


ExperimentSummary = TypedDict("ExperimentSummary", {
    "seeds": int,
    "success_greedy": dict[str, Estimate],  # per task and "all_tasks"
    "held_out_success_greedy": dict[str, Estimate],  # per task that holds problems out
    "success_sampled": dict[str, Estimate],
    "failures_to_0.99": dict[str, Estimate],  # per task
    "steps_to_0.9": dict[str, StepsToMastery],
    "reached_0.99": dict[str, int],  # runs per task that reached MASTERY
    "ideal_failures": float | None,  # an ideal trial-and-error learner's regret (single-step tasks)
})
"""An experiment none of whose runs failed."""


class MissingExperiment(TypedDict):
    """An experiment with a failed run: it is not aggregated (the summary's ``missing`` says why)."""
    missing: Literal[True]


class MissingEntry(TypedDict):
    """A result whose job failed."""
    result: str
    experiment: str | None
    job: str
    reason: str
    log: str


SummarySettings = TypedDict("SummarySettings", {
    "score": str, "aggregate": str, "steps_to_0.9": str, "verdicts": str,  # how each number was made
    "alpha": float, "bootstrap_reps": int, "seeds": list[int], "tuning_seeds": list[int],
    "comparisons_tested": int,  # the Holm family's size
})


class RuleExperiment(TypedDict):
    training: Estimate
    held_out: Estimate
    seeds: int


TabularRule = TypedDict("TabularRule", {"training": Interval, "held_out": Interval, "seeds": int,
                                        "steps_to_0.9": KaplanMeier})


class RuleEntry(TypedDict):
    """Does the baby learn the rule of one task: success on training and held-out problems."""
    chance: float
    episode_length: int
    experiments: dict[str, RuleExperiment]
    tabular: NotRequired[TabularRule]  # the reference that memorises and never generalises


class ParentQualityPoint(TypedDict):
    experiment: str
    sweep: str
    task: str
    false_positive_rate: float
    false_negative_rate: float
    j: float  # informativeness, 1 - FPR - FNR
    noise_correction: bool
    success_greedy: Estimate


class WorldModelVariant(TypedDict):
    """A world-model variant against its reference without one."""
    reference: str
    target: str
    head: str
    detached: bool
    next_problem: str
    distill_coef: float
    world_model_coef: float
    embedding_after_steps: int
    embedding_after_success: float
    tasks: list[str]
    p_success: dict[str, Comparison]
    p_steps: dict[str, Comparison]  # fewer env steps to 90% is better
    embedding_switch_step: NotRequired[dict[str, list[int | None]]]


class WorldModelComparison(TypedDict):
    variants: dict[str, WorldModelVariant]
    next_problem_holds_answer: dict[str, bool]


@final
class NoComparison(TypedDict):
    """A comparison that could not run (an arm missing, or none configured): ``{}``."""


class Climb(TypedDict):
    seed: int
    top_level: int
    level_entered_at: list[int | None]
    steps_per_level: list[int]


#: The curriculum comparison's measures (each a key of :class:`CurriculumComparison`).
CurriculumMeasure = Literal["success_level2", "success_all_levels", "steps_to_0.9"]
CURRICULUM_MEASURE_KEYS: Final[tuple[CurriculumMeasure, ...]] = get_args(CurriculumMeasure)
#: Per measure: each arm's estimates by task (under its experiment's name) and ``"p"``: P(curriculum
#: beats the reference) by task, a :class:`Comparison` each.
CurriculumComparison = TypedDict("CurriculumComparison", {
    "reference": str, "curriculum": str, "budget": dict[str, int], "climb": dict[str, list[Climb]],
    "reached_top": dict[str, int],
    "success_level2": dict[str, Any], "success_all_levels": dict[str, Any], "steps_to_0.9": dict[str, Any],
})


class SeedPrediction(TypedDict):
    mean: float
    interval: list[float]  # [lo, hi]


class Prediction(SeedPrediction):
    """An LLM-taught experiment's predicted success: over its seeds, and each seed's."""
    rule: str
    per_seed: list[SeedPrediction]


class LlmOutcome(TypedDict):
    """An LLM-taught experiment on one task beside what its audit predicts."""
    protocol: str
    level: int
    success_greedy: Estimate
    prediction: Prediction | None
    no_prediction: NotRequired[str]  # why there is none
    audited_j: NotRequired[float]
    audited_tpr: NotRequired[float]
    audited_fpr: NotRequired[float]
    j_curve: NotRequired[float | None]
    inside: NotRequired[list[bool]]  # each seed's success inside its predicted interval
    agrees: NotRequired[bool]


class Summary(TypedDict):
    """``summary.json``: the paper's numbers."""
    settings: SummarySettings
    experiments: dict[str, ExperimentSummary | MissingExperiment]
    missing: list[MissingEntry]
    probability_of_improvement: dict[str, dict[str, Comparison]]  # baseline -> task -> P(method > it)
    rule: dict[str, RuleEntry]
    parent_quality: list[ParentQualityPoint]
    world_model: WorldModelComparison | NoComparison
    curriculum: CurriculumComparison | NoComparison
    llm: dict[str, dict[str, LlmOutcome]]
    representation: NotRequired[dict[str, Any]]  # task -> source -> attribute -> means (with --analysis)


def complete_experiments(summary: Summary) -> dict[str, ExperimentSummary]:
    """The experiments of ``summary`` none of whose runs failed, in its order."""
    return {name: entry for name, entry in summary["experiments"].items() if "missing" not in entry}


# ---- paths, readers, writers ------------------------------------------------------------------

def metrics_file(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / layout.RUN_METRICS


def evaluation_file(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / layout.RUN_EVALUATION


def parse(text: str, origin: str | os.PathLike) -> Any:
    """The JSON object ``text`` read from ``origin`` (a path, or where it came from, for messages):
    :class:`MissingResult` where it is a failure record, :class:`ResultError` where it is no JSON object."""
    record = record_in(text.encode())
    if record is not None:
        raise MissingResult(origin, record)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ResultError(f"{origin}: not a JSON result ({exc})") from None
    if not isinstance(data, dict):
        raise ResultError(f"{origin}: expected a JSON object, found {type(data).__name__}")
    return data


def read_result(path: str | os.PathLike, made_by: str = "its job") -> Any:
    """The JSON result at ``path``, as :func:`parse`; where it is absent, ``FileNotFoundError``
    with its ``filename`` and ``made_by`` (what makes it) in its message."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"missing (made by {made_by})", str(path)) from None
    return parse(text, path)


def read_unless_failed(path: str | os.PathLike, made_by: str = "its job") -> Any | None:
    """:func:`read_result`, but None where the file is the failure record of its job (a stage that
    reports what is missing rather than stopping)."""
    try:
        return read_result(path, made_by)
    except MissingResult:
        return None


def read_metrics(run_dir: str | os.PathLike) -> Metrics:
    """``metrics.json`` of the finished run in ``run_dir``."""
    metrics: Metrics = read_result(metrics_file(run_dir), "wmil train, at the end of the run")
    return metrics


def read_evaluation(run_dir: str | os.PathLike) -> Evaluation:
    """``eval.json`` of the evaluated run in ``run_dir``."""
    evaluation: Evaluation = read_result(evaluation_file(run_dir), "wmil evaluate")
    return evaluation


def read_summary(path: str | os.PathLike = layout.SUMMARY) -> Summary:
    """``summary.json`` at ``path``."""
    summary: Summary = read_result(path, "wmil summarize")
    return summary


def write_metrics(run_dir: str | os.PathLike, metrics: Metrics) -> Path:
    return atomic.write_json(metrics_file(run_dir), metrics)


def write_evaluation(path: str | os.PathLike, evaluation: Evaluation) -> Path:
    """``evaluation`` to ``path`` (a run's :func:`evaluation_file`, or elsewhere with ``--out``)."""
    return atomic.write_json(path, evaluation)


def write_summary(path: str | os.PathLike, summary: Summary) -> Path:
    return atomic.write_json(path, summary)
