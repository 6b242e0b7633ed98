"""Atomic file writes: the complete new content under the final name, or the old file untouched."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from wmil import atomic

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
