"""Guarded pipeline jobs: failure records in place of outputs, and the final status step."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wmil.cli import main
from wmil.errors import MissingResult
from wmil.jobs import check_result, failure_of, guard, status


def test_a_failed_command_leaves_a_record_in_every_output_and_its_log(tmp_path):
    outputs = [tmp_path / "run/metrics.json", tmp_path / "run/model.pt"]
    log = tmp_path / "logs/job.log"
    code = guard("train x", log, outputs, [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    assert code == 0  # Snakemake goes on
    for path in outputs:
        record = failure_of(path)
        assert record["job"] == "train x" and record["reason"] == "exit code 3" and record["log"] == str(log)
        assert record["outputs"] == [str(p) for p in outputs] and "boom" in record["log_tail"]
    assert "boom" in log.read_text() and "failure records written" in log.read_text()
    with pytest.raises(MissingResult, match=r"metrics.json: missing: job 'train x' failed \(exit code 3\); see .*job.log"):
        check_result(outputs[0])


def test_a_command_killed_by_a_signal_is_recorded_as_such(tmp_path):
    out = tmp_path / "out.json"
    guard("j", tmp_path / "j.log", [out], [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    assert failure_of(out)["reason"] == "killed by SIGSEGV"


def test_success_leaves_the_outputs_alone_and_the_log_is_rewritten(tmp_path):
    out, log = tmp_path / "out.json", tmp_path / "j.log"
    log.write_text("an old run's log\n")
    assert guard("j", log, [out], [sys.executable, "-c", f"open({str(out)!r}, 'w').write('{{\"ok\": 1}}'); print('hi')"]) == 0
    assert json.loads(out.read_text()) == {"ok": 1} and failure_of(out) is None
    assert log.read_text() == "hi\n"


def test_an_interrupted_guard_writes_no_record(tmp_path):
    out = tmp_path / "out.json"
    process = subprocess.Popen([sys.executable, "-m", "wmil", "guard", "--job", "j", "--log", str(tmp_path / "j.log"),
                                "--outputs", str(out), "--", sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)  # what Snakemake does when it cancels its jobs
    assert process.wait(20) == 128 + signal.SIGTERM
    assert not out.exists()  # an interrupted job is incomplete, not failed: Snakemake reruns it


def test_failure_of_tells_records_from_results(tmp_path):
    (tmp_path / "a.json").write_text('{"wmil_failed_job_not": 1}')
    (tmp_path / "b.csv").write_text("env_steps,success\n1,0\n")
    assert failure_of(tmp_path / "a.json") is None and failure_of(tmp_path / "b.csv") is None
    assert failure_of(tmp_path / "absent") is None and failure_of(tmp_path) is None


def test_status_lists_failed_jobs_removes_their_records_and_fails(tmp_path, capsys):
    ok, bad_a, bad_b = tmp_path / "ok.json", tmp_path / "a/metrics.json", tmp_path / "a/model.pt"
    ok.write_text("{}")
    guard("train a", tmp_path / "a.log", [bad_a, bad_b], [sys.executable, "-c", "raise SystemExit(2)"])
    assert status([ok, bad_a], tmp_path / "status.json") == 1
    err = capsys.readouterr().err
    assert "1 job(s) failed" in err and f"train a: exit code 2; log: {tmp_path / 'a.log'}" in err
    assert not bad_a.exists() and not bad_b.exists() and ok.exists()  # every output of the job: a rerun redoes it
    assert not (tmp_path / "status.json").exists()
    assert status([ok], tmp_path / "status.json") == 0
    assert json.loads((tmp_path / "status.json").read_text()) == {"failed": []}


def test_cli_guard_and_status(tmp_path):
    out = tmp_path / "x.json"
    assert main(["guard", "--job", "figure x ", "--log", str(tmp_path / "x.log"), "--outputs", str(out), "--",
                 sys.executable, "-c", "raise SystemExit(1)"]) == 0
    assert failure_of(out)["job"] == "figure x"
    assert main(["status", "--out", str(tmp_path / "s.json"), str(out)]) == 1


def test_evaluating_a_failed_run_names_the_failed_job(tmp_path):
    from wmil.evaluation.held_out import load_model

    model = tmp_path / "model.pt"
    guard("train r", tmp_path / "r.log", [model], [sys.executable, "-c", "raise SystemExit(1)"])
    with pytest.raises(MissingResult, match="model.pt: missing: job 'train r' failed"):
        load_model(model)


def test_status_puts_back_the_committed_result_of_a_failed_job_dated_so_that_it_is_redone(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    audit, fresh = tmp_path / "results/metrics/llm_audit.json", tmp_path / "results/metrics/new.json"
    audit.parent.mkdir(parents=True)
    audit.write_text('{"committed": true}\n')
    (tmp_path / "params.yaml").write_text("x: 1\n")
    (tmp_path / "Snakefile").write_text(
        "rule audit:\n    input: 'params.yaml'\n    output: 'results/metrics/llm_audit.json'\n    shell: 'true'\n")
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "results"], cwd=tmp_path, check=True)
    guard("llm_audit", tmp_path / "audit.log", [audit, fresh], [sys.executable, "-c", "raise SystemExit(2)"])
    assert failure_of(audit) is not None
    assert status([tmp_path / "results"], tmp_path / "status.json") == 1
    assert audit.read_text() == '{"committed": true}\n'  # the committed result stays in the working tree
    assert audit.stat().st_mtime == 1  # older than any input (0 would switch Snakemake's age check off)
    assert not fresh.exists()  # never committed: nothing to put back
    dry_run = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "-n", "--cores", "1"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert dry_run.returncode == 0, dry_run.stderr
    assert "audit" in dry_run.stdout and "Updated input files" in dry_run.stdout + dry_run.stderr  # Snakemake redoes it
