"""``wmil verify``: identical, statistically equivalent (95% intervals overlap) or different."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from wmil.cli import main
from wmil.evaluation.verify import verify


def estimate(value, lo, hi):
    return {"value": value, "lo": lo, "hi": hi, "per_seed": None}


def write_results(root: Path, success: tuple[float, float, float], passed: bool = True, j: float = 1.0,
                  cpu: str = "CPU A") -> Path:
    metrics = root / "metrics"
    metrics.mkdir(parents=True)
    summary = {"experiments": {"ppo": {"success_greedy": {"pattern_echo": estimate(*success), "all_tasks": estimate(*success)},
                                       "steps_to_0.9_censored": {"pattern_echo": estimate(11000.0, 9000.0, 13000.0)},
                                       "failures_to_0.99": {"pattern_echo": estimate(3000.0, 2900.0, 3100.0)}},
                               "llm": {"missing": True}}}
    (metrics / "summary.json").write_text(json.dumps(summary))
    (metrics / "mvp_criteria.json").write_text(json.dumps({"passed": passed}))
    (metrics / "llm_audit.json").write_text(json.dumps({"protocols": {"solve": {"by_task_level": {"pattern_echo": {"2": {"j": j}}}}}}))
    (metrics / "machine.json").write_text(json.dumps({"cpu": cpu}))
    return root


def test_the_same_results_are_identical(tmp_path):
    committed = write_results(tmp_path / "committed", (0.9, 0.8, 1.0))
    fresh = write_results(tmp_path / "fresh", (0.9, 0.8, 1.0))
    report, code = verify(fresh, str(committed))
    assert code == 0 and report["counts"]["different"] == 0 and report["counts"]["equivalent"] == 0
    assert report["counts"]["identical"] == 4 + 1 + 1  # four ppo cells, the MVP verdict, the audit's J


def test_overlapping_intervals_are_equivalent_and_disjoint_ones_different(tmp_path):
    committed = write_results(tmp_path / "committed", (0.9, 0.8, 1.0))
    close = write_results(tmp_path / "close", (0.85, 0.7, 0.95), j=0.95, cpu="CPU B")
    report, code = verify(close, str(committed))
    rows = {r["number"]: r["verdict"] for r in report["rows"]}
    assert code == 0 and rows["ppo pattern_echo success_greedy"] == "equivalent"
    assert rows["LLM audit solve pattern_echo level 2 J"] == "equivalent"  # within the tolerance
    assert report["committed_machine"] == {"cpu": "CPU A"} and report["fresh_machine"] == {"cpu": "CPU B"}
    far = write_results(tmp_path / "far", (0.3, 0.2, 0.4), passed=False)
    report, code = verify(far, str(committed))
    rows = {r["number"]: r["verdict"] for r in report["rows"]}
    assert code == 1 and rows["ppo pattern_echo success_greedy"] == "different"
    assert rows["MVP criteria passed"] == "different"


def test_verify_against_a_git_revision_and_from_the_cli(tmp_path, capsys):
    repo = tmp_path / "repo"
    write_results(repo / "results", (0.9, 0.8, 1.0))
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "results"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    (repo / "results/metrics/summary.json").write_text(json.dumps({"experiments": {"ppo": {"success_greedy": {
        "pattern_echo": estimate(0.1, 0.0, 0.2)}}}}))
    assert main(["verify", "--results", str(repo / "results"), "--against", "HEAD"]) == 1
    out = capsys.readouterr().out
    assert "different   ppo pattern_echo success_greedy: committed [0.9, 0.8, 1.0], fresh [0.1, 0.0, 0.2]" in out
    assert main(["verify", "--results", str(repo / "results"), "--against", "no-such-rev"]) == 2
    assert "--against no-such-rev: not a folder, and git cannot read it" in capsys.readouterr().err
