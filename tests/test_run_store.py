"""The run store: a finished, evaluated run survives the deletion of its directory (what `dvc exp
run`'s forced checkout does) and comes back, same bytes and dates, only under its own identity."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import tiny_params

from wmil.cli import main

pytestmark = pytest.mark.integration


def snapshot(run_dir):
    return {p.relative_to(run_dir): (p.read_bytes(), p.stat().st_mtime_ns) for p in run_dir.rglob("*") if p.is_file()}


def test_a_kept_run_comes_back_after_its_directory_is_deleted_and_only_as_itself(tmp_path, capsys):
    raw = tiny_params()
    raw["seeds"] = [10]
    params, runs = tmp_path / "params.yaml", tmp_path / "results" / "runs"
    params.write_text(yaml.safe_dump(raw))
    train = ["train", "--params", str(params), "--experiment", "mvp", "--seeds", "10", "--runs-root", str(runs),
             "--no-progress", "--evaluate"]
    assert main([*train, "--keep"]) == 0
    run_dir = runs / "mvp/pattern_echo/seed10"
    kept = snapshot(run_dir)
    assert {"metrics.json", "eval.json", "model.pt", "checkpoint.pt", "curve.csv"} <= {p.name for p in kept}
    assert [p.name for p in (tmp_path / "results/run-store/mvp/pattern_echo/seed10").iterdir()] != []

    restore = ["restore-runs", "--params", str(params), "--runs-root", str(runs)]
    capsys.readouterr()
    assert main(restore) == 0
    assert "restored 0 runs" in capsys.readouterr().out  # nothing was missing
    shutil.rmtree(runs)  # as a forced DVC checkout of a version the cache lacks does
    assert main(restore) == 0
    assert f"restored 1 runs from {tmp_path / 'results/run-store'}\n  {run_dir}" in capsys.readouterr().out
    assert snapshot(run_dir) == kept  # the same bytes and dates: Snakemake sees the outputs it made

    # a run is restored only under the identity it has now: another learning rate is another run
    raw["experiments"]["mvp"]["overrides"]["algorithm"] = {"lr": 0.01}
    params.write_text(yaml.safe_dump(raw))
    shutil.rmtree(runs)
    assert main(restore) == 0
    assert "restored 0 runs" in capsys.readouterr().out and not run_dir.exists()


def test_keep_needs_evaluated_runs_of_a_runs_root(tmp_path, capsys):
    assert main(["train", "--experiment", "mvp", "--run-dir", str(tmp_path / "x"), "--evaluate", "--keep"]) == 2
    assert "--keep stores evaluated runs of --runs-root: it needs --evaluate, and no --run-dir" in capsys.readouterr().err
    assert main(["train", "--experiment", "mvp", "--keep"]) == 2
