"""``params.yaml`` validation: the shipped file, error messages, overrides, fingerprints and the
JSON schema."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from wmil.config import (
    SECTIONS,
    TASK_NAMES,
    ConfigError,
    RunConfig,
    check_schema_file,
    json_schema,
    load_params,
    parse_override,
    parse_params,
)
from wmil.tasks.registry import TASKS

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPO_ROOT / "params.yaml"
SCHEMA_FILE = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"


@pytest.fixture
def raw():
    """A fresh, mutable copy of ``params.yaml`` as plain YAML data."""
    return yaml.safe_load(PARAMS_PATH.read_text())


def config_error(raw_params) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(raw_params)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# The shipped params.yaml
# --------------------------------------------------------------------------------------------


def test_params_file_loads(params):
    assert len(params.seeds) >= 5
    assert len(set(params.seeds)) == len(params.seeds)
    assert all(isinstance(s, int) and s >= 0 for s in params.seeds)
    assert "mvp" in params.experiments
    assert params.mvp_criteria.experiment == "mvp"


def test_mvp_experiment_resolves_to_the_locked_mvp(params):
    exp = params.experiments["mvp"]
    assert exp.tasks == ("pattern_echo",)
    cfg = params.run_config("mvp", "pattern_echo")
    assert isinstance(cfg, RunConfig)
    assert cfg.experiment == "mvp"
    assert cfg.env.task == "pattern_echo"
    assert cfg.env.num_actions == 8
    assert cfg.model.hidden_dim == 64
    assert cfg.model.num_layers == 2
    assert cfg.algorithm.name == "reinforce"
    assert cfg.parent.name == "deterministic"
    assert cfg.env.episode_length == 1
    assert cfg.training.max_steps == 10000
    assert cfg.model.world_model is True


def test_every_experiment_and_task_resolves(params):
    for name, exp in params.experiments.items():
        for task in exp.tasks:
            cfg = params.run_config(name, task, seed=params.seeds[-1])
            assert cfg.env.task == task
            assert cfg.seed == params.seeds[-1]


def test_run_config_precedence(params):
    # defaults < experiment overrides < CLI overrides
    assert params.run_config(None, "pattern_echo").env.num_actions == 16
    assert params.run_config("mvp", "pattern_echo").env.num_actions == 8
    cfg = params.run_config("mvp", "pattern_echo", overrides={"env": {"num_actions": 12}})
    assert cfg.env.num_actions == 12
    assert cfg.model.hidden_dim == 64
    assert params.run_config(None, None).env.task == "pattern_echo"
    assert params.run_config(None, "conditional").env.task == "conditional"
    assert params.run_config().experiment == "adhoc"


def test_types_after_parsing(params):
    cfg = params.run_config("mvp", "pattern_echo")
    assert type(cfg.algorithm.lr) is float
    assert type(cfg.model.hidden_dim) is int
    assert type(cfg.model.world_model) is bool
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.hidden_dim = 3  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# Bad input -> ConfigError naming the dotted key and what is allowed
# --------------------------------------------------------------------------------------------


def _set(path: str, value):
    def mutate(r):
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node[p]
        node[last] = value

    return mutate


def _delete(path: str):
    def mutate(r):
        *parents, last = path.split(".")
        node = r
        for p in parents:
            node = node[p]
        del node[last]

    return mutate


BAD_PARAMS = {
    # id: (mutation, [substrings the message must contain])
    "wrong-type-int": (_set("defaults.model.hidden_dim", "big"), ["defaults.model.hidden_dim", "integer", "'big'"]),
    "wrong-type-float": (_set("defaults.algorithm.lr", "fast"), ["defaults.algorithm.lr", "number", "'fast'"]),
    "wrong-type-bool": (_set("defaults.model.world_model", "yes"), ["defaults.model.world_model", "true or false"]),
    "float-for-int": (_set("defaults.model.num_layers", 2.5), ["defaults.model.num_layers", "integer"]),
    "bool-for-int": (_set("defaults.env.num_actions", True), ["defaults.env.num_actions", "integer", "True"]),
    "bool-for-float": (_set("defaults.algorithm.gamma", False), ["defaults.algorithm.gamma", "number"]),
    "unknown-key": (
        _set("defaults.model.hiden_dim", 64),
        ["model.hiden_dim", "defaults.model.hiden_dim", "unknown key", "hidden_dim", "num_layers"],
    ),
    "unknown-section": (_set("defaults.optimiser", {}), ["defaults.optimiser", "unknown key", "algorithm"]),
    "unknown-top-level": (_set("sweeps", {}), ["sweeps", "unknown top-level key", "experiments"]),
    "unknown-task-in-experiment": (
        _set("experiments.mvp.tasks", ["pattern_echo", "tower_of_hanoi"]),
        ["experiments.mvp.tasks", "'tower_of_hanoi'", *TASK_NAMES],
    ),
    "empty-task-list": (_set("experiments.mvp.tasks", []), ["experiments.mvp.tasks", "non-empty"]),
    "unknown-default-task": (_set("defaults.env.task", "chess"), ["defaults.env.task", "'chess'", "pattern_echo"]),
    "unknown-algorithm": (_set("defaults.algorithm.name", "a2c"), ["defaults.algorithm.name", "'a2c'", "reinforce", "ppo"]),
    "unknown-parent": (_set("defaults.parent.name", "oracle"), ["defaults.parent.name", "'oracle'", "deterministic", "llm"]),
    "num-actions-too-small": (_set("defaults.env.num_actions", 4), ["defaults.env.num_actions", "4", "out of range", ">= 8", "256"]),
    "num-actions-too-large": (_set("defaults.env.num_actions", 1000), ["defaults.env.num_actions", "1000", "out of range", "256"]),
    "lr-zero": (_set("defaults.algorithm.lr", 0), ["defaults.algorithm.lr", "out of range", "> 0"]),
    "lr-negative": (_set("defaults.algorithm.lr", -0.1), ["defaults.algorithm.lr", "out of range", "> 0"]),
    "level-too-high": (_set("defaults.env.level", 3), ["defaults.env.level", "out of range", "2"]),
    "gamma-above-one": (_set("defaults.algorithm.gamma", 1.5), ["defaults.algorithm.gamma", "out of range", "1.0"]),
    "missing-key": (_delete("defaults.model.ff_dim"), ["defaults.model.ff_dim", "missing key", "hidden_dim"]),
    "missing-section": (_delete("defaults.rewards"), ["defaults.rewards", "missing key"]),
    "missing-sanity-key": (_delete("sanity.episodes"), ["sanity.episodes", "missing key"]),
    "section-not-mapping": (_set("defaults.model", 5), ["defaults.model", "mapping"]),
    "num-heads-not-dividing": (_set("defaults.model.num_heads", 3), ["model.num_heads", "3", "hidden_dim=64", "divide"]),
    "experiment-override-out-of-range": (
        _set("experiments.mvp.overrides.env", {"num_actions": 4}),
        ["env.num_actions", "out of range", ">= 8"],
    ),
    "experiment-override-unknown-key": (
        _set("experiments.mvp.overrides.model", {"hiden_dim": 64}),
        ["model.hiden_dim", "unknown key", "hidden_dim"],
    ),
    "experiment-override-sets-task": (
        _set("experiments.mvp.overrides.env", {"task": "conditional"}),
        ["experiments.mvp.overrides.env.task", "experiments.mvp.tasks"],
    ),
    "experiment-unknown-key": (_set("experiments.mvp.task", "x"), ["experiments.mvp.task", "unknown key", "tasks"]),
    "override-scalar-as-mapping": (
        _set("experiments.mvp.overrides.env", {"num_actions": {"x": 1}}),
        ["experiments.mvp.overrides.env.num_actions", "scalar"],
    ),
    "duplicate-seeds": (_set("seeds", [0, 1, 1]), ["seeds", "duplicates"]),
    "empty-seeds": (_set("seeds", []), ["seeds", "non-empty"]),
    "negative-seed": (_set("seeds", [0, -1]), ["seeds[1]", "out of range"]),
    "experiment-seeds-not-a-list": (_set("experiments.mvp.seeds", 3), ["experiments.mvp.seeds", "non-empty list", "3"]),
    "experiment-seeds-empty": (_set("experiments.mvp.seeds", []), ["experiments.mvp.seeds", "non-empty list"]),
    "experiment-seeds-duplicates": (_set("experiments.ppo.seeds", [4, 4]), ["experiments.ppo.seeds", "duplicates"]),
    "experiment-seed-negative": (_set("experiments.mvp.seeds", [0, -1]), ["experiments.mvp.seeds[1]", "out of range"]),
    "experiment-seed-not-an-integer": (
        _set("experiments.rl_only.seeds", [0, "one"]), ["experiments.rl_only.seeds[1]", "integer", "'one'"]),
    "sweep-seeds-bad": (
        _set("experiments.quality_mvp.seeds", [1.5]), ["experiments.quality_mvp-fpr0.1-fnr0.1.seeds[0]", "integer"]),
    "task-override-unknown-task": (
        _set("experiments.ppo.task_overrides.chess", {"training": {"max_steps": 1000}}),
        ["experiments.ppo.task_overrides.chess", "not a task", "pattern_echo"]),
    "task-override-sets-task": (
        _set("experiments.ppo.task_overrides.conditional", {"env": {"task": "pattern_echo"}}),
        ["experiments.ppo.task_overrides.conditional.env.task", "the key itself"]),
    "task-override-not-a-mapping": (
        _set("experiments.ppo.task_overrides", [1]), ["experiments.ppo.task_overrides", "mapping of task"]),
    "task-override-bad-value": (
        _set("experiments.ppo.task_overrides.conditional", {"training": {"max_steps": "long"}}),
        ["experiments.ppo.task_overrides.conditional.training.max_steps", "integer", "'long'"]),
    "task-override-inherited-bad-value": (
        _set("experiments.rl_only.task_overrides", {"pattern_echo": {"model": {"hiden_dim": 3}}}),
        ["experiments.rl_only.task_overrides.pattern_echo.model.hiden_dim", "unknown key"]),
    "mvp-criteria-unknown-experiment": (
        _set("mvp_criteria.experiment", "nope"),
        ["mvp_criteria.experiment", "'nope'", "mvp"],
    ),
    "sanity-tolerance-zero": (_set("sanity.random_tolerance", 0.0), ["sanity.random_tolerance", "out of range"]),
    "extends-unknown": (_set("experiments.rl_only.extends", "nope"), ["experiments.rl_only.extends", "'nope'", "ppo"]),
    "extends-cycle": (_set("experiments.ppo.extends", "rl_only"), ["extends", "cycle", "ppo -> rl_only -> ppo"]),
    "extends-bad-override": (
        _set("experiments.rl_only.overrides.model", {"world_model": "no"}),
        ["experiments.rl_only.overrides.model.world_model", "true or false"],
    ),
    "fpr-above-one": (_set("defaults.parent.false_positive_rate", 1.5), ["defaults.parent.false_positive_rate", "out of range"]),
    "lr-nan": (_set("defaults.algorithm.lr", float("nan")), ["defaults.algorithm.lr", "not a finite number"]),
    "llm-on-invalid-unknown": (
        _set("defaults.parent.llm.on_invalid", "retry"), ["defaults.parent.llm.on_invalid", "'retry'", "deterministic"]),
    "llm-missing-key": (_delete("defaults.parent.llm.base_url"), ["defaults.parent.llm.base_url", "missing key"]),
    "evaluation-unknown-method": (_set("evaluation.method", "nope"), ["evaluation.method", "'nope'", "ppo"]),
    "evaluation-unknown-baseline": (_set("evaluation.baselines", ["random", "nope"]), ["evaluation.baselines[1]", "'nope'"]),
    "evaluation-baselines-not-a-list": (_set("evaluation.baselines", "random"), ["evaluation.baselines", "list of strings"]),
    "evaluation-too-few-reps": (_set("evaluation.bootstrap_reps", 10), ["evaluation.bootstrap_reps", "out of range", ">= 100"]),
    "embedding-target-without-world-model": (
        _set("experiments.rl_only.overrides.model", {"world_model": False, "world_model_target": "embedding"}),
        ["model.world_model_target", "'embedding' needs model.world_model true"]),
    "unknown-world-model-target": (
        _set("defaults.model.world_model_target", "latent"), ["defaults.model.world_model_target", "'latent'", "raw"]),
    "target-ema-zero": (_set("defaults.model.target_ema", 0.0), ["defaults.model.target_ema", "out of range", "> 0"]),
    "world-model-variant-unknown": (
        _set("evaluation.world_model", {"ppo": "rl_only", "nope": "rl_only"}),
        ["evaluation.world_model", "'nope'", "neither a sweep"]),
    "world-model-reference-unknown": (
        _set("evaluation.world_model", {"ppo": "nope"}), ["evaluation.world_model.ppo", "'nope'", "not an experiment"]),
    "world-model-reference-has-one": (
        _set("evaluation.world_model", {"ppo": "kl_distill"}), ["evaluation.world_model.ppo", "'kl_distill'", "world_model: false"]),
    "world-model-without-the-method": (
        _set("evaluation.world_model", {"kl_distill": "rl_only"}), ["evaluation.world_model", "'ppo'", "ablation"]),
    "world-model-not-a-mapping": (
        _set("evaluation.world_model", ["ppo"]), ["evaluation.world_model", "mapping of names to names"]),
    "representation-without-the-ablation": (
        _set("evaluation.representation", ["ppo"]), ["evaluation.representation", "'rl_only'", "evaluation.world_model.ppo"]),
    "curriculum-reference-unknown": (
        _set("evaluation.curriculum_reference", "nope"), ["evaluation.curriculum_reference", "'nope'"]),
    "tuning-unknown-experiment": (
        _set("tuning", {"nope": {"seeds": 3, "grid": {"algorithm.lr": [0.001]}}}), ["tuning.nope", "not an experiment"]),
    "tuning-too-many-seeds": (
        _set("tuning.rl_only.seeds", 11), ["tuning.rl_only.seeds", "out of range", "<= 10"]),
    "tuning-bad-grid-key": (
        _set("tuning.rl_only.grid", {"algorithm.lr_typo": [0.001]}), ["tuning.rl_only.grid", "lr_typo"]),
    "tuning-bad-grid-value": (
        _set("tuning.rl_only.grid", {"algorithm.epochs": [4, "many"]}), ["tuning.rl_only.grid", "algorithm.epochs", "'many'"]),
    "tuning-missing-grid": (_set("tuning.rl_only", {"seeds": 3}), ["tuning.rl_only", "seeds and grid"]),
    "llm-audit-unknown-experiment": (_set("llm_audit.experiment", "nope"), ["llm_audit.experiment", "'nope'"]),
}


@pytest.mark.parametrize("mutate,expected", BAD_PARAMS.values(), ids=BAD_PARAMS.keys())
def test_bad_params_raise_config_error(raw, mutate, expected):
    mutate(raw)
    message = config_error(raw)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_extends_shares_every_setting_of_its_base_in_any_file_order(raw):
    raw["experiments"] = dict(reversed(list(raw["experiments"].items())))  # bases now come last
    params = parse_params(raw)
    plain = [n for n, body in raw["experiments"].items() if "sweep" not in body]
    assert [n for n, e in params.experiments.items() if e.sweep is None] == plain  # the file's order is kept
    kl, ppo = params.run_config("kl_distill", "conditional"), params.run_config("ppo", "conditional")
    assert kl.env == ppo.env and kl.model == ppo.model and kl.training == ppo.training
    assert dataclasses.replace(kl.algorithm, distill_coef=ppo.algorithm.distill_coef) == ppo.algorithm
    assert (kl.algorithm.distill_coef, ppo.algorithm.distill_coef) == (1.0, 0.0)
    assert params.experiments["kl_distill"].tasks == params.experiments["ppo"].tasks
    assert params.experiments["kl_distill"].extends == "ppo"
    # two levels down: the curriculum extends ppo_matched, which extends ppo
    assert params.run_config("curriculum", "conditional").model == ppo.model


def test_experiment_seeds_override_the_top_level_and_are_inherited(raw):
    raw["seeds"] = [20, 21, 22]
    plain = parse_params(raw)
    raw["experiments"]["mvp"]["seeds"] = [30, 31]
    raw["experiments"]["corrected_mvp"]["seeds"] = [33]  # extends mvp, with its own
    params = parse_params(raw)
    assert params.seeds == (20, 21, 22)
    assert params.seeds_of("ppo") == (20, 21, 22) and params.experiments["ppo"].seeds is None
    assert params.seeds_of("mvp") == (30, 31)
    assert params.seeds_of("llm_mvp") == params.seeds_of("llm_solve") == (30, 31)  # through extends
    assert params.seeds_of("curriculum") == (10, 11, 12, 13, 14)  # its own, from params.yaml
    assert params.sweeps["corrected_mvp"]  # a sweep extending mvp, with its own seeds: its points run them
    assert all(params.seeds_of(point) == (33,) for point in params.sweeps["corrected_mvp"])
    # the seeds change no run's configuration
    assert params.run_config("llm_mvp", "pattern_echo", 30) == plain.run_config("llm_mvp", "pattern_echo", 30)
    with pytest.raises(ConfigError, match="unknown experiment 'nope'"):
        params.seeds_of("nope")


def test_a_sweeps_seeds_reach_its_points(raw):
    raw["experiments"]["quality_t1"]["seeds"] = [17, 18]
    params = parse_params(raw)
    points = params.sweeps["quality_t1"]
    assert points and all(params.seeds_of(p) == (17, 18) for p in points)
    assert params.seeds_of("t1_tasks") == (10, 11, 12, 13, 14)  # the base keeps its own list


@pytest.mark.parametrize("where", ["seeds", "experiments.curriculum.seeds", "experiments.quality_mvp.seeds"])
def test_no_experiment_runs_a_tuning_seed(raw, params, where):
    """A seed that chose a setting is never reported: params.yaml refuses an experiment that runs one,
    naming the experiment and the seed (a sweep's points inherit the check); the committed file runs
    none of its ten tuning seeds."""
    _set(where, [3, 10])(raw)
    message = config_error(raw)
    assert "are tuning_seeds" in message and "[3]" in message and "experiments." in message
    reported = {seed for name in params.experiments for seed in params.seeds_of(name)}
    assert params.tuning_seeds == tuple(range(10)) and reported.isdisjoint(params.tuning_seeds)


def test_bad_experiment_override_names_the_experiment(raw):
    raw["experiments"]["mvp"]["overrides"]["env"] = {"num_actions": 4}
    assert "experiments.mvp" in config_error(raw)


def test_the_config_knows_the_task_names_without_torch():
    """The registry's names load without the tasks, so the configuration and the CLI start without torch."""
    code = ("import json, sys; from wmil.config import TASK_NAMES, json_schema; json_schema(); "
            "print(json.dumps({'tasks': list(TASK_NAMES), 'torch imported': 'torch' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"tasks": list(TASKS), "torch imported": False}


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("top", ["not a mapping", [1, 2], None, 3])
def test_top_level_not_a_mapping(top):
    with pytest.raises(ConfigError, match="mapping at the top level"):
        parse_params(top)


def test_valid_mutation_is_accepted(raw):
    # the error tests above would be meaningless if any mutation failed
    raw["defaults"]["model"]["hidden_dim"] = 128
    raw["defaults"]["algorithm"]["lr"] = 1  # an int is accepted for a float field
    params = parse_params(raw)
    cfg = params.run_config()
    assert cfg.model.hidden_dim == 128
    assert cfg.algorithm.lr == 1.0 and type(cfg.algorithm.lr) is float


def test_unknown_experiment_in_run_config(params):
    with pytest.raises(ConfigError) as info:
        params.run_config("nope", "pattern_echo")
    assert "'nope'" in str(info.value) and "mvp" in str(info.value)


def test_task_not_in_experiment(params):
    with pytest.raises(ConfigError) as info:
        params.run_config("mvp", "conditional")
    message = str(info.value)
    assert "'conditional'" in message and "'mvp'" in message and "pattern_echo" in message


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"model": {"hidden_dim": "big"}}, ["model.hidden_dim", "integer"]),
        ({"model": {"hiden_dim": 64}}, ["model.hiden_dim", "unknown key", "hidden_dim"]),
        ({"algorithm": {"lr": 0}}, ["algorithm.lr", "out of range"]),
        ({"algorithm": {"name": "a2c"}}, ["algorithm.name", "reinforce", "ppo"]),
        ({"algorithm": {"name": "ppo", "minibatches": 9}, "env": {"num_envs": 4, "episode_length": 2}},
         ["algorithm.minibatches", "9", "8 samples"]),
        ({"curriculum": {"mastery_threshold": 0}}, ["curriculum.mastery_threshold", "out of range"]),
        ({"model": {"num_heads": 5}}, ["model.num_heads", "divide"]),
    ],
)
def test_bad_run_config_overrides(params, overrides, expected):
    with pytest.raises(ConfigError) as info:
        params.run_config("mvp", "pattern_echo", overrides=overrides)
    for part in expected:
        assert part in str(info.value)


