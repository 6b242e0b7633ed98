"""The result files' schema (``wmil.results``): real files are what their types say and read back
to the same bytes; a reader refuses a failure record, and names the file it cannot read."""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT

from wmil import layout, results
from wmil.config import EvaluationConfig
from wmil.errors import MissingResult
from wmil.evaluation.held_out import evaluate_run
from wmil.jobs import guard
from wmil.training.trainer import Trainer


def conforms(value: Any, hint: Any, where: str = "") -> list[str]:
    """Where ``value`` (parsed JSON) departs from the type ``hint``: an empty list when it conforms.
    A TypedDict must have every required key and no key it does not declare."""
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected {hint.__name__}"]
        hints = typing.get_type_hints(hint)
        wrong = [f"{where}.{k}: missing" for k in sorted(hint.__required_keys__ - value.keys())]
        wrong += [f"{where}.{k}: not in {hint.__name__}" for k in sorted(value.keys() - hints.keys())]
        return wrong + [w for k in value.keys() & hints.keys() for w in conforms(value[k], hints[k], f"{where}.{k}")]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        found = [conforms(value, arg, where) for arg in args]
        return [] if any(not f for f in found) else [f"{where}: {value!r} is none of {hint}"]
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} not in {args}"]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected a mapping"]
        return [w for k, v in value.items() for w in conforms(k, args[0], where) + conforms(v, args[1], f"{where}.{k}")]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, expected a list"]
        return [w for i, v in enumerate(value) for w in conforms(v, args[0], f"{where}[{i}]")]
    if hint is Any:
        return []
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r}, expected None"]
    allowed = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}[hint]
    ok = isinstance(value, allowed) and (hint is bool or not isinstance(value, bool))
    return [] if ok else [f"{where}: {value!r}, expected {hint.__name__}"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, params) -> Path:
    """A finished, evaluated run that fills every optional part of the schema: a curriculum (its
    climb), a world model (its MSE), a task that holds problems out (held-out scores)."""
    run_dir = tmp_path_factory.mktemp("run")
    config = params.run_config("curriculum", "conditional", 0, {"training": {"max_steps": 1024, "log_every": 512}})
    Trainer(config, run_dir).train(progress=False)
    settings = EvaluationConfig(**{**vars(params.evaluation), "episodes": 50})
    results.write_evaluation(results.evaluation_file(run_dir), evaluate_run(run_dir, settings))
    return run_dir


def test_a_run_writes_what_the_schema_says_and_reads_back_to_the_same_bytes(run_dir, tmp_path):
    metrics, evaluation = results.read_metrics(run_dir), results.read_evaluation(run_dir)
    assert conforms(metrics, results.Metrics) == [] and conforms(evaluation, results.Evaluation) == []
    assert metrics["level_entered_at"] is not None and evaluation["held_out_success_greedy"] is not None
    results.write_metrics(tmp_path, metrics)
    results.write_evaluation(results.evaluation_file(tmp_path), evaluation)
    for path in (results.metrics_file, results.evaluation_file):
        assert path(tmp_path).read_bytes() == path(run_dir).read_bytes()


def test_the_committed_summary_is_what_the_schema_says_and_reads_back_to_the_same_bytes(tmp_path):
    committed = REPO_ROOT / layout.SUMMARY
    summary = results.read_summary(committed)
    assert conforms(summary, results.Summary, "summary") == []
    assert results.complete_experiments(summary) and "missing" not in next(iter(results.complete_experiments(summary).values()))
    results.write_summary(tmp_path / "summary.json", summary)
    assert (tmp_path / "summary.json").read_bytes() == committed.read_bytes()


def test_schema_checks_name_what_departs():
    assert conforms({"value": 0.5, "lo": 0.4}, results.Interval, "x") == ["x.hi: missing"]
    assert conforms({"value": 0.5, "lo": 0.4, "hi": None, "extra": 1}, results.Interval, "x") == [
        "x.extra: not in Interval", "x.hi: None, expected float"]


def test_every_spelling_of_a_threshold_key_agrees():
    """The keys that name a threshold are spelled in the types (mypy needs literals) and once as a constant."""
    steps = typing.get_type_hints(results.StepsTo)
    assert list(steps) == list(typing.get_args(results.StepsKey)) == list(results.SUCCESS_THRESHOLDS) == list(results.UNREACHED)
    assert all(key == f"steps_to_{threshold:g}" for key, threshold in results.SUCCESS_THRESHOLDS.items())
    assert results.SUCCESS_THRESHOLDS[results.STEPS_TO_90] == 0.9
    assert f"failures_to_{results.MASTERY:g}" == results.FAILURES_TO_MASTERY
    assert f"reached_{results.MASTERY:g}" == results.REACHED_MASTERY
    assert results.FAILURES_TO_MASTERY in results.Metrics.__required_keys__
    experiment = results.ExperimentSummary.__required_keys__
    assert {results.STEPS_TO_90, results.FAILURES_TO_MASTERY, results.REACHED_MASTERY} <= experiment
    assert results.STEPS_TO_90 in results.SummarySettings.__required_keys__ & results.TabularRule.__required_keys__
    assert set(results.CURRICULUM_MEASURE_KEYS) <= results.CurriculumComparison.__required_keys__


def failed_job(tmp_path: Path, outputs: list[Path]) -> None:
    """The pipeline's guard around a job that fails: failure records in place of ``outputs``."""
    assert guard("train x", tmp_path / "x.log", outputs, [sys.executable, "-c", "raise SystemExit(3)"]) == 0


def test_no_reader_takes_a_failure_record_for_a_result(tmp_path):
    summary = tmp_path / "summary.json"
    failed_job(tmp_path, [results.metrics_file(tmp_path), results.evaluation_file(tmp_path), summary])
    for read, argument, path in ((results.read_metrics, tmp_path, results.metrics_file(tmp_path)),
                                 (results.read_evaluation, tmp_path, results.evaluation_file(tmp_path)),
                                 (results.read_summary, summary, summary), (results.read_result, summary, summary)):
        with pytest.raises(MissingResult, match=r"missing: job 'train x' failed \(exit code 3\)") as raised:
            read(argument)
        assert raised.value.path == path
    with pytest.raises(MissingResult):
        results.parse(summary.read_text(), "HEAD:results/metrics/summary.json")


@pytest.mark.parametrize(("text", "error"), [("{", "not a JSON result"), ("[1, 2]", "expected a JSON object, found list")])
def test_a_bad_file_is_named_with_what_is_wrong(tmp_path, text, error):
    results.metrics_file(tmp_path).write_text(text)
    with pytest.raises(results.ResultError, match=f"^{tmp_path / layout.RUN_METRICS}: {error}"):
        results.read_metrics(tmp_path)


def test_an_absent_file_is_named_with_what_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing \(made by wmil evaluate\)") as raised:
        results.read_evaluation(tmp_path)
    assert raised.value.filename == str(results.evaluation_file(tmp_path))
