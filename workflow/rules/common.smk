# Helpers shared by the rules: params.yaml is read (and validated) here, once.
import dataclasses
import hashlib
import json
from pathlib import Path

import yaml

from wmil.config import load_params
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
CURVES = "results/plots/curves.csv"

# The code that shapes a run: a change to it reruns the runs (results follow the code).
TRAINING_SOURCES = [str(p) for p in training_sources()]

localrules:
    all,
    mvp_criteria,
    summarize,


def runs(experiments=None):
    """(experiment, task, seed) for every run that params.yaml defines."""
    names = experiments or PARAMS.experiments
    return [(e, t, s) for e in names for t in PARAMS.experiments[e].tasks for s in PARAMS.seeds]


def run_outputs(experiments=None, name="metrics.json"):
    return [f"{RUNS}/{e}/{t}/seed{s}/{name}" for e, t, s in runs(experiments)]


def run_config_hash(wildcards):
    """Hash of a run's whole resolved config: only runs whose own config changed are rerun."""
    return PARAMS.run_config(wildcards.experiment, wildcards.task, int(wildcards.seed)).config_hash()


def sources(*modules):
    """The training code plus the package modules a rule runs, e.g. sources("sanity.py")."""
    return TRAINING_SOURCES + [str(package_source(m)) for m in modules]


def sanity_fingerprint():
    """Hash of what the sanity checks read: their settings, the defaults and the action-space
    sizes in use (not every override: rerunning sanity would rerun every training run)."""
    sizes = sorted({PARAMS.run_config(e, t).env.num_actions for e, t, _ in runs()})
    body = [dataclasses.asdict(PARAMS.sanity), PARAMS.defaults, sizes]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
