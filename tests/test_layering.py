"""The package reads in the order data flows: no module imports from a later stage, and within a
stage the imports go one way (no module imports one that imports it back, however indirectly).

tasks -> config -> parents -> envs -> models -> training -> evaluation -> reporting -> cli, on a
foundation of small helpers every stage may use; benchmarks sit apart (only the CLI calls them).
Every import counts, also those inside functions and those only type checkers read; an ``if
__name__ == "__main__":`` block is an entry point (the plan's ``python -m wmil.training.trainer``
calls the CLI), not a dependency: the one exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wmil import provenance
from wmil.provenance import module_file

PACKAGE = Path(__file__).resolve().parents[1] / "wmil"
#: Each stage's modules (paths inside the package; a folder holds all of its modules), in order.
STAGES = (
    ("foundation", ("__init__.py", "errors.py", "atomic.py", "jobs.py", "provenance.py", "layout.py", "seeding.py",
                    "results.py")),
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


def own_stage_imports(module: str, path: Path | None = None) -> list[str]:
    """The other modules of ``module``'s stage that it imports (its file, or the one at ``path``)."""
    targets = {module_file(name) for _, name in wmil_imports(path or PACKAGE / module)}
    return sorted(t for t in targets if t != module and stage_of(t) == stage_of(module))


def cycle_from(module: str, imports: Callable[[str], list[str]] = own_stage_imports) -> list[str]:
    """The shortest chain of ``imports`` that leads from ``module`` back to it, ``[module, ...,
    module]``; empty if none does."""
    came_from: dict[str, str] = {}
    frontier = [module]
    while frontier:
        reached = []
        for here in frontier:
            for there in imports(here):
                if there == module:
                    chain = [here]
                    while chain[-1] != module:
                        chain.append(came_from[chain[-1]])
                    return [*reversed(chain), module]
                if there not in came_from:
                    came_from[there] = here
                    reached.append(there)
        frontier = reached
    return []


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_one_of_its_stage_that_imports_it_back(module):
    cycle = cycle_from(module)
    assert not cycle, (f"imports within the {STAGES[stage_of(module)][0]} stage go round: "
                       f"{' -> '.join(f'wmil/{m}' for m in cycle)}; move what one of them needs so that they go one way")


def test_the_check_catches_an_import_back(tmp_path):
    """The test itself fails on what it must catch: the registry naming the rules' ``Task`` for the
    type checker while the rules import the registry (the edge this check closed), also through a
    module between them; the plan's entry point (a ``__main__`` block) is no import."""
    fake = tmp_path / "registry.py"

    def with_registry(source: str) -> Callable[[str], list[str]]:
        fake.write_text(source)
        return lambda m: own_stage_imports(m, fake if m == "tasks/registry.py" else None)

    back = with_registry("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wmil.tasks.rules import Task\n")
    assert cycle_from("tasks/rules.py", back) == ["tasks/rules.py", "tasks/registry.py", "tasks/rules.py"]
    assert cycle_from("tasks/registry.py", back) == ["tasks/registry.py", "tasks/rules.py", "tasks/registry.py"]
    around = with_registry("def f():\n    from wmil.tasks.state import State\n")  # state imports the rules
    assert cycle_from("tasks/rules.py", around) == [
        "tasks/rules.py", "tasks/registry.py", "tasks/state.py", "tasks/rules.py"]
    entry = with_registry('if __name__ == "__main__":\n    from wmil.tasks.rules import make_task\n')
    assert cycle_from("tasks/rules.py", entry) == []
    assert cycle_from("tasks/rules.py") == []


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
