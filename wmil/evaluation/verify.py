"""``wmil verify``: did the freshly produced results reproduce the committed ones?

The contract: on the same machine and software every metric is byte-identical; on another machine
float kernels differ (torch picks other vector instructions), RL trajectories diverge from the
first update, and results can only be *statistically equivalent*. This compares every headline
number (each cell of ``summary.md``: held-out success, env steps to 90% and failed episodes to
99%, per experiment x task and over all tasks; each probability of improvement, the world-model
variants' against the ablation without one included; the MVP verdict and
the seeds passing each of its criteria; the LLM audit's J per protocol x task x level; each LLM
run's predicted interval and the seeds inside it) of the results in the working tree with the
committed ones (a git revision, or a folder), and says for each:

* ``identical``: the same value;
* ``equivalent``: the two 95% intervals overlap. Two independent estimates whose 95% intervals do
  not overlap differ at about the 0.6% level (Schenker & Gentleman, 2001), so the test flags only
  clear disagreements; with 5 seeds a smaller difference cannot be told from chance anyway. A
  number with no interval (the audit's J of a deterministic judge) is equivalent within
  :data:`J_TOLERANCE`; a count of seeds (inside a prediction, passing an MVP criterion) within
  :data:`SEED_TOLERANCE`, one seed crossing an edge; the MVP's overall verdict must agree;
* ``different``: neither: a real disagreement, and the command exits 1;
* ``missing``: committed but not produced afresh (its job failed or was not run): exits 1 too,
  since nothing reproduced it; a number only the fresh results have is ``new`` and harmless.

``results/metrics/machine.json`` (written by ``wmil summarize``) says where each side was made.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmil import layout, results
from wmil.errors import ConfigError, MissingResult
from wmil.results import CURRICULUM_MEASURE_KEYS, FAILURES_TO_MASTERY, STEPS_TO_90

#: The result files compared, relative to a results folder (``layout`` spells them from the repository).
SUMMARY_FILE, CRITERIA_FILE, AUDIT_FILE, MACHINE_FILE = (
    path.relative_to(layout.RESULTS).as_posix() for path in (layout.SUMMARY, layout.MVP_CRITERIA, layout.LLM_AUDIT, layout.MACHINE))
FILES = (SUMMARY_FILE, CRITERIA_FILE, AUDIT_FILE, MACHINE_FILE)
J_TOLERANCE = 0.1  # an LLM served by other float kernels may answer a few states differently
SEED_TOLERANCE = 1  # seeds inside a prediction or passing an MVP criterion: one may cross an edge


def _produced(read: Callable[..., Any], *args: Any) -> Any:
    """``read(*args)``: a result, or None where it is absent or its job failed (nothing produced it)."""
    try:
        return read(*args)
    except (FileNotFoundError, MissingResult):
        return None


def read_results(folder: Path) -> dict[str, Any]:
    """The result files under ``folder`` (None: absent, or a failure record)."""
    return {name: _produced(results.read_result, Path(folder) / name) for name in FILES}


def read_committed(against: str, results_dir: Path) -> dict[str, Any]:
    """The committed result files: from folder ``against`` if it is one, else from git revision
    ``against`` (paths relative to the repository of ``results_dir``)."""
    if Path(against).is_dir():
        return read_results(Path(against))
    out = {}
    for name in FILES:
        rel = (results_dir / name).resolve().relative_to(_toplevel(results_dir))
        shown = subprocess.run(["git", "show", f"{against}:{rel.as_posix()}"], cwd=results_dir, capture_output=True, text=True)
        if shown.returncode != 0 and "exists on disk, but not in" not in shown.stderr and "does not exist" not in shown.stderr:
            raise ConfigError(f"--against {against}: not a folder, and git cannot read it: {shown.stderr.strip()}")
        out[name] = None if shown.returncode != 0 else _produced(results.parse, shown.stdout, f"{against}:{rel.as_posix()}")
    return out


def _toplevel(path: Path) -> Path:
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True)
    if top.returncode != 0:
        raise ConfigError(f"{path}: not inside a git repository; give --against a folder of committed results")
    return Path(top.stdout.strip()).resolve()


def _absent(name: str, old: Any, new: Any) -> dict[str, Any] | None:
    """Neither side has the number (e.g. no audit to predict from): no row."""
    if old is None and new is None:
        return None
    return {"number": name, "committed": old, "fresh": new, "verdict": "missing" if new is None else "new"}


def _exact(name: str, old: Any, new: Any, tolerance: float = 0.0) -> dict[str, Any] | None:
    """A number without an interval: identical, equivalent within ``tolerance``, or different."""
    if old is None or new is None:
        return _absent(name, old, new)
    verdict = "identical" if old == new else (
        "equivalent" if tolerance and abs(old - new) <= tolerance else "different")
    return {"number": name, "committed": old, "fresh": new, "verdict": verdict}


def _estimate(name: str, old: dict | None, new: dict | None, value: str = "value") -> dict[str, Any] | None:
    """A number with a 95% interval ``{value, lo, hi}``: equivalent when the intervals overlap."""
    if old is None or new is None:
        return _absent(name, old, new)
    old, new = {**old, "value": old[value]}, {**new, "value": new[value]}
    if old["value"] == new["value"] and old["lo"] == new["lo"] and old["hi"] == new["hi"]:
        verdict = "identical"
    elif old["lo"] <= new["hi"] and new["lo"] <= old["hi"]:
        verdict = "equivalent"
    else:
        verdict = "different"
    interval = lambda e: [e["value"], e["lo"], e["hi"]]  # noqa: E731
    return {"number": name, "committed": interval(old), "fresh": interval(new), "verdict": verdict}


def _median(name: str, old: dict | None, new: dict | None) -> dict[str, Any] | None:
    """A Kaplan-Meier median ``{median, lo, hi, budget}`` (None: not reached by half the runs, or
    an open end): equivalent when the intervals overlap. An open upper end reaches to infinity; an
    open lower end means the lower band never fell to one half either, so the interval starts at
    the budget (fewer than half of the runs got there at all)."""
    if old is None or new is None:
        return _absent(name, old, new)
    ends = [(e["lo"] if e["lo"] is not None else e.get("budget", float("inf")),
             e["hi"] if e["hi"] is not None else float("inf")) for e in (old, new)]
    keys = ("median", "lo", "hi")
    if all(old[k] == new[k] for k in keys):
        verdict = "identical"
    elif ends[0][0] <= ends[1][1] and ends[1][0] <= ends[0][1]:
        verdict = "equivalent"
    else:
        verdict = "different"
    return {"number": name, "committed": [old[k] for k in keys], "fresh": [new[k] for k in keys], "verdict": verdict}


def _number(name: str, old: Any, new: Any, tolerance: float) -> dict[str, Any] | None:
    """A row for one number, compared as its shape says: a Kaplan-Meier median, an estimate or a
    probability of improvement with its interval, or a plain number (within ``tolerance``)."""
    if old is None or new is None:
        return _absent(name, old, new)
    if isinstance(old, dict):
        return _median(name, old, new) if "median" in old else _estimate(name, old, new, value="p" if "p" in old else "value")
    return _exact(name, old, new, tolerance)


class _Every:
    """In a claim's path: every key either side has, in sorted order."""


