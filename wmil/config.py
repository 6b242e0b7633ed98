"""Typed configuration for ``params.yaml``.

``params.yaml`` holds shared ``defaults``, the list of ``seeds`` and named ``experiments``; an
experiment is a list of tasks plus ``overrides`` merged onto the defaults, and may run its own
``seeds`` (:meth:`Params.seeds_of`). ``tuning_seeds`` are the seeds that chose any setting: no
experiment may run one, so no reported number comes from a seed that tuned. Everything is validated
here: a wrong type, an unknown key or an out-of-range value raises :class:`ConfigError` naming the
dotted key and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from wmil.errors import ConfigError
from wmil.tasks.registry import TASKS

#: The task names, a live view of the registry :data:`wmil.tasks.TASKS` (in its order).
TASK_NAMES = TASKS.keys()
DEFAULT_PARAMS = Path("params.yaml")


class _Loader(yaml.SafeLoader):
    """YAML with 1.2 floats: PyYAML alone reads ``1e-3`` (no dot) as a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|[-+]\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def read_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


SEED_RANGE = _range(0, 2**31 - 1)


def _one_of(choices: typing.Collection[str]) -> dict:
    """Metadata of a ``str`` field whose allowed values are known only at run time (a registry):
    ``choices`` is read at each validation, so it may be a live view such as ``dict.keys()``."""
    return {"choices": choices}


