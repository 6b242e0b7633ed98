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

import json
import subprocess
from pathlib import Path
from typing import Any

from wmil.errors import ConfigError
from wmil.evaluation.summary import CURRICULUM_MEASURES

FILES = ("metrics/summary.json", "metrics/mvp_criteria.json", "metrics/llm_audit.json", "metrics/machine.json")
SCORES = ("success_greedy", "held_out_success_greedy", "failures_to_0.99")
J_TOLERANCE = 0.1  # an LLM served by other float kernels may answer a few states differently
SEED_TOLERANCE = 1  # seeds inside a prediction or passing an MVP criterion: one may cross an edge


def read_committed(against: str, results: Path) -> dict[str, Any]:
    """The committed result files: from folder ``against`` if it is one, else from git revision
    ``against`` (paths relative to the repository of ``results``)."""
    out = {}
    folder = Path(against)
    for name in FILES:
        if folder.is_dir():
            path = folder / name
            out[name] = json.loads(path.read_text()) if path.exists() else None
            continue
        rel = (results / name).resolve().relative_to(_toplevel(results))
        shown = subprocess.run(["git", "show", f"{against}:{rel.as_posix()}"], cwd=results, capture_output=True, text=True)
        if shown.returncode != 0 and "exists on disk, but not in" not in shown.stderr and "does not exist" not in shown.stderr:
            raise ConfigError(f"--against {against}: not a folder, and git cannot read it: {shown.stderr.strip()}")
        out[name] = json.loads(shown.stdout) if shown.returncode == 0 else None
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


