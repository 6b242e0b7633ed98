"""Adding a task exactly as the README's "Add a task" says (one class, one registry line, the schema
regenerated with the command it names) passes the tests with no other edit: done in a scratch copy
of the repository, whose unit tests (about 2 minutes of one core) then run the new task wherever
they run every task of the registry."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The new task, written to the README's list: a ``name``, its ``problem_slots``, its ``rule()`` in
#: words, ``level_card(level)``, ``_enumerate(level)`` for the 3 levels and ``answer(states)``, every
#: answer in ``0..A-1``. ``{name}`` and ``{cls}`` come from the README's registry line.
NEW_TASK = '''

class {cls}(Task):
    """``State: b0, b1, b2, b3`` (bits); the correct action is their parity."""

    name = "{name}"

    @property
    def problem_slots(self) -> tuple[Slot, ...]:
        return tuple(Slot(f"b{{i}}", 2) for i in range(4))

    def rule(self) -> str:
        return "b0, b1, b2 and b3 are bits; the correct action is 1 if an odd number of them are 1, else 0."

    def level_card(self, level: int) -> str:
        return f"The first {{level + 2}} bits may be 0 or 1; the others are 0."

    def _enumerate(self, level: int) -> torch.Tensor:
        free = torch.cartesian_prod(*[torch.arange(2)] * (level + 2))
        return torch.cat([free, torch.zeros(len(free), 2 - level, dtype=torch.long)], dim=1)

    def answer(self, states: torch.Tensor) -> torch.Tensor:
        return states[:, :4].sum(dim=1) % 2
'''

#: Modules whose tests run every task of the registry: each must run the new task too.
TASK_PARAMETRIZED = {"test_envs", "test_rewards", "test_models", "test_baselines", "test_programs",
                     "test_llm_protocols", "test_representation", "test_split", "test_tabular"}


def readme_steps() -> tuple[str, str, str, str]:
    """What the README's "Add a task" section says to write: ``(registry line, task name, class
    name, schema command)``."""
    readme = (ROOT / "README.md").read_text()
    section = " ".join(readme.split("## Add a task", 1)[1].split("\n## ", 1)[0].split())
    line = re.search(r'`("(\w+)": "wmil\.tasks\.rules:(\w+)")`', section)
    command = re.search(r"`(wmil schema --out [^`]+)`", section)
    assert line and command, f"the README's Add a task section names no registry line or schema command: {section}"
    return line.group(1), line.group(2), line.group(3), command.group(1)


def scratch_copy(target: Path) -> Path:
    """The repository's files as they are now (tracked and untracked, less what git ignores)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def pytest_results(copy: Path, env: dict[str, str], *args: str) -> tuple[dict[str, str], str]:
    """Run pytest in ``copy``: ``({module::test: outcome}, output)``, outcome ``passed``, ``failed``
    or ``skipped``."""
    report = copy / "junit.xml"
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
                          "-m", "not integration", f"--junitxml={report}", *args],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    assert report.exists(), out.stdout[-6000:] + out.stderr[-3000:]
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcome = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
        outcomes[f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"] = outcome
    return outcomes, out.stdout[-6000:] + out.stderr[-3000:]


@pytest.mark.integration
def test_a_task_added_as_the_readme_says_passes_the_tests_of_every_task(tmp_path):
    registry_line, name, cls, schema_command = readme_steps()
    copy = scratch_copy(tmp_path / "repo")
    env = {**os.environ, "PYTHONPATH": str(copy)}  # the copy's wmil, not the installed one

    # the README's steps: the class, its registry line, the schema regenerated
    with (copy / "wmil/tasks/rules.py").open("a") as rules:
        rules.write(NEW_TASK.format(name=name, cls=cls))
    registry = copy / "wmil/tasks/registry.py"
    text = registry.read_text()
    assert text.count("\n})\n") == 1, "TASKS = TaskRegistry({...}) no longer ends the registry's entries"
    registry.write_text(text.replace("\n})\n", f"\n    {registry_line},\n}})\n"))
    schema_file = copy / schema_command.split()[-1]
    before = schema_file.read_text()
    command = subprocess.run([sys.executable, "-m", *schema_command.split()], cwd=copy, env=env,
                             capture_output=True, text=True, timeout=120)
    assert command.returncode == 0, command.stderr
    assert name not in before and name in schema_file.read_text()

    # the unit tests (what `make test-fast` runs), those of every task now on the new one too
    outcomes, output = pytest_results(copy, env, "tests")
    failed = sorted(test for test, outcome in outcomes.items() if outcome == "failed")
    assert outcomes and failed == [], "\n".join([*failed, output])
    reached = {test.partition("::")[0] for test, outcome in outcomes.items() if outcome == "passed" and name in test}
    missing = sorted(TASK_PARAMETRIZED - reached)
    assert missing == [], f"no test of {missing} ran the new task {name!r}"