def _choices(tp: Any, meta: typing.Mapping[str, Any]) -> tuple | None:
    """The allowed values of a field: its ``Literal[...]`` or its :func:`_one_of`; None: any value of its type."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if "choices" in meta:
        return tuple(meta["choices"])
    return None


@dataclass(frozen=True)
class EnvConfig:
    task: str = field(metadata=_one_of(TASK_NAMES))
    num_actions: int = field(metadata=_range(8, 256))
    episode_length: int = field(metadata=_range(1, 64))
    level: int = field(metadata=_range(0, 2))
    num_envs: int = field(metadata=_range(1, 1 << 20))
    # after each answer: the task's next problem (rules; SequenceNext's shows the correct term), or a
    # fresh problem of the level (fresh), so that the next state reveals no answer
    next_problem: Literal["rules", "fresh"]


@dataclass(frozen=True)
class LLMConfig:
    """An OpenAI-compatible endpoint that plays the parent (``parent.name: llm``)."""

    base_url: str          # "" = start a bundled local llama.cpp server for the run
    model: str             # the model name sent to the endpoint; without base_url, a bundled model
                           # (wmil/parents/llm/models.py)
    api_key_env: str       # name of the environment variable holding the key ("" = none needed)
    roles: Literal["reward", "reward+transition", "all"]  # calls answered by the LLM; the rest by the rules
    # how the LLM judges an action: per state (wmil/parents/llm/protocols.py), or program: it writes
    # the rule once as code that the parent applies (wmil/parents/llm/programs.py)
    protocol: Literal["verdict", "solve", "score", "program"]
    calibration: Literal["none", "contextual", "batch"]  # the score protocol's correction of its yes-bias
    temperature: float = field(metadata=_range(0.0, 2.0))
    max_tokens: int = field(metadata=_range(1, 4096))
    concurrency: int = field(metadata=_range(1, 256))      # requests in flight at once
    timeout_s: float = field(metadata=_range(0.0, 600.0, lo_open=True))  # per request
    max_retries: int = field(metadata=_range(0, 20))       # per request, exponential backoff
    on_invalid: Literal["error", "deterministic", "zero"]  # an answer still invalid after retries
    cache_path: str        # SQLite response cache ("" = no cache)


#: LLM settings that change how the endpoint is reached, never what it answers (temperature 0 and
#: the cache make answers a function of model, prompt and sampling).
LLM_OPERATIONAL = ("concurrency", "timeout_s", "cache_path")


@dataclass(frozen=True)
class ParentConfig:
    """The parent; a rule parent may err on purpose: a wrong answer is called right with
    probability ``false_positive_rate``, a right one wrong with ``false_negative_rate``. Its
    informativeness is J = 1 - FPR - FNR (TPR - FPR)."""

    name: Literal["deterministic", "llm"]
    false_positive_rate: float = field(metadata=_range(0.0, 1.0))
    false_negative_rate: float = field(metadata=_range(0.0, 1.0))
    llm: LLMConfig

    @property
    def informativeness(self) -> float:
        """J = TPR - FPR of the verdicts (1 for the rules; the LLM's is measured by its audit)."""
        return 1.0 - self.false_positive_rate - self.false_negative_rate


@dataclass(frozen=True)
class ModelConfig:
    hidden_dim: int = field(metadata=_range(8, 1024))
    num_layers: int = field(metadata=_range(1, 12))
    num_heads: int = field(metadata=_range(1, 16))
    ff_dim: int = field(metadata=_range(8, 8192))
    world_model: bool
    # dynamics: the next state from the state and the action; answer: the next state's problem
    # slots from the state alone (no action: a label of the parent's correction, no dynamics)
    world_model_head: Literal["dynamics", "answer"]
    world_model_detached: bool  # its input detached from the encoder: it learns, the policy's features do not
    # what the world model's loss predicts: the raw next state, or (from the switch on) the next
    # state's embedding under a slowly updated copy of the encoder and core (SPR/BYOL)
    world_model_target: Literal["raw", "embedding"]
    # the switch to the embedding target: at the first update at which both hold
    embedding_after_steps: int = field(metadata=_range(0, 10**10))  # env steps
    embedding_after_success: float = field(metadata=_range(0.0, 1.0))  # rolling full-task success
    target_ema: float = field(metadata=_range(0.0, 1.0, lo_open=True))  # target <- ema * target + (1 - ema) * online, per step


@dataclass(frozen=True)
class AlgorithmConfig:
    """Hyperparameters of both algorithms; each reads the ones it uses (see params.yaml)."""

    name: Literal["reinforce", "ppo", "random"]
    lr: float = field(metadata=_range(0.0, 1.0, lo_open=True))
    # linear: to 0 at training.max_steps; linear_from_top: constant until the top level, then linear to 0
    lr_schedule: Literal["constant", "linear", "linear_from_top"]
    entropy_coef: float = field(metadata=_range(0.0, 10.0))
    entropy_schedule: Literal["constant", "linear", "linear_from_top"]
    world_model_coef: float = field(metadata=_range(0.0, 100.0))
    gamma: float = field(metadata=_range(0.0, 1.0))
    max_grad_norm: float = field(metadata=_range(0.0, 1e6, lo_open=True))
    baseline_decay: float = field(metadata=_range(0.0, 0.999999))  # REINFORCE
    gae_lambda: float = field(metadata=_range(0.0, 1.0))  # PPO from here on
    clip_eps: float = field(metadata=_range(0.0, 1.0, lo_open=True))
    value_coef: float = field(metadata=_range(0.0, 100.0))
    epochs: int = field(metadata=_range(1, 100))
    minibatches: int = field(metadata=_range(1, 1024))
    normalize_advantages: bool
    distill_coef: float = field(metadata=_range(0.0, 100.0))  # KL(parent || policy) weight


@dataclass(frozen=True)
class RewardConfig:
    pred_scale: float = field(metadata=_range(0.0, 10.0))
    goal_weight: float = field(metadata=_range(0.0, 100.0))
    pred_weight: float = field(metadata=_range(0.0, 100.0))
    cons_weight: float = field(metadata=_range(0.0, 100.0))
    # the goal reward as the unbiased surrogate (r - FPR) / (1 - FPR - FNR) of a parent whose
    # error rates are known (Wang, Liu & Li, AAAI 2020)
    noise_correction: bool


@dataclass(frozen=True)
class CurriculumConfig:
    """Mastery curriculum: start at level 0, advance when the success rate over the last
    ``window`` episodes at the current level reaches ``mastery_threshold``. A ``replay`` share of
    each batch replays a uniformly chosen easier level, against forgetting."""

    enabled: bool
    mastery_threshold: float = field(metadata=_range(0.0, 1.0, lo_open=True))
    window: int = field(metadata=_range(1, 10**7))
    replay: float = field(metadata=_range(0.0, 1.0))  # share of episodes replayed at easier levels


@dataclass(frozen=True)
class TrainingConfig:
    max_steps: int = field(metadata=_range(1, 10**10))
    log_every: int = field(metadata=_range(1, 10**10))
    save_every: int = field(metadata=_range(1, 10**10))
    success_window: int = field(metadata=_range(1, 10**7))


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run depends on; its hash names a compatible checkpoint."""

    experiment: str
    seed: int = field(metadata=_range(0, 2**31 - 1))
    env: EnvConfig
    parent: ParentConfig
    model: ModelConfig
    algorithm: AlgorithmConfig
    rewards: RewardConfig
    curriculum: CurriculumConfig
    training: TrainingConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What the run computes from: every setting it reads (:data:`READ_WHEN`), by dotted key."""
        return {key: value for key, value in flatten(self.to_dict()).items() if READ_WHEN[key](self)}

    def config_hash(self) -> str:
        """Hash of :meth:`identity`: a change to what a run reads reruns it, and nothing else does."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Hash of everything that shapes the trajectory up to any step: :meth:`identity` less
        ``max_steps`` (a longer run extends a shorter one exactly, so it may resume from it; not so
        under a linear schedule)."""
        body = self.identity()
        annealed = any(str(body.get(f"algorithm.{key}_schedule", "constant")) != "constant" for key in ("lr", "entropy"))
        if not annealed:  # an annealed schedule runs to max_steps: there the budget shapes every step
            del body["training.max_steps"]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": leaf}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _always(config: RunConfig) -> bool:
    return True


def _never(config: RunConfig) -> bool:
    return False


def _learns(config: RunConfig) -> bool:
    """REINFORCE and PPO take gradient steps; the random policy reads none of their settings."""
    return config.algorithm.name != "random"


def _reinforce(config: RunConfig) -> bool:
    return config.algorithm.name == "reinforce"


def _ppo(config: RunConfig) -> bool:
    return config.algorithm.name == "ppo"


def _world_model(config: RunConfig) -> bool:
    return config.model.world_model


def _embedding_target(config: RunConfig) -> bool:
    """The EMA target copy exists (and is switched on and updated) only with this target."""
    return config.model.world_model_target == "embedding"


def _curriculum(config: RunConfig) -> bool:
    return config.curriculum.enabled


def _llm(config: RunConfig) -> bool:
    return config.parent.name == "llm"


def _llm_score(config: RunConfig) -> bool:
    """Only the score protocol calibrates a threshold."""
    return _llm(config) and config.parent.llm.protocol == "score"


def _llm_per_state(config: RunConfig) -> bool:
    """A program is asked with its own token budget (programs.PROGRAM_MAX_TOKENS)."""
    return _llm(config) and config.parent.llm.protocol != "program"


_LLM_READ_WHEN = {"calibration": _llm_score, "max_tokens": _llm_per_state}


#: Every setting of a run by dotted key, and when the run reads it: one source of truth that a new
#: key must join (a test checks that it lists exactly the keys of :class:`RunConfig`). What a run
#: does not read is no part of its identity, so changing it reruns nothing: a PPO-only key never
#: reruns a REINFORCE run. The experiment's name, how an LLM is reached (:data:`LLM_OPERATIONAL`)
#: and how often checkpoints are written never change what a run computes.
READ_WHEN: dict[str, typing.Callable[[RunConfig], bool]] = {
    "experiment": _never,
    "seed": _always,
    **{f"env.{f.name}": _always for f in dataclasses.fields(EnvConfig)},
    "parent.name": _always, "parent.false_positive_rate": _always, "parent.false_negative_rate": _always,
    **{f"parent.llm.{f.name}": _never if f.name in LLM_OPERATIONAL else _LLM_READ_WHEN.get(f.name, _llm)
       for f in dataclasses.fields(LLMConfig)},
    "model.hidden_dim": _always, "model.num_layers": _always, "model.num_heads": _always, "model.ff_dim": _always,
    "model.world_model": _always, "model.world_model_target": _always,
    "model.world_model_head": _world_model, "model.world_model_detached": _world_model,
    "model.embedding_after_steps": _embedding_target, "model.embedding_after_success": _embedding_target,
    "model.target_ema": _embedding_target,
    "algorithm.name": _always,
    # the trainer collects the parent's answer distribution when distill_coef > 0, whatever learns from it
    "algorithm.distill_coef": _always,
    **{f"algorithm.{key}": _learns for key in ("lr", "lr_schedule", "entropy_coef", "entropy_schedule",
                                                "world_model_coef", "gamma", "max_grad_norm")},
    "algorithm.baseline_decay": _reinforce,
    **{f"algorithm.{key}": _ppo for key in ("gae_lambda", "clip_eps", "value_coef", "epochs", "minibatches",
                                             "normalize_advantages")},
    **{f"rewards.{f.name}": _always for f in dataclasses.fields(RewardConfig)},
    "curriculum.enabled": _always,
    **{f"curriculum.{key}": _curriculum for key in ("mastery_threshold", "window", "replay")},
    "training.max_steps": _always, "training.log_every": _always, "training.success_window": _always,
    "training.save_every": _never,
}


SECTIONS = ("env", "parent", "model", "algorithm", "rewards", "curriculum", "training")


@dataclass(frozen=True)
class SanityConfig:
    episodes: int = field(metadata=_range(100, 10**8))
    random_tolerance: float = field(metadata=_range(0.0, 1.0, lo_open=True))
    seed: int = field(metadata=_range(0, 2**31 - 1))


@dataclass(frozen=True)
class MvpCriteriaConfig:
    experiment: str
    by_step: int = field(metadata=_range(1, 10**10))
    by_step_success: float = field(metadata=_range(0.0, 1.0))


@dataclass(frozen=True)
class LLMAuditConfig:
    """``wmil llm-audit``: each judge protocol's verdicts against the rules, with ``experiment``'s
    parent settings, action space and episode length, on every task x level: up to
    ``states_per_level`` problems of the level (``solve_states_per_level`` under ``solve``, every
    problem under ``program``), each with every action."""

    experiment: str
    protocols: tuple[str, ...]
    # the per-state protocols (verdict, solve, score) are audited with this experiment's parent
    # settings, action space and episode length instead (a per-state request to the 1.5B model
    # that writes programs takes 5-20 s here)
    per_state_experiment: str
    states_per_level: int = field(metadata=_range(1, 10**6))  # verdict, score: A requests per state
    solve_states_per_level: int = field(metadata=_range(1, 10**6))  # solve: one request per state
    seed: int = field(metadata=_range(0, 2**31 - 1))


@dataclass(frozen=True)
class EvaluationConfig:
    """Held-out evaluation, statistics across seeds and the comparisons the paper makes."""

    episodes: int = field(metadata=_range(10, 10**7))  # held-out episodes per run and level
    seed: int = field(metadata=_range(0, 2**31 - 1))  # the held-out stream (disjoint from training's)
    bootstrap_reps: int = field(metadata=_range(100, 10**6))  # stratified-bootstrap resamples per CI
    method: str  # the method the baselines are compared against
    curriculum: str  # the method with the mastery curriculum ...
    curriculum_reference: str  # ... against this arm without it at the same budget and schedule
    baselines: tuple[str, ...]
    representation: tuple[str, ...]  # experiments whose embeddings are analysed side by side
    noise: tuple[str, ...]  # the parent-quality sweeps (experiments or sweeps differing in the parent's error rates)
    # each world-model variant or control (an experiment or sweep) -> the experiment it is compared
    # with: its ablation without a world model, on the tasks both run
    world_model: dict[str, str]


@dataclass(frozen=True)
class Experiment:
    """``overrides`` are already merged with those of the experiment it ``extends`` (if any), and
    ``seeds`` (its own list, else its base's) inherited from it; so are ``task_overrides`` (task ->
    overrides for that task's runs alone, applied after ``overrides``). A point of a sweep names its
    ``sweep`` and its ``point`` (axis -> value), and runs the sweep's seeds."""

    name: str
    tasks: tuple[str, ...]
    overrides: dict[str, Any]
    description: str = ""
    extends: str | None = None
    sweep: str | None = None
    point: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None  # None: the top-level seeds (Params.seeds_of resolves it)
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Tuning:
    """The search that chose some of ``experiment``'s settings (``wmil bench --tune``, outside the
    pipeline): every combination of ``grid`` (``SECTION.KEY`` -> values) on each of its tasks and
    the first ``seeds`` of ``tuning_seeds``. The winner is written into the experiment's overrides."""

    experiment: str
    seeds: int
    grid: dict[str, tuple[Any, ...]]

    def settings(self) -> list[dict[str, Any]]:
        """Every combination as ``{SECTION.KEY: value}``, in the grid's order."""
        return [dict(zip(self.grid, values)) for values in itertools.product(*self.grid.values())]


@dataclass(frozen=True)
class Params:
    defaults: dict[str, Any]
    seeds: tuple[int, ...]
    experiments: dict[str, Experiment]
    tuning_seeds: tuple[int, ...]  # the seeds that chose settings (outside the pipeline); never run in it
    sanity: SanityConfig
    mvp_criteria: MvpCriteriaConfig
    llm_audit: LLMAuditConfig
    evaluation: EvaluationConfig
    sweeps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sweep -> its experiments, in order
    tuning: dict[str, Tuning] = field(default_factory=dict)  # experiment -> the search that chose its settings

    def expand(self, names: tuple[str, ...] | list[str]) -> list[str]:
        """Experiment names, each sweep replaced by its points."""
        return [e for n in names for e in self.sweeps.get(n, (n,))]

    def seeds_of(self, experiment: str) -> tuple[int, ...]:
        """The seeds ``experiment`` runs: its own ``seeds`` (or inherited through ``extends``; a
        sweep's points share the sweep's), else the top-level list."""
        if experiment not in self.experiments:
            raise ConfigError(f"unknown experiment {experiment!r}; allowed: {sorted(self.experiments)}")
        own = self.experiments[experiment].seeds
        return self.seeds if own is None else own

    def run_config(
        self,
        experiment: str | None = None,
        task: str | None = None,
        seed: int = 0,
        overrides: dict[str, Any] | None = None,
    ) -> RunConfig:
        """Defaults, then the experiment's overrides, then ``task`` and the experiment's overrides for
        it (``task_overrides``), then CLI ``overrides``."""
        tree = copy.deepcopy(self.defaults)
        name = "adhoc"
        where = "run"
        if experiment is not None:
            if experiment not in self.experiments:
                raise ConfigError(
                    f"unknown experiment {experiment!r}; allowed: {sorted(self.experiments)}"
                )
            exp = self.experiments[experiment]
            tree = deep_merge(tree, exp.overrides, f"experiments.{experiment}.overrides")
            if task is not None and task not in exp.tasks:
                raise ConfigError(
                    f"task {task!r} is not part of experiment {experiment!r}; allowed: {list(exp.tasks)}"
                )
            name = experiment
            where = f"experiments.{experiment}.overrides"  # the defaults were validated alone
        if task is not None:
            tree.setdefault("env", {})["task"] = task
            if experiment is not None and task in self.experiments[experiment].task_overrides:
                parse_run_config({"experiment": name, "seed": seed, **tree}, where)  # the shared overrides alone
                where = f"experiments.{experiment}.task_overrides.{task}"
                tree = deep_merge(tree, self.experiments[experiment].task_overrides[task], where)
        if overrides:
            tree = deep_merge(tree, overrides, "override")
            where = "run"
        return parse_run_config({"experiment": name, "seed": seed, **tree}, where)


def deep_merge(base: dict, update: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict):
            if key in out and not isinstance(out[key], dict):
                raise ConfigError(f"{where}.{key}: expected a scalar, got a mapping")
            out[key] = deep_merge(out.get(key, {}), value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def _check_value(key: str, tp: Any, value: Any, meta: dict) -> Any:
    choices = _choices(tp, meta)
    if choices is not None:
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not allowed; allowed: {list(choices)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not a finite number")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    elif tp == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    elif tp == dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ConfigError(f"{key}: expected a mapping of names to names, got {value!r}")
        return dict(value)
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        bound = f"> {lo}" if meta.get("lo_open") else f">= {lo}"
        raise ConfigError(f"{key}: {value!r} is out of range; allowed: {bound} and <= {hi}")
    if hi is not None and value > hi:
        low = "" if lo is None else (f"> {lo} and " if meta.get("lo_open") else f">= {lo} and ")
        raise ConfigError(f"{key}: {value!r} is out of range; allowed: {low}<= {hi}")
    return value


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, validating every key; ``where`` prefixes errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {sorted(fields)}")
    missing = [name for name in fields if name not in data]
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: missing key; required: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{where}.{name}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a hint is a class, never an instance
            kwargs[name] = from_dict(tp, value, key)
        else:
            kwargs[name] = _check_value(key, tp, value, dict(fields[name].metadata))
    return cls(**kwargs)


def parse_run_config(data: dict, where: str = "run") -> RunConfig:
    cfg = from_dict(RunConfig, data, where)
    m, a = cfg.model, cfg.algorithm
    if m.hidden_dim % m.num_heads:
        raise ConfigError(
            f"{where}.model.num_heads: {m.num_heads} must divide model.hidden_dim={m.hidden_dim}"
        )
    if m.world_model_target == "embedding" and not m.world_model:
        raise ConfigError(f"{where}.model.world_model_target: 'embedding' needs model.world_model true")
    p = cfg.parent
    noisy = p.false_positive_rate > 0 or p.false_negative_rate > 0
    if a.distill_coef > 0 and (p.name != "deterministic" or noisy):
        raise ConfigError(
            f"{where}.algorithm.distill_coef: distillation reads the rules' action distribution, so it needs "
            f"parent.name 'deterministic' and error rates 0 (got {p.name!r}, false_positive_rate "
            f"{p.false_positive_rate}, false_negative_rate {p.false_negative_rate})")
    if cfg.rewards.noise_correction and (p.name != "deterministic" or p.informativeness <= 0):
        raise ConfigError(
            f"{where}.rewards.noise_correction: the correction needs the parent's error rates, known only for "
            f"the rule parent (parent.name 'deterministic'), and J = 1 - FPR - FNR > 0 (got {p.name!r}, "
            f"J = {p.informativeness:g})")
    batch = cfg.env.num_envs * cfg.env.episode_length
    if a.name == "ppo" and batch % a.minibatches:
        raise ConfigError(
            f"{where}.algorithm.minibatches: {a.minibatches} must divide the rollout of "
            f"env.num_envs * env.episode_length = {batch} samples into equal minibatches"
        )
    return cfg


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate ``params.yaml``; every experiment is resolved once to catch bad overrides."""
    path = Path(path)
    try:
        raw = read_yaml(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, str(path))


def parse_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    allowed = {"defaults", "seeds", "tuning_seeds", "tuning", "experiments", "sanity", "mvp_criteria", "llm_audit",
               "evaluation"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown top-level key in {source}; allowed: {sorted(allowed)}")
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"defaults: expected a mapping, got {defaults!r}")
    parse_run_config({"experiment": "defaults", "seed": 0, **defaults}, "defaults")
    seeds = _parse_seeds(raw.get("seeds"), "seeds")
    tuning_seeds = _parse_seeds(raw.get("tuning_seeds"), "tuning_seeds")
    raw_experiments = raw.get("experiments") or {}
    if not isinstance(raw_experiments, dict):
        raise ConfigError(f"experiments: expected a mapping of name -> experiment, got {raw_experiments!r}")
    raw_experiments, sweeps = _expand_sweeps(raw_experiments)
    parsed: dict[str, Experiment] = {}
    for name in raw_experiments:
        _parse_experiment(name, raw_experiments, parsed, ())
    experiments = {name: parsed[name] for name in raw_experiments}  # in the file's order
    params = Params(
        sweeps=sweeps,
        defaults=defaults,
        seeds=seeds,
        tuning_seeds=tuning_seeds,
        experiments=experiments,
        sanity=from_dict(SanityConfig, raw.get("sanity"), "sanity"),
        mvp_criteria=from_dict(MvpCriteriaConfig, raw.get("mvp_criteria"), "mvp_criteria"),
        llm_audit=from_dict(LLMAuditConfig, raw.get("llm_audit"), "llm_audit"),
        evaluation=from_dict(EvaluationConfig, raw.get("evaluation"), "evaluation"),
    )
    for exp in experiments.values():
        for task in exp.tasks:
            params.run_config(exp.name, task)
        tuned = sorted(set(params.seeds_of(exp.name)) & set(tuning_seeds))
        if tuned:
            raise ConfigError(f"experiments.{exp.name}: seeds {tuned} are tuning_seeds (they chose settings, so they "
                              f"are never reported); give it seeds outside {list(tuning_seeds)}")
    ev = params.evaluation
    named = [("mvp_criteria.experiment", params.mvp_criteria.experiment),
             ("llm_audit.experiment", params.llm_audit.experiment),
             ("llm_audit.per_state_experiment", params.llm_audit.per_state_experiment), ("evaluation.method", ev.method),
             ("evaluation.curriculum", ev.curriculum), ("evaluation.curriculum_reference", ev.curriculum_reference),
             *((f"evaluation.world_model.{variant}", reference) for variant, reference in ev.world_model.items()),
             *((f"evaluation.{key}[{i}]", name) for key in ("baselines", "representation")
               for i, name in enumerate(getattr(ev, key)))]
    for key, name in named:
        if name not in experiments:
            raise ConfigError(f"{key}: {name!r} is not an experiment; allowed: {sorted(experiments)}")
    for key, names in (("noise", ev.noise), ("world_model", ev.world_model)):
        for i, name in enumerate(names):
            where = f"evaluation.{key}" + (f"[{i}]" if key == "noise" else "")
            if name not in sweeps and name not in experiments:
                raise ConfigError(f"{where}: {name!r} is neither a sweep nor an experiment; sweeps: {sorted(sweeps)}")
    for variant, reference in ev.world_model.items():
        if params.experiments[reference].overrides.get("model", {}).get("world_model", True):
            raise ConfigError(f"evaluation.world_model.{variant}: its reference {reference!r} must set model.world_model: false")
    if ev.method not in ev.world_model:
        raise ConfigError(f"evaluation.world_model: must compare the method {ev.method!r} with its ablation")
    protocols = typing.get_args(typing.get_type_hints(LLMConfig)["protocol"])
    for i, name in enumerate(params.llm_audit.protocols):
        if name not in protocols:
            raise ConfigError(f"llm_audit.protocols[{i}]: {name!r} is not allowed; allowed: {list(protocols)}")
    if not params.llm_audit.protocols:
        raise ConfigError(f"llm_audit.protocols: expected at least one of {list(protocols)}")
    for name in (ev.method, ev.world_model[ev.method]):  # the t-SNE figure sets them side by side
        if name not in ev.representation:
            raise ConfigError(f"evaluation.representation: must include {name!r} (evaluation.method and its "
                              f"world-model ablation, evaluation.world_model.{ev.method}, are mapped side by side)")
    return dataclasses.replace(params, tuning=_parse_tuning(raw.get("tuning") or {}, params))


def _parse_tuning(raw: Any, params: Params) -> dict[str, Tuning]:
    """``tuning: {experiment: {seeds: n, grid: {SECTION.KEY: [values]}}}``; every combination must
    make a valid run of every task of the experiment."""
    if not isinstance(raw, dict):
        raise ConfigError(f"tuning: expected a mapping of experiment -> {{seeds, grid}}, got {raw!r}")
    out = {}
    for name, body in raw.items():
        where = f"tuning.{name}"
        if name not in params.experiments:
            raise ConfigError(f"{where}: {name!r} is not an experiment; allowed: {sorted(params.experiments)}")
        if not isinstance(body, dict) or set(body) != {"seeds", "grid"}:
            raise ConfigError(f"{where}: expected exactly the keys seeds and grid")
        seeds = _check_value(f"{where}.seeds", int, body["seeds"], _range(1, len(params.tuning_seeds)))
        grid = body["grid"]
        if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
            raise ConfigError(f"{where}.grid: expected a mapping of SECTION.KEY -> a non-empty list of values")
        tuning = Tuning(name, seeds, {key: tuple(values) for key, values in grid.items()})
        for setting in tuning.settings():
            try:
                overrides = setting_overrides(setting)
                for task in params.experiments[name].tasks:
                    params.run_config(name, task, params.tuning_seeds[0], overrides)
            except ConfigError as exc:
                raise ConfigError(f"{where}.grid: {exc}") from None
        out[name] = tuning
    return out


def _parse_seeds(seeds: Any, where: str) -> tuple[int, ...]:
    """A non-empty list of distinct seeds (the top-level ``seeds`` or an experiment's)."""
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"{where}: expected a non-empty list of integers, got {seeds!r}")
    for i, s in enumerate(seeds):
        _check_value(f"{where}[{i}]", int, s, SEED_RANGE)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: duplicates in {seeds!r}")
    return tuple(seeds)


def _format_value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower()


def _expand_sweeps(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Experiments with every sweep replaced by its points, in place, and sweep -> point names.

    A sweep is an experiment with ``sweep: {axes: {axis: dotted.key, ...}, points: [[v, ...], ...]}``
    (the points listed, values in axes order) or ``grid: {axis: [v, ...], ...}`` (every
    combination). Point ``(v1, v2)`` is the experiment ``<name>-<axis1><v1>-<axis2><v2>``: the
    sweep's settings (its ``extends``, ``tasks``, ``overrides``) with the point's keys set."""
    out: dict[str, Any] = {}
    sweeps: dict[str, tuple[str, ...]] = {}
    for name, body in raw.items():
        if not isinstance(body, dict) or "sweep" not in body:
            out[name] = body
            continue
        where = f"experiments.{name}.sweep"
        spec = body["sweep"]
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected a mapping with axes and points (or grid)")
        unknown = sorted(set(spec) - {"axes", "points", "grid"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: ['axes', 'grid', 'points']")
        axes = spec.get("axes")
        if not isinstance(axes, dict) or not axes:
            raise ConfigError(f"{where}.axes: expected a mapping of axis name -> SECTION.KEY")
        for axis, key in axes.items():
            if not isinstance(key, str) or len(key.split(".")) != 2 or key.split(".")[0] not in SECTIONS:
                raise ConfigError(f"{where}.axes.{axis}: expected SECTION.KEY with SECTION in {list(SECTIONS)}, got {key!r}")
        if ("points" in spec) == ("grid" in spec):
            raise ConfigError(f"{where}: give exactly one of points (a list) or grid (axis -> values)")
        if "points" in spec:
            points = spec["points"]
            if not isinstance(points, list) or not points or not all(
                    isinstance(p, list) and len(p) == len(axes) for p in points):
                raise ConfigError(f"{where}.points: expected a non-empty list of lists of {len(axes)} values "
                                  f"(one per axis: {list(axes)})")
        else:
            grid = spec["grid"]
            if not isinstance(grid, dict) or set(grid) != set(axes) or not all(
                    isinstance(v, list) and v for v in grid.values()):
                raise ConfigError(f"{where}.grid: expected a non-empty list of values for each axis {list(axes)}")
            points = [list(p) for p in itertools.product(*(grid[a] for a in axes))]
        names = []
        for values in points:
            point = dict(zip(axes, values))
            label = f"{name}-" + "-".join(f"{axis}{_format_value(v)}" for axis, v in point.items())
            if label in raw or label in out:
                raise ConfigError(f"{where}: point {label!r} is defined twice")
            overrides = copy.deepcopy(body.get("overrides") or {})
            for axis, v in point.items():
                section, key = axes[axis].split(".")
                overrides = deep_merge(overrides, {section: {key: v}}, f"{where}.axes.{axis}")
            out[label] = {**{k: v for k, v in body.items() if k != "sweep"}, "overrides": overrides,
                          "description": f"{body.get('description', name)} Point: "
                                         + ", ".join(f"{axes[a]}={_format_value(v)}" for a, v in point.items()) + ".",
                          "_sweep": (name, point)}
            names.append(label)
        sweeps[name] = tuple(names)
    for name, body in out.items():
        if isinstance(body, dict) and body.get("extends") in sweeps:
            raise ConfigError(f"experiments.{name}.extends: {body['extends']!r} is a sweep; extend one of its "
                              f"points or what the sweep extends")
    return out, sweeps


def _parse_experiment(name: str, raw: dict, done: dict[str, Experiment], chain: tuple[str, ...]) -> Experiment:
    """Validate experiment ``name`` (and first the one it ``extends``) into ``done``."""
    if name in done:
        return done[name]
    where = f"experiments.{name}"
    if name in chain:
        raise ConfigError(f"{where}.extends: a cycle: {' -> '.join((*chain, name))}")
    body = raw[name]
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: expected a mapping")
    keys = ["description", "extends", "overrides", "seeds", "task_overrides", "tasks"]
    unknown = sorted(set(body) - set(keys) - {"_sweep"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {keys}")
    base_name = body.get("extends")
    base = None
    if base_name is not None:
        if base_name not in raw:
            raise ConfigError(f"{where}.extends: {base_name!r} is not an experiment; allowed: {sorted(raw)}")
        base = _parse_experiment(base_name, raw, done, (*chain, name))
    tasks = body.get("tasks", list(base.tasks) if base is not None else None)
    if not isinstance(tasks, list) or not tasks:
        raise ConfigError(f"{where}.tasks: expected a non-empty list; allowed: {list(TASK_NAMES)}")
    for t in tasks:
        if t not in TASK_NAMES:
            raise ConfigError(f"{where}.tasks: {t!r} is not allowed; allowed: {list(TASK_NAMES)}")
    seeds: tuple[int, ...] | None = base.seeds if base is not None else None  # None: the top-level seeds
    if "seeds" in body:
        seeds = _parse_seeds(body["seeds"], f"{where}.seeds")
    overrides = body.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}.overrides: expected a mapping")
    if "env" in overrides and isinstance(overrides["env"], dict) and "task" in overrides["env"]:
        raise ConfigError(f"{where}.overrides.env.task: set the tasks in {where}.tasks instead")
    task_overrides = body.get("task_overrides") or {}
    if not isinstance(task_overrides, dict):
        raise ConfigError(f"{where}.task_overrides: expected a mapping of task -> overrides")
    for t, body_t in task_overrides.items():
        if t not in TASK_NAMES:
            raise ConfigError(f"{where}.task_overrides.{t}: not a task; allowed: {list(TASK_NAMES)}")
        if not isinstance(body_t, dict):
            raise ConfigError(f"{where}.task_overrides.{t}: expected a mapping")
        if isinstance(body_t.get("env"), dict) and "task" in body_t["env"]:
            raise ConfigError(f"{where}.task_overrides.{t}.env.task: the task is the key itself")
    if base is not None:  # an ablation shares every setting of its base but what it overrides
        overrides = deep_merge(base.overrides, overrides, f"{where}.overrides")
        task_overrides = deep_merge(base.task_overrides, task_overrides, f"{where}.task_overrides")
    sweep, point = body.get("_sweep", (None, {}))
    done[name] = Experiment(name, tuple(tasks), overrides, str(body.get("description", "")), base_name, sweep, point,
                            seeds, task_overrides)
    return done[name]


def setting_overrides(setting: dict[str, Any]) -> dict[str, Any]:
    """``{"algorithm.lr": 0.001, ...}`` -> the nested overrides ``{"algorithm": {"lr": 0.001}, ...}``."""
    overrides: dict[str, Any] = {}
    for key, value in setting.items():
        overrides = deep_merge(overrides, parse_override(f"{key}={json.dumps(value)}"), "setting")
    return overrides


def parse_override(assignment: str) -> dict[str, Any]:
    """``"model.hidden_dim=128"`` -> ``{"model": {"hidden_dim": 128}}`` (value parsed as YAML);
    deeper keys too: ``"parent.llm.base_url=http://..."``."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. model.hidden_dim=128")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) < 2 or parts[0] not in SECTIONS or not all(parts):
        raise ConfigError(f"--set {key!r}: expected SECTION.KEY (or SECTION.KEY.SUBKEY) with SECTION in {list(SECTIONS)}")
    value: Any = read_yaml(text)
    for part in reversed(parts):
        value = {part: value}
    return value


def json_schema() -> dict[str, Any]:
    """JSON schema of ``params.yaml`` derived from the dataclasses (Snakemake validates with it)."""

    def schema_of(cls: type, required: bool = True) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        props = {}
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                props[f.name] = schema_of(tp, required)
                continue
            choices = _choices(tp, f.metadata)
            if choices is not None:
                prop: dict[str, Any] = {"enum": list(choices)}
            elif tp == tuple[str, ...]:
                prop = {"type": "array", "items": {"type": "string"}}
            elif tp == dict[str, str]:
                prop = {"type": "object", "additionalProperties": {"type": "string"}}
            else:
                prop = {"type": {int: "integer", float: "number", bool: "boolean", str: "string"}[tp]}
                meta = f.metadata
                if meta.get("lo") is not None:
                    prop["exclusiveMinimum" if meta.get("lo_open") else "minimum"] = meta["lo"]
                if meta.get("hi") is not None:
                    prop["maximum"] = meta["hi"]
            props[f.name] = prop
        out = {"type": "object", "additionalProperties": False, "properties": props}
        return {**out, "required": list(props)} if required else out

    def seeds() -> dict[str, Any]:  # a fresh copy each time: a shared one is written as a YAML alias
        return {"type": "array", "items": {"type": "integer", "minimum": SEED_RANGE["lo"], "maximum": SEED_RANGE["hi"]},
                "minItems": 1, "uniqueItems": True}

    def section_tree(required: bool) -> dict[str, Any]:
        run = schema_of(RunConfig, required)
        sections = {k: run["properties"][k] for k in SECTIONS}
        if not required:  # an experiment names its tasks in `tasks`, not in env.task
            env = sections["env"]
            sections["env"] = {**env, "properties": {k: v for k, v in env["properties"].items() if k != "task"}}
        out = {"type": "object", "additionalProperties": False, "properties": sections}
        return {**out, "required": list(SECTIONS)} if required else out

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "params.yaml of WMIL (generated by `wmil schema`; do not edit by hand)",
        "type": "object",
        "additionalProperties": False,
        "required": ["defaults", "seeds", "tuning_seeds", "experiments", "sanity", "mvp_criteria", "llm_audit",
                     "evaluation"],
        "properties": {
            "defaults": section_tree(required=True),
            "seeds": seeds(),
            "tuning_seeds": seeds(),
            "tuning": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False, "required": ["seeds", "grid"],
                "properties": {"seeds": {"type": "integer", "minimum": 1},
                               "grid": {"type": "object", "minProperties": 1,
                                        "additionalProperties": {"type": "array", "minItems": 1}}}}},
            "experiments": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "anyOf": [{"required": ["tasks"]}, {"required": ["extends"]}],
                    "properties": {
                        "description": {"type": "string"},
                        "extends": {"type": "string"},
                        "tasks": {"type": "array", "items": {"enum": list(TASK_NAMES)}, "minItems": 1},
                        "overrides": section_tree(required=False),
                        "seeds": seeds(),
                        "task_overrides": {"type": "object", "additionalProperties": False,
                                           "properties": {t: section_tree(required=False) for t in TASK_NAMES}},
                        "sweep": {
                            "type": "object", "additionalProperties": False, "required": ["axes"],
                            "properties": {
                                "axes": {"type": "object", "additionalProperties": {"type": "string"}},
                                "points": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                                "grid": {"type": "object", "additionalProperties": {"type": "array", "minItems": 1}},
                            },
                        },
                    },
                },
            },
            "sanity": schema_of(SanityConfig),
            "mvp_criteria": schema_of(MvpCriteriaConfig),
            "llm_audit": schema_of(LLMAuditConfig),
            "evaluation": schema_of(EvaluationConfig),
        },
    }


def check_schema_file(path: Path) -> None:
    """Raise :class:`ConfigError` if the schema file at ``path`` is not :func:`json_schema` (a task
    was added, or a params field changed, since it was written), naming the command that rewrites it."""
    if yaml.safe_load(path.read_text()) != json_schema():
        raise ConfigError(f"{path} is stale (a task or a params field changed since it was written): "
                          f"regenerate it with `wmil schema --out {path}`")