def compare(committed: dict[str, Any], fresh: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline number: ``number``, ``committed``, ``fresh``, ``verdict``."""
    rows = []
    old, new = committed["metrics/summary.json"] or {}, fresh["metrics/summary.json"] or {}
    for experiment in sorted(set(old.get("experiments", {})) | set(new.get("experiments", {}))):
        a, b = old.get("experiments", {}).get(experiment, {}), new.get("experiments", {}).get(experiment, {})
        for score in SCORES:
            tasks = sorted(set(a.get(score, {})) | set(b.get(score, {})))
            for task in tasks:
                rows.append(_estimate(f"{experiment} {task} {score}", a.get(score, {}).get(task), b.get(score, {}).get(task)))
        for task in sorted(set(a.get("steps_to_0.9", {})) | set(b.get("steps_to_0.9", {}))):
            rows.append(_median(f"{experiment} {task} env steps to 90% (Kaplan-Meier median)",
                                a.get("steps_to_0.9", {}).get(task), b.get("steps_to_0.9", {}).get(task)))
    improvements = [x.get("probability_of_improvement", {}) for x in (old, new)]
    for baseline in sorted(set(improvements[0]) | set(improvements[1])):
        a, b = improvements[0].get(baseline, {}), improvements[1].get(baseline, {})
        for task in sorted(set(a) | set(b)):
            rows.append(_estimate(f"P(method > {baseline}) {task}", a.get(task), b.get(task), value="p"))
    rules = [x.get("rule", {}) for x in (old, new)]
    for task in sorted(set(rules[0]) | set(rules[1])):
        a, b = (r.get(task, {}).get("tabular") or {} for r in rules)
        for part in ("training", "held_out"):
            rows.append(_estimate(f"tabular reference {task} {part} success", a.get(part), b.get(part)))
    variants = [x.get("world_model", {}).get("variants", {}) for x in (old, new)]
    for variant in sorted(set(variants[0]) | set(variants[1])):
        a, b = variants[0].get(variant, {}), variants[1].get(variant, {})
        for key in ("p_success", "p_steps"):
            for task in sorted(set(a.get(key, {})) | set(b.get(key, {}))):
                rows.append(_estimate(f"P({variant} > its reference) {task} {key}", a.get(key, {}).get(task),
                                      b.get(key, {}).get(task), value="p"))
    comparisons = [x.get("curriculum") or {} for x in (old, new)]
    for measure in CURRICULUM_MEASURES:
        a, b = ((c.get(measure) or {}).get("p", {}) for c in comparisons)
        for task in sorted(set(a) | set(b)):
            rows.append(_estimate(f"P(curriculum > its reference) {task} {measure}", a.get(task), b.get(task), value="p"))
    reached = [c.get("reached_top") or {} for c in comparisons]
    for task in sorted(set(reached[0]) | set(reached[1])):
        rows.append(_exact(f"curriculum runs that reached the top level {task}", reached[0].get(task), reached[1].get(task),
                           tolerance=SEED_TOLERANCE))
    for experiment in sorted(set(old.get("llm", {})) | set(new.get("llm", {}))):
        a, b = old.get("llm", {}).get(experiment, {}), new.get("llm", {}).get(experiment, {})
        for task in sorted(set(a) | set(b)):
            runs = [x.get(task) or {} for x in (a, b)]
            predicted = [{"value": r["prediction"]["mean"], "lo": r["prediction"]["interval"][0],
                          "hi": r["prediction"]["interval"][1]} if r.get("prediction") else None for r in runs]
            rows.append(_estimate(f"{experiment} {task} predicted success", *predicted))
            inside = [sum(r["inside"]) if r.get("inside") is not None else None for r in runs]
            rows.append(_exact(f"{experiment} {task} seeds inside the prediction", *inside, tolerance=SEED_TOLERANCE))
    a, b = committed["metrics/mvp_criteria.json"], fresh["metrics/mvp_criteria.json"]
    if a is not None or b is not None:
        rows.append(_exact("MVP criteria passed", *[None if x is None else x["passed"] for x in (a, b)]))
        passing = [None if x is None else _seeds_passing(x) for x in (a, b)]
        for check in sorted(set(passing[0] or {}) | set(passing[1] or {})):
            rows.append(_exact(f"MVP criterion {check}: seeds passing",
                               *[None if p is None else p.get(check) for p in passing], tolerance=SEED_TOLERANCE))
    a, b = committed["metrics/llm_audit.json"] or {}, fresh["metrics/llm_audit.json"] or {}
    for protocol in sorted(set(a.get("protocols", {})) | set(b.get("protocols", {}))):
        levels_a = a.get("protocols", {}).get(protocol, {}).get("by_task_level", {})
        levels_b = b.get("protocols", {}).get(protocol, {}).get("by_task_level", {})
        for task in sorted(set(levels_a) | set(levels_b)):
            for level in sorted(set(levels_a.get(task, {})) | set(levels_b.get(task, {}))):
                j = [x.get(task, {}).get(level, {}).get("j") for x in (levels_a, levels_b)]
                rows.append(_exact(f"LLM audit {protocol} {task} level {level} J", *j, tolerance=J_TOLERANCE))
    return [row for row in rows if row is not None]


def _seeds_passing(criteria: dict[str, Any]) -> dict[str, int]:
    """How many seeds pass each of the MVP's criteria."""
    counts: dict[str, int] = {}
    for seed in criteria.get("seeds", {}).values():
        for check, passed in seed["checks"].items():
            counts[check] = counts.get(check, 0) + bool(passed)
    return counts


def verify(results: Path, against: str) -> tuple[dict[str, Any], int]:
    """The report (``rows``, ``counts``, both machines) and the exit code: 1 on any difference."""
    results = Path(results)
    fresh = {name: json.loads((results / name).read_text()) if (results / name).exists() else None for name in FILES}
    committed = read_committed(against, results)
    rows = compare(committed, fresh)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("identical", "equivalent", "different", "missing", "new")}
    report = {"against": against, "counts": counts, "committed_machine": committed["metrics/machine.json"],
              "fresh_machine": fresh["metrics/machine.json"], "rows": rows}
    return report, int(counts["different"] + counts["missing"] > 0)
