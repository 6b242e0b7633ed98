# Helpers shared by the rules: the params (config) are validated and parsed here, once, and every
# results path is built here from wmil.layout, the one module that spells the results layout.
import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

from snakemake.common.configfile import load_configfile
from snakemake.exceptions import WorkflowError

from wmil import layout
from wmil.config import LLM_OPERATIONAL, TASK_NAMES, check_schema_file, parse_params
from wmil.reporting.figures import FIGURE_SPECS
from wmil.provenance import code_hash, evaluation_code_hash, results_code_hash, training_code_hash, unused_components


# ---- params ----------------------------------------------------------------------------------
# `configfile:` (Snakefile) reads params.yaml into `config`. The wmil commands read the params
# again themselves (`--params FILE`), so `config` must be exactly one file: params.yaml, or another
# one given with `--configfile FILE` or `--config params=FILE`. Snakemake would merge such a file
# into params.yaml (and single `--config KEY=VALUE` settings too, which wmil would never see), so
# `config` is reloaded from the chosen file and single settings are refused.
def as_given(path):
    """``path`` (made absolute by Snakemake) relative to the working directory again, if it is in it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith(os.pardir) else relative


def params_file():
    """The params file of this invocation, as given (relative to the working directory if in it)."""
    cli = dict(workflow.config_settings.config)  # --config KEY=VALUE
    others = sorted(set(cli) - {"params"})
    if others:
        raise WorkflowError(
            f"--config {others[0]}=...: the params come from one file, which the wmil commands read too "
            "(--params FILE); give another file with `--configfile FILE` or `--config params=FILE`")
    given = [as_given(f) for f in workflow.overwrite_configfiles]  # --configfile FILE
    given += [str(cli["params"])] if "params" in cli else []
    if len(given) > 1:
        raise WorkflowError(f"one params file (--configfile FILE or --config params=FILE), not {given}")
    return given[0] if given else DEFAULT_PARAMS_FILE


PARAMS_FILE = params_file()
if PARAMS_FILE != DEFAULT_PARAMS_FILE:
    config.clear()
    config.update(load_configfile(PARAMS_FILE))
# generated from wmil/config.py (`wmil schema`); checked first, so that a stale one (a task or a params
# field changed since) is named with the command that regenerates it, not reported as a bad config
PARAMS_SCHEMA = os.path.join(workflow.basedir, "schemas", "params.schema.yaml")
check_schema_file(Path(as_given(PARAMS_SCHEMA)))
validate(config, PARAMS_SCHEMA)
PARAMS = parse_params(config, PARAMS_FILE)
# One train job covers every seed of an experiment x task, and a rule's outputs are one pattern for
# all its jobs, so the experiments are grouped by their seeds (`seeds:` at the top, or an
# experiment's own): one train rule per group, named by train_rule_name.
SEED_GROUPS = {}  # seeds -> the experiments that run them, the top-level seeds' first
for _name in PARAMS.experiments:
    SEED_GROUPS.setdefault(PARAMS.seeds_of(_name), []).append(_name)
SEED_GROUPS = dict(sorted(SEED_GROUPS.items(), key=lambda group: group[0] != PARAMS.seeds))


def train_rule_name(seeds):
    """The name of the train rule of the experiments that run ``seeds`` (``train`` for the
    top-level seeds, e.g. ``train_seeds_0_1_2`` for others)."""
    return "train" if seeds == PARAMS.seeds else f"train_seeds_{'_'.join(map(str, seeds))}"


def train_rule(experiment):
    """The train rule that runs ``experiment`` (rules.train for the top-level seeds)."""
    return getattr(rules, train_rule_name(PARAMS.seeds_of(experiment)))


def one_of(names):
    """A wildcard constraint that matches exactly these names."""
    return "|".join(re.escape(name) for name in names)


# ---- results layout (wmil/layout.py) ---------------------------------------------------------
# Plain strings (Snakemake's patterns); a wildcard is spelled once, in the patterns below. Where one
# rule reads another's output, it names it (rules.<rule>.output.<name>) instead. The roots the wmil
# commands are given (--runs-root, --results, --plots) are rule params set to layout's Path objects;
# Snakemake records only plain values of params (str, numbers, containers) for its `params` rerun
# trigger, so a root is where results are, not a setting whose change reruns a job.
SANITY = str(layout.SANITY)
SANITY_SPEED = str(layout.BENCHMARKS / "sanity_speed.json")  # measured, never compared
MVP_CRITERIA = str(layout.MVP_CRITERIA)
SUMMARY = str(layout.SUMMARY)
MACHINE = str(layout.MACHINE)
LLM_AUDIT = str(layout.LLM_AUDIT)
TABULAR = str(layout.TABULAR)
LLM_AUDIT_TIMING = str(layout.BENCHMARKS / "llm_audit.json")  # measured, never compared
PLOT_TABLES = [str(layout.plot_table(name)) for name in layout.PLOT_TABLES]
REPORT_HTML = str(layout.REPORT_HTML)
REPORT_MD = str(layout.REPORT_MD)
HEADLINE = str(layout.HEADLINE)
STATUS = str(layout.STATUS)
VERIFY = str(layout.LOGS / "verify.json")
RUN_FILE = str(layout.run_dir("{experiment}", "{task}", "{seed}") / "{name}")  # a file of one run
ANALYSIS_FILE = str(layout.analysis_file("{task}"))
FIGURE_NAMES = list(FIGURE_SPECS)


def log_file(name):
    """The log of a job, e.g. log_file("train/{experiment}/{task}")."""
    return str(layout.LOGS / f"{name}.log")


def benchmark_file(name):
    """The benchmark (wall-clock, memory) of a job, e.g. benchmark_file("train/{experiment}/{task}")."""
    return str(layout.BENCHMARKS / f"{name}.tsv")


# A guarded job that fails leaves failure records in place of its outputs (wmil/jobs.py), so that
# every other result, the figures and the report are still built; the rule `status` then lists
# the failed jobs with their logs and makes the invocation fail.
def guarded(command):
    """``command`` run by ``wmil guard`` (each guarded rule sets ``params.job``, see job_label)."""
    return f"wmil guard --job {{params.job:q}} --log {{log}} --outputs {{output}} -- {command}"


wildcard_constraints:
    experiment=one_of(PARAMS.experiments),
    task="|".join(TASK_NAMES),


def job_label(rule_name):
    """A guarded job's name in messages: its rule and wildcards (params.job of each guarded rule)."""
    return lambda wildcards: " ".join([rule_name, *(f"{k}={v}" for k, v in wildcards.items())])

