"""Reward vectors and the reward computer."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from wmil.envs.env import RewardVector
from wmil.parents import DeterministicParent
from wmil.tasks import TASKS, make_task
from wmil.training.rewards import RewardComputer

TASK_NAMES = tuple(TASKS)


# --------------------------------------------------------------------------------------------
# RewardVector
# --------------------------------------------------------------------------------------------


def test_reward_vector_defaults():
    r = RewardVector()
    assert (r.goal, r.pred, r.cons) == (0.0, 0.0, 0.0)
    assert RewardVector(goal=1.0).scalar((1.0, 1.0, 1.0)) == 1.0


@pytest.mark.parametrize(
    "weights,expected",
    [
        ((1.0, 1.0, 0.0), 1.0 + 0.25),
        ((1.0, 0.0, 0.0), 1.0),
        ((0.0, 1.0, 0.0), 0.25),
        ((0.0, 0.0, 1.0), 0.5),
        ((2.0, 4.0, 3.0), 2.0 + 1.0 + 1.5),
        ((0.5, -1.0, 10.0), 0.5 - 0.25 + 5.0),
    ],
)
def test_reward_vector_scalar_floats(weights, expected):
    r = RewardVector(goal=1.0, pred=0.25, cons=0.5)
    assert r.scalar(weights) == pytest.approx(expected)


def test_reward_vector_scalar_needs_explicit_weights():
    with pytest.raises(TypeError):
        RewardVector(goal=1.0).scalar()


@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.0), (2.0, 0.5, 3.0)])
def test_reward_vector_scalar_tensors(weights):
    goal = torch.tensor([1.0, 0.0, 1.0])
    pred = torch.tensor([0.1, 0.2, 0.3])
    cons = torch.tensor([1.0, 1.0, 0.0])
    out = RewardVector(goal, pred, cons).scalar(weights)
    expected = weights[0] * goal + weights[1] * pred + weights[2] * cons
    assert out.shape == (3,)
    torch.testing.assert_close(out, expected)


# --------------------------------------------------------------------------------------------
# RewardComputer
# --------------------------------------------------------------------------------------------


def computer(params, task_name="pattern_echo", num_actions=8, **reward_overrides):
    config = params.run_config(None, task_name).rewards
    if reward_overrides:
        config = dataclasses.replace(config, **reward_overrides)
    return RewardComputer(config, make_task(task_name, num_actions))


def prediction_reward(rc, predicted, next_states):
    """The prediction reward and the world model's MSE, both ``(n,)``, through the real path."""
    reward, mse = rc.compute(torch.zeros(len(next_states)), predicted, next_states)
    return reward.pred, mse


#: PatternEcho states at A = 8 (target, last_action, feedback): a one-hot of 8 + 9 + 3 = 20 numbers.
ECHO_NEXT = torch.tensor([[3, 3, 2], [5, 4, 1], [0, 8, 0], [7, 7, 2]])


@pytest.mark.parametrize("pred_scale", [0.1, 0.5, 1.0, 2.0])
def test_prediction_reward_hand_made(params, pred_scale):
    rc = computer(params, pred_scale=pred_scale)
    target = rc.task.one_hot(ECHO_NEXT)
    assert target.shape == (4, 20)
    # off by 0, 0.5 and 1 everywhere; all zeros misses the 3 ones of 20
    predicted = torch.stack([target[0], target[1] + 0.5, target[2] + 1.0, torch.zeros(20)])
    out, mse = prediction_reward(rc, predicted, ECHO_NEXT)
    assert out.shape == mse.shape == (4,)
    torch.testing.assert_close(mse, torch.tensor([0.0, 0.25, 1.0, 0.15]))
    expected = torch.tensor([1.0, math.exp(-0.25), math.exp(-1.0), math.exp(-0.15)]) * pred_scale
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("pred_scale", [0.1, 0.5, 2.0])
def test_perfect_prediction_gives_exactly_pred_scale(params, pred_scale):
    rc = computer(params, pred_scale=pred_scale)
    out, mse = prediction_reward(rc, rc.task.one_hot(ECHO_NEXT), ECHO_NEXT)
    assert torch.equal(mse, torch.zeros(4))
    assert torch.equal(out, torch.full((4,), pred_scale))


