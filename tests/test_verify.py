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
                                       "steps_to_0.9": {"pattern_echo": {"median": 11000.0, "lo": 9000.0, "hi": None}},
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


def add_claims(root: Path, p: float, inside: list[bool], entropy_falls: int, drop_audit: bool = False) -> Path:
    """The other headline claims: a probability of improvement, an LLM run against its prediction,
    the MVP's criteria per seed."""
    metrics = root / "metrics"
    summary = json.loads((metrics / "summary.json").read_text())
    summary["probability_of_improvement"] = {"random": {"pattern_echo": {"p": p, "lo": p - 0.05, "hi": min(1.0, p + 0.05)}}}
    summary["llm"] = {"llm": {"pattern_echo": {"prediction": {"mean": 1.0, "interval": [0.98, 1.0]}, "inside": inside}}}
    summary["curriculum"] = {"success_level2": {"p": {"all_tasks": {"p": 1 - p, "lo": max(0.0, 0.95 - p), "hi": 1.05 - p}}}}
    summary["rule"] = {"conditional": {"tabular": {"training": {"value": 1.0, "lo": 1.0, "hi": 1.0},
                                                   "held_out": {"value": 0.0, "lo": 0.0, "hi": 0.0}}}}
    (metrics / "summary.json").write_text(json.dumps(summary))
    seeds = {f"pattern_echo/seed{i}": {"checks": {"entropy_falls": i < entropy_falls, "beats_chance": True}}
             for i in range(5)}
    (metrics / "mvp_criteria.json").write_text(json.dumps({"passed": entropy_falls == 5, "seeds": seeds}))
    if drop_audit:
        (metrics / "llm_audit.json").unlink()
    return root


def test_every_claim_of_the_report_is_checked_and_a_missing_one_fails(tmp_path):
    committed = add_claims(write_results(tmp_path / "committed", (0.9, 0.8, 1.0)), 0.97, [True] * 5, 5)
    same = add_claims(write_results(tmp_path / "same", (0.9, 0.8, 1.0)), 0.97, [True] * 5, 5)
    report, code = verify(same, str(committed))
    rows = {r["number"]: r["verdict"] for r in report["rows"]}
    assert code == 0 and set(rows.values()) == {"identical"}
    assert {"P(method > random) pattern_echo", "P(curriculum > its reference) all_tasks success_level2",
            "tabular reference conditional held_out success", "llm pattern_echo predicted success",
            "llm pattern_echo seeds inside the prediction", "MVP criterion entropy_falls: seeds passing",
            "MVP criterion beats_chance: seeds passing"} <= set(rows)
    one_seed_out = add_claims(write_results(tmp_path / "close", (0.9, 0.8, 1.0)), 0.95, [True] * 4 + [False], 4)
    rows = {r["number"]: r["verdict"] for r in verify(one_seed_out, str(committed))[0]["rows"]}
    assert rows["P(method > random) pattern_echo"] == "equivalent" and rows["llm pattern_echo seeds inside the prediction"] == "equivalent"
    assert rows["MVP criterion entropy_falls: seeds passing"] == "equivalent"  # one seed crossed an edge
    assert rows["MVP criteria passed"] == "different"  # but the MVP's verdict is a claim of its own
    worse = add_claims(write_results(tmp_path / "worse", (0.9, 0.8, 1.0)), 0.5, [False] * 5, 3, drop_audit=True)
    report, code = verify(worse, str(committed))
    rows = {r["number"]: r["verdict"] for r in report["rows"]}
    assert code == 1 and rows["P(method > random) pattern_echo"] == "different"
    assert rows["P(curriculum > its reference) all_tasks success_level2"] == "different"
    assert rows["llm pattern_echo seeds inside the prediction"] == "different"
    assert rows["MVP criterion entropy_falls: seeds passing"] == "different" and rows["MVP criteria passed"] == "different"
    assert rows["LLM audit solve pattern_echo level 2 J"] == "missing" and report["counts"]["missing"] == 1
    report, code = verify(committed, str(worse))  # a number only the fresh results have is new, not a failure
    assert {r["verdict"] for r in report["rows"] if r["number"].startswith("LLM audit")} == {"new"}


def test_a_number_neither_side_has_is_no_row(tmp_path):
    sides = []
    for name in ("committed", "fresh"):
        root = add_claims(write_results(tmp_path / name, (0.9, 0.8, 1.0)), 0.97, [True] * 5, 5)
        summary = json.loads((root / "metrics/summary.json").read_text())
        summary["llm"]["llm"]["pattern_echo"] = {"prediction": None}  # no audit to predict from, on both sides
        (root / "metrics/summary.json").write_text(json.dumps(summary))
        sides.append(root)
    report, code = verify(sides[1], str(sides[0]))
    assert code == 0 and not any(r["number"].startswith("llm pattern_echo") for r in report["rows"])


def test_machine_tells_cpu_generations_and_blas_kernels_apart():
    """Two machines both called "AMD EPYC" made different k-means clusters: machine.json must tell
    them apart (family and model numbers), and name the BLAS kernels the analysis computed with."""
    import platform

    from wmil.provenance import machine

    info = machine()
    assert info["blas"].startswith("openblas ") and info["blas"] != "openblas None"
    if Path("/proc/cpuinfo").exists() and platform.machine() == "x86_64":
        assert " (family " in info["cpu"] and ", model " in info["cpu"]
    assert {"torch_cpu_capability", "python", "torch", "numpy", "scikit-learn"} <= info.keys()


def test_kaplan_meier_medians_compare_by_their_intervals_with_open_ends_reaching_as_far_as_they_can():
    from wmil.evaluation.verify import _median

    def km(median, lo, hi):
        return {"median": median, "lo": lo, "hi": hi, "budget": 16384}

    assert _median("m", km(100.0, 80.0, 120.0), km(100.0, 80.0, 120.0))["verdict"] == "identical"
    assert _median("m", km(100.0, 80.0, 120.0), km(130.0, 110.0, 150.0))["verdict"] == "equivalent"
    assert _median("m", km(100.0, 80.0, 120.0), km(300.0, 200.0, 400.0))["verdict"] == "different"
    assert _median("m", km(100.0, 80.0, None), km(300.0, 200.0, 400.0))["verdict"] == "equivalent"  # open above
    # no median: fewer than half got there within the budget, unlike a median of 300
    assert _median("m", km(None, None, None), km(300.0, 200.0, 400.0))["verdict"] == "different"
    assert _median("m", km(None, None, None), km(16000.0, 9000.0, None))["verdict"] == "equivalent"
    assert _median("m", None, km(3.0, 2.0, 4.0))["verdict"] == "new"


def test_a_fresh_result_whose_job_failed_is_missing_not_compared(tmp_path):
    import sys

    from wmil.jobs import guard

    committed = write_results(tmp_path / "committed", (0.9, 0.8, 1.0))
    fresh = write_results(tmp_path / "fresh", (0.9, 0.8, 1.0))
    guard("summarize", tmp_path / "job.log", [fresh / "metrics/summary.json"], [sys.executable, "-c", "raise SystemExit(1)"])
    report, code = verify(fresh, str(committed))
    assert code == 1 and {r["verdict"] for r in report["rows"] if r["number"].startswith("ppo ")} == {"missing"}
