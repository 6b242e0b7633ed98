"""The rollout buffer and its return estimators (discounted returns, GAE)."""

from __future__ import annotations

import pytest
import torch

from wmil.training.buffer import RolloutBatch, RolloutBuffer, discounted_returns, gae


def test_buffer_allocation():
    buf = RolloutBuffer(3, 2, 5, 8)
    assert (buf.num_steps, buf.num_envs) == (3, 2)
    assert buf.states.shape == (3, 2, 5) and buf.states.dtype == torch.long
    assert buf.next_states.shape == (3, 2, 5) and buf.next_states.dtype == torch.long
    assert buf.actions.shape == (3, 2) and buf.actions.dtype == torch.long
    for name in ("log_probs", "values", "goal", "pred", "cons", "rewards", "world_model_mse"):
        assert getattr(buf, name).shape == (3, 2) and getattr(buf, name).dtype == torch.float32, name
    for name in ("dones", "success"):
        assert getattr(buf, name).shape == (3, 2) and getattr(buf, name).dtype == torch.bool, name


def _rd(rewards, dones):
    return torch.tensor(rewards, dtype=torch.float32), torch.tensor(dones)


def test_discounted_returns_episodes_end_at_the_end():
    # T=3, N=2, gamma=0.5; rows are time steps
    rewards, dones = _rd([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[False, False], [False, False], [True, True]])
    returns = discounted_returns(rewards, dones, 0.5)
    # env 0: t2 = 1; t1 = 0 + .5*1 = .5; t0 = 1 + .5*.5 = 1.25
    # env 1: t2 = 1; t1 = 1 + .5*1 = 1.5; t0 = 0 + .5*1.5 = .75
    expected = torch.tensor([[1.25, 0.75], [0.5, 1.5], [1.0, 1.0]])
    assert returns.shape == (3, 2)
    torch.testing.assert_close(returns, expected)


def test_discounted_returns_restart_after_done():
    # env 0 ends at t=1, env 1 ends at t=0; both end again at t=2
    rewards, dones = _rd([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[False, True], [True, False], [True, True]])
    returns = discounted_returns(rewards, dones, 0.5)
    # env 0: t2 = 1 (new episode); t1 = 0 (end); t0 = 1 + .5*0 = 1
    # env 1: t2 = 1; t1 = 1 + .5*1 = 1.5; t0 = 0 (end of its first episode)
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.5], [1.0, 1.0]])
    torch.testing.assert_close(returns, expected)


def test_discounted_returns_restart_with_gamma_one():
    rewards, dones = _rd([[1.0], [2.0], [4.0], [8.0]], [[False], [True], [False], [True]])
    assert discounted_returns(rewards, dones, 1.0)[:, 0].tolist() == [3.0, 2.0, 12.0, 8.0]


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99, 1.0])
def test_discounted_returns_every_step_done_is_the_reward(gamma):
    rewards = torch.rand(4, 3)
    torch.testing.assert_close(discounted_returns(rewards, torch.ones(4, 3, dtype=torch.bool), gamma), rewards)


def test_discounted_returns_gamma_zero():
    rewards, dones = _rd([[1.0, 2.0], [3.0, 4.0]], [[False, False], [True, True]])
    torch.testing.assert_close(discounted_returns(rewards, dones, 0.0), rewards)


def test_discounted_returns_does_not_modify_inputs():
    rewards, dones = _rd([[1.0, 0.0], [0.0, 1.0]], [[False, False], [True, True]])
    before = rewards.clone(), dones.clone()
    discounted_returns(rewards, dones, 0.9)
    assert torch.equal(rewards, before[0]) and torch.equal(dones, before[1])


def test_gae_hand_example():
    # T=2, N=1, gamma=.5, lambda=.5; the episode ends at t=1, so last_value is not used
    rewards, dones = _rd([[1.0], [2.0]], [[False], [True]])
    values = torch.tensor([[0.5], [1.0]])
    adv, ret = gae(rewards, values, dones, torch.tensor([3.0]), 0.5, 0.5)
    # t1: delta = 2 - 1 = 1 -> A = 1
    # t0: delta = 1 + .5*1 - .5 = 1 -> A = 1 + .5*.5*1 = 1.25
    torch.testing.assert_close(adv, torch.tensor([[1.25], [1.0]]))
    torch.testing.assert_close(ret, torch.tensor([[1.75], [2.0]]))