def test_missing_params_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)


@pytest.mark.parametrize("text", ["seeds: [0, 1\n", "defaults: {env: [}\n", "a:\n\t- b\n", "key: 'unterminated\n"])
def test_invalid_yaml(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert str(path) in str(info.value) and "not valid YAML" in str(info.value)


def test_load_params_accepts_a_copy(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS_PATH.read_text())
    assert load_params(path).run_config("mvp", "pattern_echo") == load_params(PARAMS_PATH).run_config(
        "mvp", "pattern_echo"
    )


def test_load_params_reports_errors_with_the_file(tmp_path):
    data = yaml.safe_load(PARAMS_PATH.read_text())
    data["defaults"]["env"]["num_actions"] = 4
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=re.escape("defaults.env.num_actions")):
        load_params(path)


# --------------------------------------------------------------------------------------------
# --set overrides
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "assignment,expected",
    [
        ("model.hidden_dim=128", {"model": {"hidden_dim": 128}}),
        ("algorithm.lr=0.001", {"algorithm": {"lr": 0.001}}),
        ("model.world_model=false", {"model": {"world_model": False}}),
        ("env.task=conditional", {"env": {"task": "conditional"}}),
        (" training.max_steps =500", {"training": {"max_steps": 500}}),
        ("parent.name=a=b", {"parent": {"name": "a=b"}}),
    ],
)
def test_parse_override(assignment, expected):
    assert parse_override(assignment) == expected


