"""Checkpoints: round trips, fingerprints, and a clear error for every damaged file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from wmil.training.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint


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
    # pickle refuses a local function: AttributeError up to Python 3.13, PicklingError from 3.14
    with pytest.raises((AttributeError, pickle.PicklingError), match="pickle"):
        save_checkpoint(path, {"fingerprint": "a", "bad": lambda: None})  # not picklable
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert load_checkpoint(path)["env_steps"] == 1
