# Helpers shared by the rules: params.yaml is read (and validated) here, once.
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import yaml

from wmil.config import TASK_NAMES, load_params
from wmil.reporting.figures import FIGURES as FIGURE_SPECS
from wmil.provenance import package_source, training_sources

PARAMS_FILE = config.get("params", "params.yaml")
with open(PARAMS_FILE) as f:
    validate(yaml.safe_load(f), workflow.source_path("../schemas/params.schema.yaml"))
PARAMS = load_params(PARAMS_FILE)

RUNS = "results/runs"
METRICS = "results/metrics"
LOGS = "results/logs"
BENCHMARKS = "results/benchmarks"
SANITY = f"{METRICS}/sanity.json"
MVP_CRITERIA = f"{METRICS}/mvp_criteria.json"
SUMMARY = f"{METRICS}/summary.json"
MACHINE = f"{METRICS}/machine.json"
LLM_AUDIT = f"{METRICS}/llm_audit.json"
ANALYSIS = "results/analysis"
PLOTS = "results/plots"
PLOT_TABLES = [f"{PLOTS}/{name}.csv" for name in ("curves", "runs", "sample_efficiency", "representation")]
FIGURES = "results/figures"
FIGURE_NAMES = list(FIGURE_SPECS)
FIGURE_OUTPUTS = [f"{FIGURES}/{name}.png" for name in FIGURE_NAMES]
REPORT_HTML = "results/report/report.html"
REPORT_MD = "results/report/summary.md"
HEADLINE = f"{METRICS}/headline.json"
STATUS = f"{LOGS}/status.json"

# A guarded job that fails leaves failure records in place of its outputs (wmil/jobs.py), so that
# every other result, the figures and the report are still built; the rule `status` then lists
# the failed jobs with their logs and makes the invocation fail.
def guarded(command):
    """``command`` run by ``wmil guard`` (each guarded rule sets ``params.job``, see job_label)."""
    return f"wmil guard --job {{params.job:q}} --log {{log}} --outputs {{output}} -- {command}"


wildcard_constraints:
    experiment="|".join(re.escape(name) for name in PARAMS.experiments),
    task="|".join(TASK_NAMES),


def job_label(rule_name):
    """A guarded job's name in messages: its rule and wildcards (params.job of each guarded rule)."""
    return lambda wildcards: " ".join([rule_name, *(f"{k}={v}" for k, v in wildcards.items())])

# The code that shapes a run: a change to it reruns the runs (results follow the code).
TRAINING_SOURCES = [str(p) for p in training_sources()]
RULE_SOURCES = [str(p) for p in training_sources(llm=False)]  # without the LLM parent's modules
# The audit runs the parents on the tasks, nothing of the learner
LLM_AUDIT_SOURCES = [str(p) for p in training_sources() if {"tasks", "envs", "parents"} & set(p.parts)] + [
    str(package_source(m)) for m in ("config.py", "atomic.py", "evaluation/llm_audit.py")]



def runs(experiments=None):
    """(experiment, task, seed) for every run that params.yaml defines."""
    names = experiments or PARAMS.experiments
    return [(e, t, s) for e in names for t in PARAMS.experiments[e].tasks for s in PARAMS.seeds]


def run_outputs(experiments=None, name="metrics.json"):
    return [f"{RUNS}/{e}/{t}/seed{s}/{name}" for e, t, s in runs(experiments)]


def seed_outputs(name):
    """``name`` in the run directory of every seed of the job's experiment x task."""
    return expand(f"{RUNS}/{{experiment}}/{{task}}/seed{{seed}}/{name}", seed=PARAMS.seeds, allow_missing=True)


def run_config_hash(wildcards):
    """Hashes of the job's runs' whole resolved configs: only jobs whose runs' configs changed rerun."""
    return [PARAMS.run_config(wildcards.experiment, wildcards.task, s).config_hash() for s in PARAMS.seeds]


def sources(*modules):
    """The training code (less the LLM parent's) plus the package modules a rule runs, e.g.
    sources("evaluation/sanity.py")."""
    return RULE_SOURCES + [str(package_source(m)) for m in modules]


def run_sources(wildcards):
    """The code a training run executes: the LLM parent's modules only where it is the parent."""
    config = PARAMS.run_config(wildcards.experiment, wildcards.task)
    return TRAINING_SOURCES if config.parent.name == "llm" else RULE_SOURCES


def sanity_fingerprint():
    """Hash of what the sanity checks read: their settings, the defaults but the parent's (they
    check the rules themselves) and the action-space sizes in use (not every override: rerunning
    sanity would rerun every training run)."""
    sizes = sorted({PARAMS.run_config(e, t).env.num_actions for e, t, _ in runs()})
    defaults = {k: v for k, v in PARAMS.defaults.items() if k != "parent"}
    body = [dataclasses.asdict(PARAMS.sanity), defaults, sizes]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def evaluation_settings(*keys):
    """Evaluation settings as rule params (all by default), so that changing them reruns the job."""
    settings = dataclasses.asdict(PARAMS.evaluation)
    return {k: settings[k] for k in keys} if keys else settings


def representation_tasks():
    return sorted({t for e in PARAMS.evaluation.representation for t in PARAMS.experiments[e].tasks})


def representation_models(task):
    experiments = [e for e in PARAMS.evaluation.representation if task in PARAMS.experiments[e].tasks]
    return [f"{RUNS}/{e}/{task}/seed{s}/model.pt" for e in experiments for s in PARAMS.seeds]


ANALYSIS_OUTPUTS = [f"{ANALYSIS}/{task}.json" for task in representation_tasks()]


def figure_inputs(name):
    """The result files figure ``name`` reads (declared in wmil/reporting/figures.py, relative to results/)."""
    return [f"results/{path}".format(task=task) for path in FIGURE_SPECS[name].inputs
            for task in (representation_tasks() if "{task}" in path else [None])]