EVERY = _Every()


@dataclass(frozen=True)
class Claim:
    """Headline numbers of one kind. ``path`` leads to them in result ``file`` (or in what ``view``
    makes of it), one step a level: a key, a tuple of keys (each in turn) or :data:`EVERY`;
    ``name`` formats a row's name from the keys those steps chose (``labels`` renames some);
    numbers without an interval are equivalent within ``tolerance``."""

    file: str
    path: tuple[str | tuple[str, ...] | _Every, ...]
    name: str
    view: Callable[[Any], Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tolerance: float = 0.0

    def source(self, files: dict[str, Any]) -> Any:
        return files[self.file] if self.view is None else self.view(files[self.file])

    def numbers(self, committed: dict[str, Any], fresh: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
        """``(keys chosen, committed, fresh)`` for each number the path reaches on either side."""
        def walk(a: Any, b: Any, steps: tuple[str | tuple[str, ...] | _Every, ...], chosen: tuple[str, ...]
                 ) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
            if not steps:
                yield chosen, a, b
                return
            step, a, b = steps[0], (a if isinstance(a, dict) else {}), (b if isinstance(b, dict) else {})
            if isinstance(step, str):
                yield from walk(a.get(step), b.get(step), steps[1:], chosen)
                return
            for key in sorted(set(a) | set(b)) if isinstance(step, _Every) else step:
                yield from walk(a.get(key), b.get(key), steps[1:], (*chosen, key))

        yield from walk(self.source(committed), self.source(fresh), self.path, ())

    def rows(self, committed: dict[str, Any], fresh: dict[str, Any]) -> Iterator[dict[str, Any] | None]:
        for keys, old, new in self.numbers(committed, fresh):
            yield _number(self.name.format(*(self.labels.get(k, k) for k in keys)), old, new, self.tolerance)


def _llm_numbers(summary: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Per LLM experiment and task: its predicted success (an interval) and its seeds inside the prediction."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for experiment, by_task in ((summary or {}).get("llm") or {}).items():
        for task, outcome in by_task.items():
            prediction, inside = outcome.get("prediction"), outcome.get("inside")
            out.setdefault(experiment, {})[task] = {
                "predicted success": {"value": prediction["mean"], "lo": prediction["interval"][0],
                                      "hi": prediction["interval"][1]} if prediction else None,
                "seeds inside the prediction": None if inside is None else sum(inside)}
    return out


def _seeds_passing(criteria: dict[str, Any] | None) -> dict[str, int]:
    """How many seeds pass each of the MVP's criteria."""
    counts: dict[str, int] = {}
    for seed in (criteria or {}).get("seeds", {}).values():
        for check, passed in seed["checks"].items():
            counts[check] = counts.get(check, 0) + bool(passed)
    return counts


#: Every headline number, in the order of the rows.
CLAIMS = (
    Claim(SUMMARY_FILE, ("experiments", EVERY, ("success_greedy", "held_out_success_greedy", FAILURES_TO_MASTERY, STEPS_TO_90),
                    EVERY), "{0} {2} {1}", labels={STEPS_TO_90: "env steps to 90% (Kaplan-Meier median)"}),
    Claim(SUMMARY_FILE, ("probability_of_improvement", EVERY, EVERY), "P(method > {0}) {1}"),
    Claim(SUMMARY_FILE, ("rule", EVERY, "tabular", ("training", "held_out")), "tabular reference {0} {1} success"),
    Claim(SUMMARY_FILE, ("world_model", "variants", EVERY, ("p_success", "p_steps"), EVERY), "P({0} > its reference) {2} {1}"),
    Claim(SUMMARY_FILE, ("curriculum", CURRICULUM_MEASURE_KEYS, "p", EVERY), "P(curriculum > its reference) {1} {0}"),
    Claim(SUMMARY_FILE, ("curriculum", "reached_top", EVERY), "curriculum runs that reached the top level {0}",
          tolerance=SEED_TOLERANCE),
    Claim(SUMMARY_FILE, (EVERY, EVERY, ("predicted success", "seeds inside the prediction")), "{0} {1} {2}",
          view=_llm_numbers, tolerance=SEED_TOLERANCE),
    Claim(CRITERIA_FILE, ("passed",), "MVP criteria passed"),
    Claim(CRITERIA_FILE, (EVERY,), "MVP criterion {0}: seeds passing", view=_seeds_passing, tolerance=SEED_TOLERANCE),
    Claim(AUDIT_FILE, ("protocols", EVERY, "by_task_level", EVERY, EVERY, "j"), "LLM audit {0} {1} level {2} J",
          tolerance=J_TOLERANCE),
)


def compare(committed: dict[str, Any], fresh: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline number (:data:`CLAIMS`): ``number``, ``committed``, ``fresh``, ``verdict``."""
    return [row for claim in CLAIMS for row in claim.rows(committed, fresh) if row is not None]


def verify(results_dir: Path, against: str) -> tuple[dict[str, Any], int]:
    """The report (``rows``, ``counts``, both machines) of the results in ``results_dir`` against
    the committed ones, and the exit code: 1 on any difference."""
    fresh = read_results(results_dir)
    committed = read_committed(against, Path(results_dir))
    rows = compare(committed, fresh)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("identical", "equivalent", "different", "missing", "new")}
    report = {"against": against, "counts": counts, "committed_machine": committed[MACHINE_FILE],
              "fresh_machine": fresh[MACHINE_FILE], "rows": rows}
    return report, int(counts["different"] + counts["missing"] > 0)
