"""``wmil verify``: did the freshly produced results reproduce the committed ones?

The contract: on the same machine and software every metric is byte-identical; on another machine
float kernels differ (torch picks other vector instructions), RL trajectories diverge from the
first update, and results can only be *statistically equivalent*. This compares every headline
number (each cell of ``summary.md``: held-out success, env steps to 90% and failed episodes to
99%, per experiment x task and over all tasks; the MVP criteria; the LLM audit's J per protocol x
task x level) of the results in the working tree with the committed ones (a git revision, or a
folder), and says for each:

* ``identical``: the same value;
* ``equivalent``: the two 95% intervals overlap. Two independent estimates whose 95% intervals do
  not overlap differ at about the 0.6% level (Schenker & Gentleman, 2001), so the test flags only
  clear disagreements; with 5 seeds a smaller difference cannot be told from chance anyway. A
  number with no interval (the audit's J of a deterministic judge) is equivalent within
  :data:`J_TOLERANCE`; the MVP verdict must agree;
* ``different``: neither: a real disagreement, and the command exits 1.

``results/metrics/machine.json`` (written by ``wmil summarize``) says where each side was made.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from wmil.errors import ConfigError

FILES = ("metrics/summary.json", "metrics/mvp_criteria.json", "metrics/llm_audit.json", "metrics/machine.json")
SCORES = ("success_greedy", "steps_to_0.9_censored", "failures_to_0.99")
J_TOLERANCE = 0.1  # an LLM served by other float kernels may answer a few states differently


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


def _estimate(name: str, old: dict | None, new: dict | None) -> dict[str, Any]:
    if old is None or new is None:
        return {"number": name, "committed": old, "fresh": new, "verdict": "missing"}
    if old["value"] == new["value"] and old["lo"] == new["lo"] and old["hi"] == new["hi"]:
        verdict = "identical"
    elif old["lo"] <= new["hi"] and new["lo"] <= old["hi"]:
        verdict = "equivalent"
    else:
        verdict = "different"
    interval = lambda e: [e["value"], e["lo"], e["hi"]]  # noqa: E731
    return {"number": name, "committed": interval(old), "fresh": interval(new), "verdict": verdict}


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
    a, b = committed["metrics/mvp_criteria.json"], fresh["metrics/mvp_criteria.json"]
    if a is not None or b is not None:
        verdicts = [None if x is None else x["passed"] for x in (a, b)]
        rows.append({"number": "MVP criteria passed", "committed": verdicts[0], "fresh": verdicts[1],
                     "verdict": "identical" if verdicts[0] == verdicts[1] else "different"})
    a, b = committed["metrics/llm_audit.json"] or {}, fresh["metrics/llm_audit.json"] or {}
    for protocol in sorted(set(a.get("protocols", {})) | set(b.get("protocols", {}))):
        levels_a = a.get("protocols", {}).get(protocol, {}).get("by_task_level", {})
        levels_b = b.get("protocols", {}).get(protocol, {}).get("by_task_level", {})
        for task in sorted(set(levels_a) | set(levels_b)):
            for level in sorted(set(levels_a.get(task, {})) | set(levels_b.get(task, {}))):
                j = [x.get(task, {}).get(level, {}).get("j") for x in (levels_a, levels_b)]
                if None in j:
                    verdict = "missing"
                else:
                    verdict = "identical" if j[0] == j[1] else ("equivalent" if abs(j[0] - j[1]) <= J_TOLERANCE else "different")
                rows.append({"number": f"LLM audit {protocol} {task} level {level} J", "committed": j[0], "fresh": j[1],
                             "verdict": verdict})
    return rows


def verify(results: Path, against: str) -> tuple[dict[str, Any], int]:
    """The report (``rows``, ``counts``, both machines) and the exit code: 1 on any difference."""
    results = Path(results)
    fresh = {name: json.loads((results / name).read_text()) if (results / name).exists() else None for name in FILES}
    committed = read_committed(against, results)
    rows = compare(committed, fresh)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("identical", "equivalent", "different", "missing")}
    report = {"against": against, "counts": counts, "committed_machine": committed["metrics/machine.json"],
              "fresh_machine": fresh["metrics/machine.json"], "rows": rows}
    return report, int(counts["different"] > 0)