# ---- code ------------------------------------------------------------------------------------
# A rule's code is a param (Snakemake's `params` rerun trigger), not its source files as inputs
# (mtime): the hash of the syntax trees of the modules its command runs (wmil/provenance.py), so an
# edit to a comment or docstring reruns nothing and a change to ppo.py reruns only PPO runs.
def code(*entries, **choices):
    """Hash of the code that the modules ``entries`` (paths inside the package) run, with the
    component ``choices`` made (e.g. parent="deterministic": never the LLM parent's modules)."""
    return code_hash(entries, unused_components(**choices))


def run_code(wildcards):
    """The code a job's training runs execute: their algorithm's and parent's, no other's."""
    config = PARAMS.run_config(wildcards.experiment, wildcards.task)
    return training_code_hash(config.algorithm.name, config.parent.name)


def runs(experiments=None):
    """(experiment, task, seed) for every run that the params define."""
    names = experiments or PARAMS.experiments
    return [(e, t, s) for e in names for t in PARAMS.experiments[e].tasks for s in PARAMS.seeds_of(e)]


def jobs(experiments=None):
    """(experiment, task) of every training (evaluation) job: one per experiment x task."""
    return list(dict.fromkeys((e, t) for e, t, _ in runs(experiments)))


def seed_outputs(name, seeds):
    """``name`` in the run directory of each of ``seeds`` for the job's experiment x task."""
    return expand(RUN_FILE, seed=seeds, name=name, allow_missing=True)


