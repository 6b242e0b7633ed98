"""Where every result lives under ``results/``: the one place that spells the layout.

The CLI's defaults, the evaluation stages and the Snakefile (``workflow/rules/common.smk``) all
build their paths here, so that a file moves by one edit. Paths are relative to the folder the
pipeline runs in; functions take the root they are under where a caller may point elsewhere."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path("results")
RUNS = RESULTS / "runs"                # <experiment>/<task>/seed<k>/: one training run each
METRICS = RESULTS / "metrics"          # small JSON metrics (DVC metrics, in git)
PLOTS = RESULTS / "plots"              # tidy CSV tables the figures read (DVC plots)
ANALYSIS = RESULTS / "analysis"        # <task>.json: representation analysis
FIGURES = RESULTS / "figures"          # <name>.png
REPORT = RESULTS / "report"            # report.html, summary.md
LOGS = RESULTS / "logs"                # one log per job
BENCHMARKS = RESULTS / "benchmarks"    # wall-clock numbers, never compared

SANITY = METRICS / "sanity.json"
MVP_CRITERIA = METRICS / "mvp_criteria.json"
SUMMARY = METRICS / "summary.json"
MACHINE = METRICS / "machine.json"
LLM_AUDIT = METRICS / "llm_audit.json"
TABULAR = METRICS / "tabular.json"
HEADLINE = METRICS / "headline.json"
REPORT_HTML = REPORT / "report.html"
REPORT_MD = REPORT / "summary.md"
STATUS = LOGS / "status.json"
#: A run directory's result files (``wmil.results`` owns their schema and reads them).
RUN_METRICS = "metrics.json"           # training's final metrics, written last: the mark of a finished run
RUN_EVALUATION = "eval.json"           # its held-out evaluation (``wmil evaluate``)
#: The tidy tables ``wmil summarize`` writes under :data:`PLOTS`, one CSV each.
PLOT_TABLES = ("curves", "runs", "sample_efficiency", "representation")


def under(results: str | Path, path: Path) -> Path:
    """``path`` (one of the constants above) moved from ``results/`` to another results folder."""
    return Path(results) / path.relative_to(RESULTS)


def run_name(experiment: str, task: str, seed: int) -> str:
    """``<experiment>/<task>/seed<k>``: a run's directory under the runs root, and its name in reports."""
    return f"{experiment}/{task}/seed{seed}"


def run_dir(experiment: str, task: str, seed: int, runs_root: str | Path = RUNS) -> Path:
    return Path(runs_root) / run_name(experiment, task, seed)


def run_store(runs_root: str | Path = RUNS) -> Path:
    """The run store beside a runs root (``results/runs`` -> ``results/run-store``): every finished
    pipeline run, hard-linked, out of DVC's reach (``wmil.training.run_store``)."""
    return Path(runs_root).parent / "run-store"


def analysis_file(task: str, root: str | Path = ANALYSIS) -> Path:
    return Path(root) / f"{task}.json"


def figure_file(name: str, root: str | Path = FIGURES) -> Path:
    return Path(root) / f"{name}.png"


def plot_table(name: str, root: str | Path = PLOTS) -> Path:
    return Path(root) / f"{name}.csv"
