"""Shared test setup: one torch thread (the machine is small and the model is tiny)."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPO_ROOT / "params.yaml"


#: Modules whose integration tests run whole pipelines (minutes each), the one with the longest test first
WHOLE_PIPELINE_MODULES = ("test_workflow.py", "test_reproduction.py")


def pytest_collection_modifyitems(items):
    """Whole-pipeline tests first, then the other integration tests, then the unit tests: under
    `make test` (two workers, ``pytest -n 2 --maxschedchunk 1``: each worker is handed one test
    at a time, where by default the first worker's first chunk would hold every integration test)
    the minutes-long ones start at once and the quick ones fill in at the end."""
    def rank(item) -> tuple[bool, int]:
        module = item.path.name
        pipeline = WHOLE_PIPELINE_MODULES.index(module) if module in WHOLE_PIPELINE_MODULES else len(WHOLE_PIPELINE_MODULES)
        return item.get_closest_marker("integration") is None, pipeline

    items.sort(key=rank)


@pytest.fixture(scope="session")
def params():
    """``params.yaml`` of the repository, loaded and validated once."""
    from wmil.config import load_params

    return load_params(PARAMS_PATH)


def assert_same_run(a: Path, b: Path, ignore: set[str] = frozenset(), same_config: bool = True) -> None:
    """Two run directories hold the same learning curve (byte for byte: it has no wall-clock
    column), metrics (but the keys in ``ignore``) and weights; with ``same_config`` the checkpoint
    and the weights file are the same bytes too (they hold the config; DVC hashes them)."""
    assert (a / "curve.csv").read_bytes() == (b / "curve.csv").read_bytes()
    if same_config:
        for name in ("checkpoint.pt", "model.pt"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    metrics = [{k: v for k, v in json.loads((d / "metrics.json").read_text()).items() if k not in ignore} for d in (a, b)]
    assert metrics[0] == metrics[1]
    wa, wb = (torch.load(d / "model.pt", weights_only=True)["model"] for d in (a, b))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def llm_parent_config(experiment: str, url: str, tmp_path: Path, **changes):
    """``experiment``'s ``parent.llm`` settings (PatternEcho's run) pointed at ``url``, with a
    response cache of its own in ``tmp_path`` and ``changes``."""
    from wmil.config import load_params

    base = load_params(PARAMS_PATH).run_config(experiment, "pattern_echo").parent.llm
    return dataclasses.replace(base, **{"base_url": url, "cache_path": str(tmp_path / "cache.sqlite"), **changes})


def every_pair(task, level: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Every problem of ``level`` as a fresh state with every action: ``(states, actions)``."""
    states = task.initial_states(task.problems(level))
    return states.repeat_interleave(task.num_actions, 0), torch.arange(task.num_actions).repeat(len(states))


def tiny_params() -> dict:
    """The committed params with fewer seeds (two reported seeds for every experiment), steps and
    sanity episodes: a smoke configuration."""
    raw = yaml.safe_load(PARAMS_PATH.read_text())
    raw["seeds"] = [10, 11]
    for name, exp in raw["experiments"].items():
        exp.pop("seeds", None)
        exp["overrides"] = dict(exp.get("overrides") or {})  # YAML anchors share mappings: copy before editing
        exp.pop("task_overrides", None)  # one smoke budget for every task
        exp["overrides"]["training"] = ({"max_steps": 3000, "save_every": 1000} if name == "mvp"
                                        else {"max_steps": 2048, "log_every": 1024, "save_every": 1024})
        if "sweep" in exp:  # two points per sweep
            exp["sweep"] = {**exp["sweep"], "points": exp["sweep"]["points"][-2:]}
    raw["sanity"]["episodes"] = 2000
    raw["sanity"]["random_tolerance"] = 0.05
    raw["mvp_criteria"]["by_step"] = 3000
    # the representation analysis (t-SNE, probes) of two experiments shows its mechanics as well as six
    raw["evaluation"].update(episodes=200, bootstrap_reps=200, representation=["ppo", "rl_only"])
    raw["llm_audit"].update(protocols=["solve"], states_per_level=2, solve_states_per_level=2,
                            experiment="llm_solve", per_state_experiment="llm_solve")
    # the smoke DAG keeps one LLM experiment, the small model's `llm_solve` (the coder model's
    # programs are tested in test_programs.py and test_llm.py)
    for name in ("llm_verdict", "llm", "llm_all", "llm_mvp"):
        del raw["experiments"][name]
    # the world-model controls are experiments like any other (their mechanics: test_summary, test_report)
    for name in ("answer_head", "detached_head", "ppo_fresh", "rl_only_fresh"):
        del raw["experiments"][name]
        raw["evaluation"]["world_model"].pop(name, None)
    return raw


def lean_params() -> dict:
    """:func:`tiny_params` with one seed, the method family on one task, no noise sweep, LLM runs
    or world-model variants but the method: the workflow's mechanics (DVC, Slurm) with the fewest jobs that still build every output."""
    raw = tiny_params()
    raw["seeds"] = [10]
    experiments = raw["experiments"]
    for name in [n for n, e in experiments.items()
                 if "sweep" in e or n.startswith(("llm", "t1_")) or n in ("raw_then_embedding", "ppo_matched")]:
        del experiments[name]
    experiments["ppo"]["tasks"] = ["conditional"]  # the curriculum inherits it
    experiments["curriculum"]["extends"] = "ppo"  # one job fewer: ppo is its matched arm here
    raw["evaluation"].update(noise=["mvp"], world_model={"ppo": "rl_only"}, curriculum_reference="ppo")
    raw["llm_audit"]["experiment"] = raw["llm_audit"]["per_state_experiment"] = "mvp"
    return raw


def train_interrupted(config, run_dir: Path, checkpoints: int = 1) -> None:
    """Train ``config`` in ``run_dir`` and stop it dead right after its ``checkpoints``-th
    checkpoint, as a killed job would (nothing after the checkpoint is written)."""
    from wmil.training.trainer import Trainer

    class Killed(Exception):
        pass

    trainer = Trainer(config, run_dir)
    save, saved = trainer.save, []

    def save_then_die():
        save()
        saved.append(trainer.env_steps)
        if len(saved) == checkpoints:
            raise Killed

    trainer.save = save_then_die
    try:
        trainer.train(progress=False)
    except Killed:
        return
    raise AssertionError(f"{run_dir}: the run finished before its checkpoint {checkpoints}")