def test_gae_bootstraps_only_without_done():
    rewards = torch.tensor([[1.0, 1.0]])
    values = torch.tensor([[0.5, 0.5]])
    adv, ret = gae(rewards, values, torch.tensor([[False, True]]), torch.tensor([2.0, 2.0]), 0.5, 0.9)
    # env 0 stops mid-episode: delta = 1 + .5*2 - .5 = 1.5; env 1 ended: delta = 1 - .5 = .5
    torch.testing.assert_close(adv, torch.tensor([[1.5, 0.5]]))
    torch.testing.assert_close(ret, torch.tensor([[2.0, 1.0]]))


@pytest.mark.parametrize("gamma", [0.5, 0.99])
def test_gae_lambda_one_returns_are_monte_carlo(gamma):
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.rand(5, 4, generator=g), torch.rand(5, 4, generator=g)
    dones = torch.rand(5, 4, generator=g) < 0.3
    dones[-1] = True
    adv, ret = gae(rewards, values, dones, torch.zeros(4), gamma, 1.0)
    torch.testing.assert_close(ret, discounted_returns(rewards, dones, gamma))
    torch.testing.assert_close(adv, ret - values)


def test_gae_matches_a_hand_computed_example_with_an_episode_boundary():
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    values = torch.tensor([[0.5, 0.2], [0.4, 0.3], [0.6, 0.1]])
    dones = torch.tensor([[False, False], [False, True], [True, False]])
    last_value = torch.tensor([9.0, 0.7])  # env 0 ended: must be ignored; env 1 bootstraps
    adv, ret = gae(rewards, values, dones, last_value, gamma, lam)
    # env 0: one episode of three steps, terminal at t=2
    d2 = 1.0 - 0.6
    d1 = 0.0 + gamma * 0.6 - 0.4
    d0 = 1.0 + gamma * 0.4 - 0.5
    a2, a1 = d2, d1 + gamma * lam * d2
    a0 = d0 + gamma * lam * a1
    # env 1: an episode ends at t=1 (no bootstrap into t=2), a new one runs at t=2 and bootstraps
    e2 = 1.0 + gamma * 0.7 - 0.1
    e1 = 1.0 - 0.3
    e0 = 0.0 + gamma * 0.3 - 0.2
    b2, b1 = e2, e1
    b0 = e0 + gamma * lam * b1
    expected = torch.tensor([[a0, b0], [a1, b1], [a2, b2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_gae_with_lambda_one_and_zero_values_is_the_discounted_return():
    rewards = torch.rand(5, 3)
    dones = torch.zeros(5, 3, dtype=torch.bool)
    dones[2, 1] = dones[4] = True
    adv, _ = gae(rewards, torch.zeros(5, 3), dones, torch.zeros(3), 0.9, 1.0)
    torch.testing.assert_close(adv, discounted_returns(rewards, dones, 0.9))


def test_batch_fields_and_shapes():
    T, N, S = 3, 4, 5
    buf = RolloutBuffer(T, N, S, 8, parent_probs=True)
    buf.states[:] = torch.arange(T * N * S).view(T, N, S)
    buf.next_states[:] = buf.states + 1
    buf.actions[:] = torch.arange(T * N).view(T, N)
    batch = buf.batch()
    assert isinstance(batch, RolloutBatch)
    assert batch.states.shape == (T, N, S) and batch.next_states.shape == (T, N, S)
    assert batch.parent_probs.shape == (T, N, 8)
    for name in ("actions", "log_probs", "values", "rewards", "dones"):
        assert getattr(batch, name).shape == (T, N), name
    assert batch.states is buf.states and batch.actions is buf.actions  # views of the buffer, no copies
    # the algorithms flatten time-major: index t * N + n
    assert torch.equal(batch.states.flatten(0, 1)[N + 2], buf.states[1, 2])
    assert batch.actions.flatten().tolist() == list(range(T * N))
    assert RolloutBuffer(T, N, S, 8).batch().parent_probs is None  # kept for distillation only
    buf.success[:] = True
    buf.success[1, 2] = False  # one wrong answer fails the whole episode
    assert buf.episode_successes().tolist() == [True, True, False, True]