def test_parse_override_types_are_yaml():
    value = parse_override("model.hidden_dim=128")["model"]["hidden_dim"]
    assert type(value) is int
    assert type(parse_override("algorithm.lr=0.5")["algorithm"]["lr"]) is float


def test_parse_override_scientific_notation(params):
    overrides = parse_override("algorithm.lr=1e-3")
    assert params.run_config("mvp", "pattern_echo", overrides=overrides).algorithm.lr == 0.001


@pytest.mark.parametrize(
    "assignment,expected",
    [
        ("model.hidden_dim", "KEY=VALUE"),
        ("", "KEY=VALUE"),
        ("hidden_dim=128", "SECTION.KEY"),
        ("=128", "SECTION.KEY"),
        ("optimizer.lr=0.1", "SECTION.KEY"),
        ("Model.hidden_dim=1", "SECTION.KEY"),
    ],
)
def test_parse_override_bad_forms(assignment, expected):
    with pytest.raises(ConfigError) as info:
        parse_override(assignment)
    assert expected in str(info.value)


def test_parse_override_reaches_nested_keys(params):
    assert parse_override("parent.llm.base_url=http://127.0.0.1:9/v1") == {
        "parent": {"llm": {"base_url": "http://127.0.0.1:9/v1"}}}
    config = params.run_config("llm_solve", "pattern_echo", 0, parse_override("parent.llm.protocol=verdict"))
    assert config.parent.llm.protocol == "verdict"
    with pytest.raises(ConfigError, match="override.model.hidden_dim: expected a scalar"):
        params.run_config("mvp", "pattern_echo", 0, parse_override("model.hidden_dim.x=1"))


