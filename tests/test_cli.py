"""The `wmil` command line: the plan's MVP command, flags, sanity, criteria, clear errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from wmil.cli import main
from wmil.config import TASK_NAMES, load_params

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True)


@pytest.mark.integration
def test_plan_mvp_command_trains_the_mvp_config(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    result = run(["-m", "wmil.training.trainer", "--task", "pattern_echo", "--num_actions", "8", "--hidden_dim", "64",
                  "--num_layers", "2", "--algorithm", "reinforce", "--parent", "deterministic",
                  "--max_steps", "10000"], tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "results/runs/adhoc/pattern_echo/seed0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["env_steps"] == 10000 and metrics["final_rolling_success"] > 0.9
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    mvp = load_params(ROOT / "params.yaml").run_config("mvp", "pattern_echo", 0).to_dict()
    assert {k: v for k, v in resolved.items() if k != "experiment"} == {k: v for k, v in mvp.items() if k != "experiment"}


def test_help_describes_the_program_for_its_users(capsys):
    """``wmil --help`` says what WMIL is and where to start, and names every command in its
    description (the list cannot fall behind the commands); the module docstring, written for
    developers, stays out."""
    from wmil.cli import COMMANDS

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    description = text[text.index("WMIL: "):text.index("positional arguments:")]
    assert "make pipeline" in description and "wmil verify" in description, description
    assert sorted(set(COMMANDS) - set(re.findall(r"[a-z][a-z-]*", description))) == [], description
    assert "cmd_" not in text and "@command" not in text


def test_kebab_and_snake_flags_and_set(capsys):
    params = str(ROOT / "params.yaml")
    assert main(["config", "--params", params, "--num-actions", "12", "--hidden_dim", "32",
                 "--set", "algorithm.lr=0.01", "--set", "model.world_model=false"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["env"]["num_actions"] == 12 and config["model"]["hidden_dim"] == 32
    assert config["algorithm"]["lr"] == 0.01 and config["model"]["world_model"] is False


@pytest.mark.parametrize("args, message", [
    (["--task", "pattern_ecco"], "env.task: 'pattern_ecco' is not allowed; allowed: ['pattern_echo'"),
    (["--algorithm", "ppo2"], "algorithm.name: 'ppo2' is not allowed"),
    (["--num_actions", "4"], "env.num_actions: 4 is out of range"),
    (["--set", "model.hiden_dim=3"], "model.hiden_dim: unknown key"),
    (["--set", "nonsense"], "expected KEY=VALUE"),
    (["--experiment", "nope"], "unknown experiment 'nope'"),
])
def test_bad_input_exits_2_naming_the_key(capsys, args, message):
    assert main(["config", "--params", str(ROOT / "params.yaml"), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_params_file_is_named(capsys, tmp_path):
    assert main(["config", "--params", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: params file not found" in capsys.readouterr().err


def test_corrupt_checkpoint_exits_2(capsys, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage")
    code = main(["train", "--params", str(ROOT / "params.yaml"), "--experiment", "mvp",
                 "--run-dir", str(tmp_path), "--resume", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "corrupt or unreadable checkpoint" in err and str(tmp_path / "checkpoint.pt") in err


def test_run_dir_naming_a_file_exits_2_naming_it(capsys, tmp_path):
    (tmp_path / "a_file").write_text("not a run directory")
    code = main(["train", "--params", str(ROOT / "params.yaml"), "--experiment", "mvp",
                 "--run-dir", str(tmp_path / "a_file"), "--no-progress"])
    assert code == 2
    assert f"--run-dir {tmp_path / 'a_file'}: exists and is not a directory" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "not a run directory"


@pytest.mark.integration
def test_sanity_passes_and_reports_every_task_level(tmp_path, capsys):
    out = tmp_path / "sanity.json"
    assert main(["sanity", "--params", str(ROOT / "params.yaml"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["passed"] and report["failures"] == []
    rows = report["rewards"]["rows"]
    assert {(r["task"], r["level"], r["num_actions"]) for r in rows} == {
        (t, lv, a) for t in TASK_NAMES for lv in range(3) for a in (8, 16)}
    assert all(r["oracle"] == 1.0 for r in rows)
    assert all(not r["without_gradient"] for r in report["gradients"]["rows"])
    echo = [r for r in report["state_encoding"]["rows"] if r["task"] == "pattern_echo"]
    assert all(r["linear_probe_accuracy"] == 1.0 for r in echo)
    # the report holds no wall-clock number: a second run writes the same bytes; speed goes apart
    again, speed = tmp_path / "again.json", tmp_path / "speed.json"
    assert main(["sanity", "--params", str(ROOT / "params.yaml"), "--out", str(again), "--timing", str(speed)]) == 0
    assert again.read_bytes() == out.read_bytes()
    assert json.loads(speed.read_text())["env_steps_per_second"] > 0


@pytest.mark.integration
def test_sanity_fails_loudly_when_a_check_fails(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["sanity"]["random_tolerance"] = 1e-9  # a random policy's success is never exactly 1/A
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    assert main(["sanity", "--params", str(params)]) == 1


def _fake_run(root: Path, seed: int, success: list[float], entropy: list[float], mse: list[float]) -> None:
    run_dir = root / "mvp/pattern_echo" / f"seed{seed}"
    run_dir.mkdir(parents=True)
    steps = [1250 * (i + 1) for i in range(len(success))]
    pd.DataFrame({"env_steps": steps, "rolling_success": success, "entropy": entropy,
                  "world_model_mse": mse}).to_csv(run_dir / "curve.csv", index=False)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"env": {"num_actions": 8}}))
    (run_dir / "metrics.json").write_text("{}")


def test_mvp_criteria_pass_and_fail_per_seed(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = [10, 11]
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    good = {"success": [0.2, 0.6, 0.9, 0.95], "entropy": [2.0, 1.0, 0.5, 0.1], "mse": [0.1, 0.05, 0.02, 0.01]}
    _fake_run(tmp_path / "runs", 10, **good)
    _fake_run(tmp_path / "runs", 11, **{**good, "success": [0.1, 0.3, 0.45, 0.48], "mse": [0.1, 0.1, 0.2, 0.3]})
    out = tmp_path / "criteria.json"
    assert main(["mvp-criteria", "--params", str(params), "--runs-root", str(tmp_path / "runs"), "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["seeds"]["pattern_echo/seed10"]["passed"]
    assert report["seeds"]["pattern_echo/seed11"]["checks"] == {
        "beats_chance": True, "above_0.5_by_step_5000": False, "entropy_falls": True, "world_model_mse_falls": False}
    assert report["failures"] == ["pattern_echo/seed11: above_0.5_by_step_5000 failed",
                                  "pattern_echo/seed11: world_model_mse_falls failed"]
    # in the pipeline a failed criterion is a result: the verdict is written and the job succeeds
    assert main(["mvp-criteria", "--params", str(params), "--runs-root", str(tmp_path / "runs"), "--out", str(out),
                 "--report-only"]) == 0
    assert json.loads(out.read_text())["passed"] is False


def test_mvp_criteria_fail_on_a_missing_seed(tmp_path):
    out = tmp_path / "criteria.json"
    assert main(["mvp-criteria", "--params", str(ROOT / "params.yaml"), "--runs-root", str(tmp_path), "--out", str(out)]) == 1
    assert "metrics.json missing" in json.loads(out.read_text())["failures"][0]
