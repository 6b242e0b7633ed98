"""The code a job runs: its static import closure, hashed by syntax tree, with the registries'
unchosen alternatives left out; each fact checked against the package itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from wmil import provenance
from wmil.config import AlgorithmConfig
from wmil.parents import PARENT_NAMES
from wmil.provenance import (
    COMPONENT_CODE,
    EVALUATION_ENTRY,
    PACKAGE,
    TRAINING_ENTRY,
    closure,
    unused_components,
    wmil_imports,
)
from wmil.training.algorithms import ALGORITHMS

ROOT = Path(__file__).resolve().parents[1]
#: The modules that pick one choice of a component by name: the only ones that may import them all.
REGISTRIES = ("training/algorithms.py", "parents/__init__.py")
#: Each entry with the choices its pipeline rule makes (workflow/rules/*.smk).
HASHED = [(TRAINING_ENTRY, {"algorithm": a, "parent": p}) for a in ALGORITHMS for p in PARENT_NAMES] + [
    (EVALUATION_ENTRY, {"parent": "deterministic"}), ("evaluation/sanity.py", {"parent": "deterministic"}),
    ("evaluation/representation.py", {"parent": "deterministic"})]


def _path(module: str) -> str:
    return Path(sys.modules[module].__file__).relative_to(PACKAGE).as_posix()


def test_component_code_lists_every_choice_of_the_registries():
    algorithms = {n for c, n in COMPONENT_CODE if c == "algorithm"}
    assert algorithms == set(ALGORITHMS) == set(typing.get_args(typing.get_type_hints(AlgorithmConfig)["name"]))
    assert {n for c, n in COMPONENT_CODE if c == "parent"} == set(PARENT_NAMES)
    for name, cls in ALGORITHMS.items():
        assert _path(cls.__module__) in COMPONENT_CODE[("algorithm", name)]
    from wmil.parents.llm.parent import ParentLLM

    assert _path(ParentLLM.__module__).startswith(COMPONENT_CODE[("parent", "llm")])
    with pytest.raises(ValueError, match="no code listed for \\[\\('algorithm', 'sac'\\)\\]"):
        unused_components(algorithm="sac")


@pytest.mark.parametrize("entry, choices", HASHED, ids=[f"{e}-{'-'.join(c.values())}" for e, c in HASHED])
def test_only_a_registry_imports_a_choice_that_the_hash_leaves_out(entry, choices):
    """Cutting the unchosen choices is sound: no other module of the closure imports them."""
    excluded = unused_components(**choices)
    assert excluded
    kept = set(closure((entry,), excluded))
    for module in closure((entry,)):
        if provenance._matches(module, excluded):  # a choice's own modules import each other
            continue
        targets = {provenance.module_file(name) for _, name in wmil_imports(PACKAGE / module)}
        cut = {t for t in targets if provenance._matches(t, excluded)}
        assert not cut or module in REGISTRIES, f"wmil/{module} imports {sorted(cut)}, cut from {entry}'s code"
    assert not any(provenance._matches(m, excluded) for m in kept)


def test_the_closure_holds_every_module_a_training_run_and_its_evaluation_import(tmp_path):
    """Static analysis against the interpreter: a short PPO run and its evaluation load no wmil
    module outside the closure, but those of other algorithms (the registry imports them all)."""
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from wmil.cli import main\n"
        f"main(['train', '--params', {str(ROOT / 'params.yaml')!r}, '--experiment', 'ppo', '--task', 'sequence_next',"
        f" '--max-steps', '256', '--run-dir', {str(tmp_path / 'run')!r}, '--no-progress', '--evaluate'])\n"
        "import wmil\n"
        "root = Path(wmil.__file__).parent\n"
        "print(json.dumps(sorted(Path(m.__file__).relative_to(root).as_posix() for n, m in list(sys.modules.items())"
        " if n.split('.')[0] == 'wmil' and getattr(m, '__file__', None))))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    ran = set(closure((TRAINING_ENTRY,), unused_components(algorithm="ppo", parent="deterministic")))
    ran |= set(closure((EVALUATION_ENTRY,), unused_components(parent="deterministic")))
    commands = {"cli.py", "__main__.py", "errors.py", "layout.py", "jobs.py", "training/run_store.py"}  # around them
    other_algorithms = {p for (c, n), paths in COMPONENT_CODE.items() if c == "algorithm" for p in paths}
    assert loaded - ran - commands - other_algorithms == set()
    assert "training/ppo.py" in ran and "training/reinforce.py" not in ran and "parents/llm/parent.py" not in ran


def test_entry_points_and_type_checking_blocks_are_no_dependencies(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nfrom wmil import errors\nif TYPE_CHECKING:\n"
                      "    from wmil.config import Params\ndef f():\n    from wmil.training import ppo\n"
                      "if __name__ == '__main__':\n    from wmil.cli import main\n")
    assert wmil_imports(module) == [(2, "wmil.errors"), (6, "wmil.training.ppo")]
    assert wmil_imports(module, type_checking=True) == [(2, "wmil.errors"), (4, "wmil.config"),
                                                        (6, "wmil.training.ppo")]


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """An editable copy of the package that the hashes read (their caches emptied around it)."""
    copy = tmp_path / "wmil"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE", copy)
    for cached in (provenance.closure, provenance.code_hash):
        cached.cache_clear()
    yield copy
    for cached in (provenance.closure, provenance.code_hash):
        cached.cache_clear()


def _hashes() -> dict[str, str]:
    provenance.closure.cache_clear()
    provenance.code_hash.cache_clear()
    return {a: provenance.training_code_hash(a, "deterministic") for a in ALGORITHMS} | {
        "llm": provenance.training_code_hash("ppo", "llm"), "evaluation": provenance.evaluation_code_hash()}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_comments_docstrings_and_positions_change_no_hash_but_code_does(package_copy):
    base = _hashes()
    assert len(set(base.values())) == len(base)
    _edit(package_copy / "config.py", '"""Typed configuration', '"""Typed, validated configuration')
    _edit(package_copy / "config.py", "import copy\n", "import copy  # deep copies\n\n\n")
    _edit(package_copy / "training/ppo.py", "    def update(", "    # one update per rollout\n    def update(")
    assert _hashes() == base
    _edit(package_copy / "training/ppo.py", "value_loss = 0.5 *", "value_loss = 0.25 *")
    after = _hashes()
    assert {k for k in base if after[k] != base[k]} == {"ppo", "llm"}  # the PPO runs, LLM-taught ones too
    _edit(package_copy / "parents/llm/prompts.py", "def ", "def _unused():\n    return 1\n\n\ndef ")
    assert {k for k in base if _hashes()[k] != after[k]} == {"llm"}
    _edit(package_copy / "config.py", "return True", "return 1 == 1")
    assert all(v != after[k] for k, v in _hashes().items())  # every run reads the config