def test_parse_override_sections_listed():
    with pytest.raises(ConfigError) as info:
        parse_override("optimizer.lr=0.1")
    for section in SECTIONS:
        assert section in str(info.value)


def test_override_values_are_validated(params):
    with pytest.raises(ConfigError, match=r"model\.hidden_dim: expected an integer"):
        params.run_config("mvp", "pattern_echo", overrides=parse_override("model.hidden_dim=big"))
    cfg = params.run_config("mvp", "pattern_echo", overrides=parse_override("model.hidden_dim=128"))
    assert cfg.model.hidden_dim == 128


# --------------------------------------------------------------------------------------------
# fingerprint
# --------------------------------------------------------------------------------------------


def _leaf_paths(cls=RunConfig, prefix=()):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _leaf_paths(hints[f.name], prefix + (f.name,))
        elif prefix + (f.name,) != ("experiment",):
            yield prefix + (f.name,)


LEAF_PATHS = list(_leaf_paths())
#: One run of each kind the pipeline trains: every algorithm, the curriculum, the embedding target,
#: the LLM parent; each key of a run is read by at least one of them.
KINDS = ("mvp", "ppo", "random", "curriculum", "raw_then_embedding", "llm", "llm_solve", "llm_verdict", "llm_score")


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.0625 if value <= 0.5 else value / 2
    if isinstance(value, str):
        return value + "_other"
    raise AssertionError(f"unexpected leaf type {type(value)}")


