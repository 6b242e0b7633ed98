"""Reward vectors and the reward computer, the rollout buffer's returns, checkpoints and atomic
file writes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
from pathlib import Path

import pytest
import torch

from wmil import atomic
from wmil.envs.env import RewardVector
from wmil.parents import DeterministicParent
from wmil.tasks import TASKS, make_task
from wmil.training.buffer import RolloutBatch, RolloutBuffer, discounted_returns, gae
from wmil.training.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint
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


# --------------------------------------------------------------------------------------------
# RolloutBuffer and return estimators
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _state():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    return {
        "fingerprint": "0123456789abcdef",
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": torch.Generator().manual_seed(3).get_state(),
        "env_steps": 1250,
        "baseline": 0.375,
        "curve": [{"env_steps": 250, "success_rate": 0.5}],
        "name": "run",
    }


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    state = _state()
    save_checkpoint(path, state)
    assert path.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]
    loaded = load_checkpoint(path)
    assert loaded["format_version"] == FORMAT_VERSION
    _assert_same({k: v for k, v in loaded.items() if k != "format_version"}, state)
    # a matching fingerprint loads as well
    _assert_same(load_checkpoint(path, fingerprint="0123456789abcdef"), loaded)
    # and the model weights restore
    model = torch.nn.Linear(4, 3)
    model.load_state_dict(loaded["model"])
    assert torch.equal(model.weight, state["model"]["weight"])


def test_checkpoint_overwrite(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": "a", "env_steps": 1})
    save_checkpoint(path, {"fingerprint": "a", "env_steps": 2})
    assert load_checkpoint(path)["env_steps"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_checkpoint_wrong_fingerprint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": "aaaa", "env_steps": 1})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, fingerprint="bbbb")
    message = str(info.value)
    assert str(path) in message
    assert "different configuration" in message
    assert "aaaa" in message and "bbbb" in message


def test_checkpoint_without_fingerprint_is_a_different_configuration(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"env_steps": 1})
    with pytest.raises(CheckpointError, match="different configuration"):
        load_checkpoint(path, fingerprint="bbbb")


def test_checkpoint_not_found(tmp_path):
    path = tmp_path / "missing" / "checkpoint.pt"
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "not found" in str(info.value) and str(path) in str(info.value)


def test_checkpoint_error_is_a_runtime_error():
    assert issubclass(CheckpointError, RuntimeError)


def _valid_bytes(tmp_path) -> bytes:
    good = tmp_path / "good.pt"
    save_checkpoint(good, _state())
    return good.read_bytes()


CORRUPTIONS = {
    "truncated-to-10-bytes": lambda data: data[:10],
    "empty": lambda data: b"",
    "zero-bytes": lambda data: b"\x00" * 512,
    "digit": lambda data: b"0",
    "bad-pickle-magic": lambda data: b"\x80\x04K\x01.",
    "zip-header-then-garbage": lambda data: b"PK\x03\x04" + b"\x11" * 200,
    "middle-overwritten": lambda data: data[:100] + b"\xff" * 200 + data[300:],
}

# Corruptions on which torch.load raises OSError (a truncated checkpoint of a few kB: the zip
# reader seeks before the file start) or KeyError / IndexError (text: the legacy unpickler);
# load_checkpoint must still answer with a CheckpointError.
MORE_CORRUPTIONS = {
    "truncated-half": lambda data: data[: len(data) // 2],
    "truncated-last-byte": lambda data: data[:-1],
    "text": lambda data: b"hello world",
    "single-dot": lambda data: b".",
    "single-h": lambda data: b"h",
}


def _check_corrupt(tmp_path, corrupt, data=None):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(corrupt(_valid_bytes(tmp_path) if data is None else data))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    assert "corrupt" in message


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_checkpoint_corrupt(tmp_path, corrupt):
    _check_corrupt(tmp_path, corrupt)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("corrupt", [lambda d: d[: len(d) // 2], lambda d: d[:-1]], ids=["half", "last-byte"])
def test_small_checkpoint_truncated(tmp_path, corrupt):
    small = tmp_path / "small.pt"
    save_checkpoint(small, {"fingerprint": "a"})
    _check_corrupt(tmp_path, corrupt, small.read_bytes())


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("corrupt", MORE_CORRUPTIONS.values(), ids=MORE_CORRUPTIONS.keys())
def test_checkpoint_more_corruptions_are_clear_errors(tmp_path, corrupt):
    _check_corrupt(tmp_path, corrupt)


@pytest.mark.parametrize("payload", [torch.arange(3), [1, 2], {"fingerprint": "a"}, {"format_version": 999}])
def test_checkpoint_not_a_wmil_checkpoint(tmp_path, payload):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "not a WMIL checkpoint" in str(info.value)


def test_checkpoint_refuses_arbitrary_objects(tmp_path):
    """``weights_only=True``: a pickled arbitrary object is not executed/loaded."""
    path = tmp_path / "evil.pt"
    torch.save({"format_version": FORMAT_VERSION, "obj": Path("/etc")}, path)
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        load_checkpoint(path)


def test_failed_save_keeps_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": "a", "env_steps": 1})
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_checkpoint(path, {"fingerprint": "a", "bad": lambda: None})  # not picklable
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert load_checkpoint(path)["env_steps"] == 1


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------

OBJ = {"b": [1, 2, 3], "a": {"nested": 0.5}, "text": "x" * 10_000}


def test_write_json_content_and_no_temp_files(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    returned = atomic.write_json(path, OBJ)
    assert Path(returned) == path
    assert json.loads(path.read_text()) == OBJ
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"')  # sorted keys
    assert sorted(p.name for p in path.parent.iterdir()) == ["metrics.json"]


def test_write_json_file_mode_follows_umask(tmp_path):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, OBJ)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_write_json_replaces_atomically(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"old": True})
    calls = []
    real_replace = os.replace
    real_fsync = os.fsync

    def spy_replace(src, dst):
        # the complete new content is in the temp file before it takes the final name
        assert json.loads(Path(src).read_text()) == OBJ
        assert json.loads(Path(dst).read_text()) == {"old": True}
        calls.append((Path(src), Path(dst)))
        real_replace(src, dst)

    def spy_fsync(fd):
        # until the rename, the final name still holds the old, complete content
        expected = OBJ if calls else {"old": True}
        assert json.loads(path.read_text()) == expected
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    atomic.write_json(path, OBJ)
    assert len(calls) == 1
    src, dst = calls[0]
    assert dst == path
    assert src.parent == path.parent and src != path
    assert not src.exists()
    assert json.loads(path.read_text()) == OBJ
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_write_json_failure_leaves_original_untouched(tmp_path, monkeypatch, exc):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"old": True})
    before = path.read_bytes()

    def failing_fsync(fd):
        raise exc

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(type(exc)):
        atomic.write_json(path, OBJ)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_write_json_unserialisable_leaves_original_untouched(tmp_path):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"old": True})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        atomic.write_json(path, {"bad": object()})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_write_text_failure_without_original(tmp_path, monkeypatch):
    path = tmp_path / "new.txt"

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic.write_text(path, "hello")
    assert list(tmp_path.iterdir()) == []
