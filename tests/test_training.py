"""Training: learning on the MVP, determinism, kill-and-resume, run-directory contract."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import assert_same_run, train_interrupted

from wmil.config import load_params
from wmil.evaluation.criteria import seed_criteria
from wmil.training.checkpoint import CheckpointError
from wmil.training.trainer import CURVE_COLUMNS, TIMING_COLUMNS, Trainer

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")

pytestmark = pytest.mark.integration


def mvp(seed: int = 0, **training) -> object:
    return PARAMS.run_config("mvp", "pattern_echo", seed, {"training": training} if training else None)


def deterministic_curve(run_dir: Path) -> pd.DataFrame:
    """The learning curve; it holds no wall-clock column (those are in timing.json)."""
    curve = pd.read_csv(run_dir / "curve.csv")
    assert not set(curve.columns) & (set(TIMING_COLUMNS) - {"env_steps"})
    return curve


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mvp_meets_the_four_criteria(tmp_path, seed):
    metrics = Trainer(mvp(seed), tmp_path).train(progress=False)
    result = seed_criteria(tmp_path, PARAMS.mvp_criteria.by_step, PARAMS.mvp_criteria.by_step_success)
    assert result["passed"], result["checks"]
    assert metrics["final_rolling_success"] > 0.95
    assert metrics["steps_to_0.9"] is not None and metrics["steps_to_0.9"] <= 5000


def test_run_directory_contract(tmp_path):
    metrics = Trainer(mvp(max_steps=1000), tmp_path).train(progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {
        "config.yaml", "curve.csv", "checkpoint.pt", "model.pt", "metrics.json", "timing.json", "parent_stats.json",
        "tensorboard"}
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert tuple(curve.columns) == CURVE_COLUMNS
    assert curve["env_steps"].tolist() == [200, 400, 600, 800, 1000]
    assert curve["level"].eq(2).all()
    assert curve[["reward_goal", "reward_pred", "reward_cons"]].notna().all().all()
    assert ((curve["reward_pred"] > 0) & (curve["reward_pred"] <= 0.1)).all()  # exp(-mse) * 0.1
    assert metrics["env_steps"] == 1000 and metrics["episodes"] == 1000
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_no_world_model_logs_no_prediction(tmp_path):
    config = PARAMS.run_config("mvp", "pattern_echo", 0, {"model": {"world_model": False}, "training": {"max_steps": 500}})
    metrics = Trainer(config, tmp_path).train(progress=False)
    curve = pd.read_csv(tmp_path / "curve.csv")
    assert curve["world_model_mse"].isna().all()
    assert (curve["reward_pred"] == 0).all() and (curve["world_model_loss"] == 0).all()
    assert metrics["final_world_model_mse"] is None


def test_same_seed_gives_identical_run(tmp_path):
    Trainer(mvp(3, max_steps=3000), tmp_path / "a").train(progress=False)
    Trainer(mvp(3, max_steps=3000), tmp_path / "b").train(progress=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_different_seed_gives_different_run(tmp_path):
    Trainer(mvp(0, max_steps=1000), tmp_path / "a").train(progress=False)
    Trainer(mvp(1, max_steps=1000), tmp_path / "b").train(progress=False)
    assert not deterministic_curve(tmp_path / "a").equals(deterministic_curve(tmp_path / "b"))


def test_resume_extends_a_finished_run_bit_identically(tmp_path):
    Trainer(mvp(4, max_steps=2000), tmp_path / "resumed").train(progress=False)
    Trainer(mvp(4, max_steps=4000), tmp_path / "resumed").train(resume="must", progress=False)
    Trainer(mvp(4, max_steps=4000), tmp_path / "straight").train(progress=False)
    assert_same_run(tmp_path / "resumed", tmp_path / "straight")


def test_extending_a_run_that_ended_off_the_logging_cadence_is_exact(tmp_path):
    Trainer(mvp(6, max_steps=1080), tmp_path / "resumed").train(progress=False)  # log_every is 200
    assert pd.read_csv(tmp_path / "resumed/curve.csv")["env_steps"].iloc[-1] == 1080
    Trainer(mvp(6, max_steps=2000), tmp_path / "resumed").train(resume="must", progress=False)
    Trainer(mvp(6, max_steps=2000), tmp_path / "straight").train(progress=False)
    assert_same_run(tmp_path / "resumed", tmp_path / "straight")


def test_a_checkpoint_of_other_training_code_is_not_resumed(tmp_path):
    Trainer(mvp(0, max_steps=480), tmp_path).train(progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    state["code"] = "0" * 16
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="different training code"):
        Trainer(mvp(0, max_steps=1000), tmp_path).train(resume="must", progress=False)
    metrics = Trainer(mvp(0, max_steps=1000), tmp_path).train(resume="auto", progress=False)
    fresh = Trainer(mvp(0, max_steps=1000), tmp_path / "fresh").train(progress=False)
    assert metrics == fresh  # auto started afresh instead of continuing the foreign checkpoint


@pytest.mark.parametrize("experiment, task, max_steps, save_every, extra", [
    ("mvp", "pattern_echo", 10000, 1000, ()),
    ("ppo", "conditional", 12288, 1024, ()),           # T = 4, GAE, minibatch shuffling
    ("curriculum", "pattern_echo", 16384, 2048, ()),   # level changes and the replay draws
    # the EMA target and the switch to it, after the kill
    ("raw_then_embedding", "sequence_next", 12288, 1024,
     ("model.embedding_after_success=0.0", "model.embedding_after_steps=6144")),
])
def test_killed_run_resumes_bit_identically(tmp_path, experiment, task, max_steps, save_every, extra):
    """SIGKILL a real training process after its first checkpoint, resume it, compare."""
    args = [sys.executable, "-m", "wmil", "train", "--params", str(ROOT / "params.yaml"), "--experiment", experiment,
            "--task", task, "--seed", "5", "--max-steps", str(max_steps), "--set", f"training.save_every={save_every}",
            *(a for x in extra for a in ("--set", x)), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--run-dir", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    assert not (killed / "model.pt").exists()
    step_at_kill = torch.load(killed / "checkpoint.pt", weights_only=True)["env_steps"]
    assert 0 < step_at_kill < max_steps
    resumed = subprocess.run([*args, "--run-dir", str(killed), "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {killed / 'checkpoint.pt'} at env step" in resumed.stderr
    straight = subprocess.run([*args, "--run-dir", str(tmp_path / "straight")], env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    assert_same_run(killed, tmp_path / "straight")
    if extra:
        assert json.loads((killed / "metrics.json").read_text())["embedding_switch_step"] == 6144 > step_at_kill


def test_the_embedding_target_switches_on_schedule_and_before_that_the_run_is_the_raw_one(tmp_path):
    def run(name, **model):
        config = PARAMS.run_config("ppo", "sequence_next", 0, {"model": model, "training": {"max_steps": 4096}})
        return Trainer(config, tmp_path / name).train(progress=False), pd.read_csv(tmp_path / name / "curve.csv")

    raw, raw_curve = run("raw")
    never, never_curve = run("never", world_model_target="embedding", embedding_after_success=1.0)
    # the predictor and the target copy are built last and move nothing else: until the switch the
    # run is the raw-target run, float for float
    assert never["embedding_switch_step"] is None and never_curve["embedding_loss"].isna().all()
    assert never_curve.equals(raw_curve) and {**never, "num_parameters": 0} == {**raw, "num_parameters": 0}

    switched, curve = run("switched", world_model_target="embedding", embedding_after_steps=2048)
    assert switched["embedding_switch_step"] == 2048
    assert curve["embedding_loss"].isna().tolist() == [True, True, False, False]  # rows every 1,024 steps
    assert not curve.equals(raw_curve) and curve.iloc[:2].equals(raw_curve.iloc[:2])
    again, _ = run("again", world_model_target="embedding", embedding_after_steps=2048)
    assert_same_run(tmp_path / "switched", tmp_path / "again")

    start, curve = run("start", world_model_target="embedding")  # both thresholds 0: from the first update
    assert start["embedding_switch_step"] == 0 and all(math.isfinite(x) for x in curve["embedding_loss"])
    assert torch.load(tmp_path / "start/model.pt", weights_only=True)["model"]["embedding_target_on"]


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    Trainer(mvp(0, max_steps=480), tmp_path).train(progress=False)
    other = PARAMS.run_config("mvp", "pattern_echo", 0, {"algorithm": {"lr": 0.001}})
    with pytest.raises(CheckpointError, match="different configuration"):
        Trainer(other, tmp_path).train(resume="must", progress=False)
    # auto starts afresh instead, and the finished files of the old run are gone until rewritten
    metrics = Trainer(other, tmp_path).train(resume="auto", progress=False)
    assert metrics["env_steps"] == other.training.max_steps


def test_resume_must_needs_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        Trainer(mvp(0), tmp_path).train(resume="must", progress=False)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    Trainer(mvp(0, max_steps=480), tmp_path).train(progress=False)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        Trainer(mvp(0, max_steps=1000), tmp_path).train(resume="must", progress=False)


def test_no_wall_clock_value_is_in_the_checkpoint_and_resume_keeps_the_timing_rows(tmp_path):
    """DVC hashes the checkpoint: it holds no wall time or steps/s (two runs write the same
    bytes, see test_same_seed_gives_identical_run); timing.json, written beside each checkpoint,
    carries them across a resume."""
    train_interrupted(mvp(2, max_steps=1000, save_every=400), tmp_path, checkpoints=1)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert "elapsed" not in state and "rates" not in state["recorder"]
    at_kill = json.loads((tmp_path / "timing.json").read_text())
    assert [row["env_steps"] for row in at_kill["curve"]] == [200, 400] and at_kill["wall_seconds"] > 0
    Trainer(mvp(2, max_steps=1000, save_every=400), tmp_path).train(resume="must", progress=False)
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert [row["env_steps"] for row in timing["curve"]] == [200, 400, 600, 800, 1000]
    assert timing["curve"][:2] == at_kill["curve"] and timing["wall_seconds"] > at_kill["wall_seconds"]


def test_resuming_a_finished_run_rewrites_every_output(tmp_path):
    """Snakemake deletes a job's outputs before rerunning it; the finished checkpoint remains."""
    Trainer(mvp(0, max_steps=1000), tmp_path / "run").train(progress=False)
    saved = {name: (tmp_path / "run" / name).read_bytes() for name in ("curve.csv", "metrics.json")}
    for name in ("curve.csv", "metrics.json", "model.pt"):
        (tmp_path / "run" / name).unlink()
    Trainer(mvp(0, max_steps=1000), tmp_path / "run").train(resume="auto", progress=False)
    assert {name: (tmp_path / "run" / name).read_bytes() for name in saved} == saved
    assert (tmp_path / "run" / "model.pt").exists()