def _replace(cfg, path, value):
    if len(path) == 1:
        return dataclasses.replace(cfg, **{path[0]: value})
    return dataclasses.replace(cfg, **{path[0]: _replace(getattr(cfg, path[0]), path[1:], value)})


def _get(cfg, path):
    for p in path:
        cfg = getattr(cfg, p)
    return cfg


def _kind(params, experiment):
    if experiment == "llm_score":  # no experiment uses the score protocol; its runs read the calibration
        return params.run_config("llm_verdict", "pattern_echo", 0, {"parent": {"llm": {"protocol": "score"}}})
    return params.run_config(experiment, params.experiments[experiment].tasks[0])


def test_read_when_lists_exactly_the_keys_of_a_run():
    from wmil.config import READ_WHEN

    assert set(READ_WHEN) == {".".join(p) for p in LEAF_PATHS} | {"experiment"}
    assert {p[0] for p in LEAF_PATHS} == set(SECTIONS) | {"seed"} and len(LEAF_PATHS) >= 25


@pytest.mark.parametrize("path", LEAF_PATHS, ids=[".".join(p) for p in LEAF_PATHS])
def test_a_key_changes_a_runs_identity_exactly_where_the_run_reads_it(params, path):
    """config_hash (Snakemake's rerun trigger) changes with a key iff READ_WHEN says the run reads
    it; the fingerprint (checkpoint compatibility) likewise, but for the budget of a constant schedule."""
    from wmil.config import LLM_OPERATIONAL, READ_WHEN

    key = ".".join(path)
    read_somewhere = False
    for experiment in KINDS:
        base = _kind(params, experiment)
        changed = _replace(base, path, _changed(_get(base, path)))
        reads = READ_WHEN[key](base)
        read_somewhere |= reads
        assert (changed.config_hash() != base.config_hash()) == reads, experiment
        budget_only = key == "training.max_steps" and base.algorithm.name == "random" or (
            key == "training.max_steps" and base.algorithm.lr_schedule == base.algorithm.entropy_schedule == "constant")
        assert (changed.fingerprint() != base.fingerprint()) == (reads and not budget_only), experiment
    never = key == "training.save_every" or (path[:2] == ("parent", "llm") and path[-1] in LLM_OPERATIONAL)
    assert read_somewhere != never, f"{key}: read by none of {KINDS}" if not never else key


