"""PPO and multi-step rollouts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import assert_same_run, train_interrupted

from wmil.config import load_params
from wmil.evaluation.held_out import evaluate_run
from wmil.parents import DeterministicParent
from wmil.tasks.rules import make_task
from wmil.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")


def ppo_config(task: str, level: int, seed: int = 0, **training):
    return PARAMS.run_config("ppo", task, seed, {"env": {"level": level}, "training": training})


def test_multi_step_rollout_never_crosses_an_episode_boundary(tmp_path):
    config = ppo_config("sequence_next", 2, max_steps=2048)
    trainer = Trainer(config, tmp_path)
    batch = trainer.collector.collect(trainer.level)
    states, nxt, actions, dones = batch.states, batch.next_states, batch.actions, batch.dones
    T = config.env.episode_length
    assert T > 1 and dones[-1].all() and not dones[:-1].any()
    parent = DeterministicParent(trainer.task)
    for t in range(T):
        torch.testing.assert_close(nxt[t], parent.transition(states[t], actions[t]))
        assert (states[t][:, trainer.task.step_slot] == t).all()  # the step slot counts time
    for t in range(T - 1):
        assert torch.equal(states[t + 1], nxt[t])  # within an episode the next state is the consequence


def test_sequence_next_moves_on_by_the_correct_term_even_after_a_wrong_answer():
    task = make_task("sequence_next", 16, episode_length=3)
    parent = DeterministicParent(task)
    states = task.initial_states(torch.tensor([[2, 4, 6], [3, 4, 16], [12, 14, 16]]))
    goal, nxt = parent.step(states, torch.tensor([8, 9, 0]))
    assert goal.tolist() == [1.0, 0.0, 1.0]
    assert nxt.tolist() == [[4, 6, 8, 1, 8, 2], [4, 5, 16, 1, 9, 1], [14, 0, 16, 1, 0, 2]]
    assert task.answer(nxt).tolist() == [10, 6, 2]  # 14, 0 -> 2: clock arithmetic modulo 16


def test_ppo_update_logs_its_fixed_scalars(tmp_path):
    trainer = Trainer(ppo_config("pattern_echo", 0, max_steps=2048), tmp_path)
    stats = trainer.algorithm.update(trainer.collector.collect(trainer.level))
    assert set(stats) == {"policy_loss", "value_loss", "world_model_loss", "loss", "entropy", "grad_norm",
                          "approx_kl", "clip_frac", "explained_variance", "distill_loss", "learning_rate", "embedding_loss"}
    assert stats["approx_kl"] >= 0 and 0 <= stats["clip_frac"] <= 1
    assert 0 < stats["entropy"] <= math.log(16) + 1e-6
    assert math.isnan(stats.pop("embedding_loss"))  # no embedding target
    assert all(math.isfinite(v) for v in stats.values())


def test_first_ppo_minibatch_is_on_policy(tmp_path):
    """One epoch over one minibatch: the ratio is 1 up to float error, so nothing is clipped."""
    config = PARAMS.run_config("ppo", "conditional", 0, {"algorithm": {"epochs": 1, "minibatches": 1},
                                                         "training": {"max_steps": 1024}})
    trainer = Trainer(config, tmp_path)
    stats = trainer.algorithm.update(trainer.collector.collect(trainer.level))
    assert stats["approx_kl"] < 1e-6 and stats["clip_frac"] == 0.0


def test_minibatches_must_split_the_rollout_evenly():
    from wmil.config import ConfigError

    with pytest.raises(ConfigError, match="algorithm.minibatches: 3 must divide the rollout"):
        PARAMS.run_config("ppo", "conditional", 0, {"algorithm": {"minibatches": 3}})


@pytest.mark.integration
@pytest.mark.parametrize("task", PARAMS.experiments["ppo"].tasks)
def test_ppo_masters_level_0_of_every_task(tmp_path, task):
    budget = PARAMS.experiments["ppo"].overrides["training"]["max_steps"]
    Trainer(ppo_config(task, 0, seed=1, max_steps=budget), tmp_path).train(progress=False)
    held_out = evaluate_run(tmp_path, PARAMS.evaluation)["by_level"]["0"]["greedy"]["success"]
    assert held_out >= 0.9, held_out


@pytest.mark.integration
def test_ppo_with_curriculum_is_deterministic_and_resumes_identically(tmp_path):
    config = PARAMS.run_config("curriculum", "pattern_echo", 2,
                               {"training": {"max_steps": 16384, "log_every": 2048, "save_every": 8192}})
    train_interrupted(config, tmp_path / "a")  # at 8,192 steps: the linear schedules need the same budget
    Trainer(config, tmp_path / "a").train(resume="must", progress=False)
    Trainer(config, tmp_path / "b").train(progress=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")