def test_prediction_reward_default_scale(params):
    rc = computer(params)
    assert rc.config.pred_scale == 0.1
    assert torch.equal(prediction_reward(rc, rc.task.one_hot(ECHO_NEXT), ECHO_NEXT)[0], torch.full((4,), 0.1))


def test_prediction_reward_decreases_with_error(params):
    rc = computer(params)
    next_states = ECHO_NEXT[:1].expand(5, 3)
    predicted = rc.task.one_hot(next_states) + torch.arange(5.0).unsqueeze(1) * 0.3
    out, _ = prediction_reward(rc, predicted, next_states)
    assert bool((out[1:] < out[:-1]).all())
    assert bool((out > 0).all())


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_consistency_reward(params, task_name):
    rc = computer(params, task_name)
    task = rc.task
    parent = DeterministicParent(task)
    states = parent.generate(2, 6, torch.Generator().manual_seed(0))
    answers = task.answer(states)
    actions = torch.where(torch.arange(6) < 3, answers, (answers + 1) % task.num_actions)
    next_states = parent.transition(states, actions)  # feedback 2, 2, 2, 1, 1, 1
    assert next_states[:, task.feedback_slot].tolist() == [2, 2, 2, 1, 1, 1]
    start = int(task.slot_offsets[task.feedback_slot])
    assert start == task.one_hot_dim - 3  # the feedback slot is the last one
    predicted = torch.randn(6, task.one_hot_dim)
    predicted[:, start:] = 0.0
    # the baby expects: right, wrong, none, wrong, right, wrong
    for i, fb in enumerate([2, 1, 0, 1, 2, 1]):
        predicted[i, start + fb] = 5.0
    out = rc.compute_consistency_reward(predicted, next_states)
    assert out.dtype == torch.float32 and out.shape == (6,)
    assert out.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]


def test_consistency_reward_reads_only_the_feedback_slot(params):
    rc = computer(params)
    next_states = torch.tensor([[3, 3, 2]])
    predicted = torch.zeros(1, rc.task.one_hot_dim)
    predicted[0, : rc.task.one_hot_dim - 3] = 100.0  # large values elsewhere must not matter
    predicted[0, -1] = 1.0
    assert rc.compute_consistency_reward(predicted, next_states).tolist() == [1.0]


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_compute_without_world_model(params, task_name):
    rc = computer(params, task_name)
    parent = DeterministicParent(rc.task)
    states = parent.generate(2, 5, torch.Generator().manual_seed(1))
    goal, next_states = parent.step(states, torch.zeros(5, dtype=torch.long))
    r, mse = rc.compute(goal, None, next_states)
    assert isinstance(r, RewardVector) and mse is None
    assert torch.equal(r.goal, goal)
    assert torch.equal(r.pred, torch.zeros(5)) and torch.equal(r.cons, torch.zeros(5))


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_compute_with_perfect_world_model(params, task_name):
    rc = computer(params, task_name, num_actions=16)
    parent = DeterministicParent(rc.task)
    states = parent.generate(2, 8, torch.Generator().manual_seed(2))
    goal, next_states = parent.step(states, torch.arange(8))
    r, mse = rc.compute(goal, rc.task.one_hot(next_states), next_states)
    assert torch.equal(mse, torch.zeros(8))
    assert torch.equal(r.goal, goal)
    assert torch.equal(r.pred, torch.full((8,), rc.config.pred_scale))
    assert torch.equal(r.cons, torch.ones(8))


def test_computer_scalar_uses_configured_weights(params):
    rc = computer(params, goal_weight=2.0, pred_weight=0.5, cons_weight=3.0)
    assert rc.weights == (2.0, 0.5, 3.0)
    r = RewardVector(torch.tensor([1.0, 0.0]), torch.tensor([0.1, 0.2]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(rc.scalar(r), torch.tensor([2.0 + 0.05 + 3.0, 0.1]))
    default = computer(params)
    assert default.weights == (1.0, 1.0, 0.0)