def test_a_ppo_only_key_changes_no_reinforce_or_random_run(raw):
    """The issue's case: defaults.algorithm.clip_eps reruns the PPO family and nothing else."""
    base = parse_params(copy.deepcopy(raw))
    raw["defaults"]["algorithm"]["clip_eps"] = 0.3
    changed = parse_params(raw)
    for experiment, spec in base.experiments.items():
        for task in spec.tasks:
            a, b = base.run_config(experiment, task), changed.run_config(experiment, task)
            assert (a.config_hash() != b.config_hash()) == (a.algorithm.name == "ppo"), (experiment, task)


def test_fingerprint_equal_for_equal_configs(params, raw):
    a = params.run_config("mvp", "pattern_echo", seed=3)
    b = params.run_config("mvp", "pattern_echo", seed=3)
    c = parse_params(raw).run_config("mvp", "pattern_echo", seed=3)
    fp = a.fingerprint()
    assert isinstance(fp, str) and re.fullmatch(r"[0-9a-f]{16}", fp)
    assert fp == b.fingerprint() == c.fingerprint()


@pytest.mark.parametrize("experiment", ["mvp", "ppo", "random"])
def test_keys_a_run_does_not_read_do_not_change_what_it_computes(params, experiment, tmp_path):
    """READ_WHEN is true to the code: every key a run is said not to read, changed at once, leaves
    its curve, metrics and weights byte-identical (a short run of each algorithm)."""
    from conftest import assert_same_run

    from wmil.config import READ_WHEN
    from wmil.training.trainer import Trainer

    base = params.run_config(experiment, "pattern_echo", overrides={
        "training": {"max_steps": 512, "log_every": 128, "save_every": 256}, "env": {"num_envs": 32}})
    unread = [p for p in LEAF_PATHS if not READ_WHEN[".".join(p)](base)]
    assert len(unread) >= 8
    changed = base
    for path in unread:
        changed = _replace(changed, path, _changed(_get(changed, path)))
    assert changed.config_hash() == base.config_hash() and changed.to_dict() != base.to_dict()
    for config, folder in ((base, "base"), (changed, "changed")):
        Trainer(config, tmp_path / folder).train(progress=False)
    assert_same_run(tmp_path / "base", tmp_path / "changed", ignore={"experiment"}, same_config=False)


