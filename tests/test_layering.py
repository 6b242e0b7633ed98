"""The package reads in the order data flows: no module imports from a later stage.

tasks -> config -> parents -> envs -> models -> training -> evaluation -> reporting -> cli, on a
foundation of small helpers every stage may use; benchmarks sit apart (only the CLI calls them).
Every import counts, also those inside functions; an ``if __name__ == "__main__":`` block is an
entry point (it may call the CLI), not a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


def module_file(name: str) -> str:
    """``wmil.a.b`` -> the path of its module inside the package (``a/b.py`` or ``a/b/__init__.py``)."""
    parts = name.split(".")[1:]
    if not parts:
        return "__init__.py"
    path = "/".join(parts)
    return f"{path}/__init__.py" if (PACKAGE / path).is_dir() else f"{path}.py"


def is_main_block(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def wmil_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a wmil module in ``path``, ``__main__`` blocks left out."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in tree.body if is_main_block(block) for n in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "wmil":
            names = [f"{node.module}.{a.name}" if (PACKAGE / module_file(node.module).removesuffix("__init__.py")
                                                    / a.name).with_suffix(".py").exists()
                     or (PACKAGE / module_file(node.module).removesuffix("__init__.py") / a.name).is_dir()
                     else node.module for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "wmil"]
    return found


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