def per_run(output, experiments=None):
    """The train rule's ``output`` (e.g. "metrics": rules.train.output.metrics, or the rule of an
    experiment's own seeds) for every experiment x task: every run's file, in the order
    experiment, task, seed."""
    return [f for e, t in jobs(experiments) for f in expand(getattr(train_rule(e).output, output), experiment=e, task=t)]


def run_config_hash(wildcards):
    """Hashes of the job's runs' whole resolved configs: only jobs whose runs' configs changed rerun."""
    return [PARAMS.run_config(wildcards.experiment, wildcards.task, s).config_hash()
            for s in PARAMS.seeds_of(wildcards.experiment)]


def sanity_fingerprint():
    """Hash of what the sanity checks read: their settings, the defaults as the REINFORCE update
    they check reads them (not the parent's: they check the rules themselves) and the action-space
    sizes in use. Rerunning sanity reruns every training job (each only re-finalises a finished
    run, but still), so nothing else may rerun it."""
    sizes = sorted({PARAMS.run_config(e, t).env.num_actions for e, t, _ in runs()})
    defaults = PARAMS.run_config()
    checked = dataclasses.replace(defaults, algorithm=dataclasses.replace(defaults.algorithm, name="reinforce"))
    reads = {k: v for k, v in checked.identity().items() if not k.startswith(("parent.", "env.task", "env.num_actions"))}
    body = [dataclasses.asdict(PARAMS.sanity), reads, sizes]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def audit_fingerprint():
    """Hash of what the LLM audit reads of its two experiments (the program's and the per-state
    protocols'): the LLM's settings (less how it is reached), the action space and the episode
    length; nothing of the learner."""
    body = []
    for experiment in (PARAMS.llm_audit.experiment, PARAMS.llm_audit.per_state_experiment):
        config = PARAMS.run_config(experiment)
        llm = {k: v for k, v in dataclasses.asdict(config.parent.llm).items() if k not in LLM_OPERATIONAL}
        body.append([llm, config.env.num_actions, config.env.episode_length])
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


TABULAR_READS = ("env.", "parent.", "training.max_steps", "training.success_window")


def tabular_fingerprint():
    """Hash of what the tabular reference reads of the method's runs: their env, parent, budget and
    success window on each task, and their seeds (nothing of the learner)."""
    method = PARAMS.evaluation.method
    body = [[{k: v for k, v in PARAMS.run_config(method, task).identity().items() if k.startswith(TABULAR_READS)}
             for task in PARAMS.experiments[method].tasks], PARAMS.seeds_of(method)]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def evaluation_settings(*keys):
    """Evaluation settings as rule params (all by default), so that changing them reruns the job."""
    settings = dataclasses.asdict(PARAMS.evaluation)
    return {k: settings[k] for k in keys} if keys else settings


def representation_tasks():
    return sorted({t for e in PARAMS.evaluation.representation for t in PARAMS.experiments[e].tasks})


def representation_models(task):
    """The models of every run the representation analysis of ``task`` compares (rule train's)."""
    experiments = [e for e in PARAMS.evaluation.representation if task in PARAMS.experiments[e].tasks]
    return [f for e in experiments for f in expand(train_rule(e).output.model, experiment=e, task=task)]


def figure_inputs():
    """The result files the figures read (declared in wmil/reporting/figures.py), each once."""
    paths = [str(path).format(task=task) for spec in FIGURE_SPECS.values() for path in spec.inputs
             for task in (representation_tasks() if "{task}" in str(path) else [None])]
    return list(dict.fromkeys(paths))