@pytest.mark.parametrize(
    "overrides",
    [
        {"model": {"hidden_dim": 128}},
        {"algorithm": {"lr": 0.001}},
        {"env": {"level": 1}},
        {"model": {"world_model": False}},
        {"env": {"num_envs": 10}},
        {"rewards": {"pred_scale": 0.2}},
    ],
)
def test_fingerprint_changes_with_validated_overrides(params, overrides):
    base = params.run_config("mvp", "pattern_echo")
    assert params.run_config("mvp", "pattern_echo", overrides=overrides).fingerprint() != base.fingerprint()


@pytest.mark.parametrize("path", [("training", "max_steps"), ("training", "save_every")], ids=str)
def test_fingerprint_ignores_run_length_and_checkpoint_frequency(params, path):
    base = params.run_config("mvp", "pattern_echo")
    changed = _replace(base, path, _get(base, path) * 2)
    assert changed.fingerprint() == base.fingerprint()


def test_fingerprint_changes_with_seed_and_task(params):
    fps = {
        params.run_config(None, task, seed=seed).fingerprint()
        for task in TASK_NAMES
        for seed in (0, 1)
    }
    assert len(fps) == 2 * len(TASK_NAMES)


def test_fingerprint_independent_of_experiment_name(params):
    mvp = params.run_config("mvp", "pattern_echo", seed=2)
    adhoc = params.run_config(None, "pattern_echo", seed=2, overrides={"env": {"num_actions": 8}})
    assert mvp.experiment == "mvp" and adhoc.experiment == "adhoc"
    assert mvp.to_dict() != adhoc.to_dict()
    assert mvp.fingerprint() == adhoc.fingerprint()
    assert dataclasses.replace(mvp, experiment="renamed").fingerprint() == mvp.fingerprint()


# --------------------------------------------------------------------------------------------
# JSON schema
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator():
    import jsonschema
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_validates_params_yaml(validator, raw):
    errors = list(validator.iter_errors(raw))
    assert errors == []


