"""The package reads in the order data flows: no module imports from a later stage.

tasks -> config -> parents -> envs -> models -> training -> evaluation -> reporting -> cli, on a
foundation of small helpers every stage may use; benchmarks sit apart (only the CLI calls them).
Every import counts, also those inside functions; an ``if __name__ == "__main__":`` block is an
entry point (it may call the CLI), not a dependency."""

from __future__ import annotations

from pathlib import Path

import pytest

from wmil import provenance
from wmil.provenance import module_file

PACKAGE = Path(__file__).resolve().parents[1] / "wmil"
#: Each stage's modules (paths inside the package; a folder holds all of its modules), in order.
STAGES = (
    ("foundation", ("__init__.py", "errors.py", "atomic.py", "jobs.py", "provenance.py", "layout.py", "seeding.py")),
    ("tasks", ("tasks/",)),
    ("config", ("config.py",)),
    ("parents", ("parents/",)),
    ("envs", ("envs/",)),
    ("models", ("models/",)),
    ("training", ("training/",)),
    ("evaluation", ("evaluation/",)),
    ("reporting", ("reporting/",)),
    ("bench", ("bench/",)),
    ("cli", ("cli.py", "__main__.py")),
)


def stage_of(module_path: str) -> int:
    for rank, (_, members) in enumerate(STAGES):
        if any(module_path == m or (m.endswith("/") and module_path.startswith(m)) for m in members):
            return rank
    raise AssertionError(f"wmil/{module_path}: in no stage of STAGES; add it where it belongs")


def wmil_imports(path: Path) -> list[tuple[int, str]]:
    """Every import of a wmil module, those that only type checkers read included."""
    return provenance.wmil_imports(path, type_checking=True)


MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_no_import_points_to_a_later_stage(module):
    own = stage_of(module)
    for line, name in wmil_imports(PACKAGE / module):
        target = module_file(name)
        assert stage_of(target) <= own, (
            f"wmil/{module}:{line} imports {name} ({STAGES[stage_of(target)][0]}), a later stage than its own "
            f"({STAGES[own][0]})")


def test_benchmarks_are_called_by_the_cli_alone():
    for module in MODULES:
        if stage_of(module) == stage_of("cli.py") or module.startswith("bench/"):
            continue
        assert not [n for _, n in wmil_imports(PACKAGE / module) if n.startswith("wmil.bench")], module


def test_the_check_catches_a_backward_import(tmp_path):
    """The test itself fails on what it must catch: a stage importing from a later one."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from wmil.training.trainer import Trainer\n")
    [(line, name)] = wmil_imports(bad)
    assert (line, name) == (2, "wmil.training.trainer")
    assert stage_of(module_file(name)) > stage_of("envs/env.py")
    main = tmp_path / "main.py"
    main.write_text('if __name__ == "__main__":\n    from wmil.cli import main\n')
    assert wmil_imports(main) == []