@pytest.mark.parametrize(
    "mutate",
    [
        _set("defaults.model.hiden_dim", 64),
        _set("extra_top_level", 1),
        _set("experiments.mvp.overrides.model", {"hiden_dim": 64}),
        _set("experiments.mvp.unknown", 1),
        _set("sanity.unknown", 1),
    ],
    ids=["defaults", "top-level", "experiment-override", "experiment", "sanity"],
)
def test_schema_rejects_unknown_keys(validator, raw, mutate):
    mutate(raw)
    assert not validator.is_valid(raw)
    assert any("Additional properties" in e.message for e in validator.iter_errors(raw))


# Mutations the parser rejects that a JSON schema can express too.
SCHEMA_EXPRESSIBLE = [
    "wrong-type-int", "wrong-type-float", "wrong-type-bool", "float-for-int", "bool-for-int",
    "bool-for-float", "unknown-key", "unknown-section", "unknown-top-level",
    "unknown-task-in-experiment", "empty-task-list", "unknown-default-task", "unknown-algorithm",
    "unknown-parent", "num-actions-too-small", "num-actions-too-large", "lr-zero", "lr-negative",
    "level-too-high", "gamma-above-one", "missing-key", "missing-section", "missing-sanity-key",
    "section-not-mapping", "experiment-override-out-of-range", "experiment-override-unknown-key",
    "experiment-unknown-key", "empty-seeds", "negative-seed", "experiment-seeds-not-a-list",
    "experiment-seeds-empty", "experiment-seeds-duplicates", "experiment-seed-negative",
    "experiment-seed-not-an-integer", "sweep-seeds-bad", "sanity-tolerance-zero",
    "fpr-above-one", "llm-on-invalid-unknown", "llm-missing-key", "evaluation-baselines-not-a-list",
    "evaluation-too-few-reps",
]


@pytest.mark.parametrize("case", SCHEMA_EXPRESSIBLE)
def test_schema_rejects_what_the_parser_rejects(validator, raw, case):
    mutate, _ = BAD_PARAMS[case]
    mutate(raw)
    assert not validator.is_valid(raw)


def _cli_schema_text(capsys) -> str:
    from wmil.cli import main

    assert main(["schema"]) == 0
    return capsys.readouterr().out


def test_cli_schema_is_json_schema(capsys):
    text = _cli_schema_text(capsys)
    assert text.startswith("# Generated by `wmil schema`")
    assert yaml.safe_load(text) == json_schema()


def test_cli_schema_out_file(tmp_path, capsys):
    from wmil.cli import main

    out = tmp_path / "sub" / "params.schema.yaml"
    assert main(["schema", "--out", str(out)]) == 0
    assert out.read_text() == _cli_schema_text(capsys)


def test_committed_schema_is_up_to_date():
    check_schema_file(SCHEMA_FILE)


def test_a_stale_schema_names_the_command_that_rewrites_it(tmp_path, capsys):
    """A schema written before a task was added: the error names the file and the command, and that
    command makes it current."""
    from wmil.cli import main

    stale = tmp_path / "params.schema.yaml"
    schema = json_schema()
    schema["properties"]["experiments"]["additionalProperties"]["properties"]["tasks"]["items"]["enum"].pop()
    stale.write_text(yaml.safe_dump(schema))
    with pytest.raises(ConfigError) as info:
        check_schema_file(stale)
    command = f"wmil schema --out {stale}"
    assert str(stale) in str(info.value) and f"`{command}`" in str(info.value), str(info.value)
    assert main(command.split()[1:]) == 0
    check_schema_file(stale)


def test_task_overrides_set_one_tasks_runs_and_are_inherited_through_extends():
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["experiments"]["ppo"]["task_overrides"] = {"conditional": {"training": {"max_steps": 4096}},
                                                   "sequence_next": {"algorithm": {"lr": 0.002}}}
    raw["experiments"]["rl_only"]["task_overrides"] = {"conditional": {"algorithm": {"lr": 0.003}}}
    params = parse_params(raw)
    ppo = {t: params.run_config("ppo", t) for t in params.experiments["ppo"].tasks}
    assert ppo["conditional"].training.max_steps == 4096 and ppo["pattern_echo"].training.max_steps == 32768
    assert ppo["sequence_next"].algorithm.lr == 0.002 and ppo["conditional"].algorithm.lr == 0.001
    rl_only = params.run_config("rl_only", "conditional")  # ppo's budget for the task, its own lr on top
    assert (rl_only.training.max_steps, rl_only.algorithm.lr) == (4096, 0.003)
    assert params.run_config("ppo", "conditional", overrides={"training": {"max_steps": 100}}).training.max_steps == 100
    assert params.run_config("ppo", "conditional").config_hash() != params.run_config("ppo", "pattern_echo").config_hash()
