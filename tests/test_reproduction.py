"""Reproducibility and scale-out as users work: `dvc repro`, branch diffs, push/pull, realign,
and the same workflow through a real single-node Slurm cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import lean_params

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
       "GIT_AUTHOR_NAME": "wmil-test", "GIT_AUTHOR_EMAIL": "test@localhost",
       "GIT_COMMITTER_NAME": "wmil-test", "GIT_COMMITTER_EMAIL": "test@localhost"}
PROJECT_FILES = ("wmil", "workflow", "dvc.yaml", ".dvcignore", "environment.yml", "constraints.txt", "Makefile",
                 ".gitignore")

pytestmark = pytest.mark.integration


def sh(args: list[str], cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def make_project(path: Path, params: dict) -> Path:
    """A fresh git + DVC project holding this checkout's pipeline, the committed DVC config
    (default remote included) and ``params``."""
    path.mkdir()
    for item in PROJECT_FILES:
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, path / item)
    for cache in path.rglob("__pycache__"):
        shutil.rmtree(cache)
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    sh(["git", "init", "-q", "-b", "main"], path)
    sh([str(BIN / "dvc"), "init", "-q"], path)
    shutil.copy(ROOT / ".dvc/config", path / ".dvc/config")
    return path


def count_jobs(params: dict) -> int:
    """Training jobs (each evaluates its runs too): one per experiment x task."""
    from wmil.config import parse_params

    return sum(len(e.tasks) for e in parse_params(params).experiments.values())


def mtimes(project: Path, experiment: str) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in (project / "results/runs" / experiment).rglob("metrics.json")}


def test_dvc_repro_branches_push_pull_and_realign(tmp_path):
    dvc = str(BIN / "dvc")
    project = make_project(tmp_path / "project", lean_params())
    sh([dvc, "repro"], project)
    assert json.loads((project / "results/metrics/mvp_criteria.json").read_text())["passed"]
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "results on main"], project)
    assert "didn't change, skipping" in sh([dvc, "repro"], project).stdout

    # a branch that changes one parameter reruns only the runs that read it: ppo and the
    # experiments that extend it (kl_distill, the curriculum), not mvp, nor the random
    # policy, which reads no learning rate, nor rl_only, which sets its own (tuned)
    sh(["git", "checkout", "-qb", "faster-ppo"], project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["ppo"]["overrides"]["algorithm"]["lr"] = 0.002
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    untouched = {e: mtimes(project, e) for e in ("mvp", "random", "rl_only")}
    rerun = ("ppo", "kl_distill", "curriculum")
    before = {e: mtimes(project, e) for e in rerun}
    sh([dvc, "repro"], project)
    assert {e: mtimes(project, e) for e in untouched} == untouched
    for e in rerun:
        after = mtimes(project, e)
        assert after.keys() == before[e].keys() and all(after[k] > before[e][k] for k in after), e
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "ppo lr 0.002"], project)

    params_diff = json.loads(sh([dvc, "params", "diff", "main", "faster-ppo", "--json"], project).stdout)
    lr = params_diff["params.yaml"]["experiments.ppo.overrides.algorithm.lr"]
    assert (lr["old"], lr["new"]) == (0.001, 0.002)
    metrics_diff = json.loads(sh([dvc, "metrics", "diff", "main", "faster-ppo", "--json"], project).stdout)
    changed = metrics_diff["results/metrics/headline.json"]
    assert "success.ppo" in changed and "success.kl_distill" in changed
    assert not any(key in changed for key in ("success.mvp", "success.rl_only", "mvp_steps_to_0.9.pattern_echo"))

    # push to the default remote, lose cache and outputs, pull them back, realign Snakemake
    sh([dvc, "push"], project)
    assert (project / ".dvc-storage").is_dir()
    shutil.rmtree(project / ".dvc/cache")
    shutil.rmtree(project / "results/runs")
    sh([dvc, "pull"], project)
    assert json.loads((project / "results/runs/ppo/conditional/seed10/metrics.json").read_text())["env_steps"] == 2048
    sh(["make", "realign", f"VENV={Path(sys.executable).parents[1]}"], project)
    dry = sh([str(BIN / "snakemake"), "-n", "all"], project)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert "didn't change, skipping" in sh([dvc, "repro"], project).stdout

    # an experiment on the finished workspace keeps every run it does not touch, byte for byte
    kept = {p: p.read_bytes() for p in (project / "results/runs").rglob("*") if p.is_file()
            and "/mvp/" not in str(p) and "tensorboard" not in p.parts}
    sh([dvc, "exp", "run", "-S", "+experiments.mvp.overrides.algorithm.lr=0.02", "-n", "mvp-lr"], project)
    assert all(p.read_bytes() == data for p, data in kept.items())
    shown = sh([dvc, "exp", "show", "--json"], project).stdout
    assert "mvp-lr" in shown and "mvp_steps_to_0.9" in shown
    table = sh([dvc, "exp", "show", "--no-pager", "--only-changed", "--md"], project).stdout
    assert "experiments.mvp.overrides.algorithm.lr" in table and "mvp_steps_to_0.9" in table
    diff = json.loads(sh([dvc, "exp", "diff", "faster-ppo", "mvp-lr", "--json"], project).stdout)
    assert "mvp_steps_to_0.9.pattern_echo" in diff["metrics"]["results/metrics/headline.json"]


def run_files(project: Path) -> dict[Path, bytes]:
    """Every file of every run but its TensorBoard events, by path inside the project."""
    return {p.relative_to(project): p.read_bytes() for p in (project / "results/runs").rglob("*")
            if p.is_file() and "tensorboard" not in p.parts}


def trained_jobs(output: str) -> int:
    """The train jobs in Snakemake's job table, as `dvc exp run` prints it."""
    found = re.search(r"^train\s+(\d+)$", output, re.M)
    return int(found[1]) if found else 0


def experiment_keeps_untouched_runs(project: Path, key: str, value: float) -> None:
    """`dvc exp run -S` on an MVP key retrains exactly the runs whose identity the key changes
    (counted from the params) and leaves every other run's files as they were, byte for byte."""
    from wmil.config import parse_params

    params = yaml.safe_load((project / "params.yaml").read_text())
    base = parse_params(yaml.safe_load((project / "params.yaml").read_text()))
    params["experiments"]["mvp"]["overrides"]["algorithm"] = {key: value}
    changed = parse_params(params)
    reached = [(e, t) for e, spec in base.experiments.items() for t in spec.tasks
               if base.run_config(e, t).config_hash() != changed.run_config(e, t).config_hash()]
    assert reached and len(reached) < count_jobs(yaml.safe_load((project / "params.yaml").read_text()))
    before = run_files(project)
    result = sh([str(BIN / "dvc"), "exp", "run", "-S", f"+experiments.mvp.overrides.algorithm.{key}={value}"], project)
    said = result.stdout + result.stderr
    assert trained_jobs(said) == len(reached), said[-3000:]
    after = run_files(project)
    touched = {p for p in before if tuple(p.parts[2:4]) in reached}
    assert touched and all(after[p] == data for p, data in before.items() if p not in touched)


def test_dvc_lock_is_reproduced_and_no_dvc_command_deletes_a_finished_run(tmp_path):
    """The run directories, the analysis and the LLM cache's export are the same bytes on a rerun
    (wall-clock values are kept out of DVC's hashes), so a fresh clone's pipeline leaves dvc.lock
    as committed. `dvc exp run` checks out dvc.lock's outputs forcibly first; where dvc.lock names
    a version the cache lacks, it deletes results/runs, and the run store brings every untouched
    run back before Snakemake looks: only the runs the change reaches are trained."""
    dvc = str(BIN / "dvc")
    project = make_project(tmp_path / "project", lean_params())
    sh([dvc, "repro"], project)
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "results"], project)

    clone = tmp_path / "clone"  # no outputs, no DVC cache
    sh(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    sh([dvc, "repro"], clone)
    assert sh(["git", "status", "--porcelain", "dvc.lock"], clone).stdout == ""  # every output hash reproduced
    assert run_files(clone).keys() == run_files(project).keys()
    sh(["git", "stash", "--include-untracked"], clone)  # a user cleans the tree before an experiment
    experiment_keeps_untouched_runs(clone, "lr", 0.01)

    # a committed dvc.lock whose runs are foreign (made elsewhere; not in this cache)
    lock = (project / "dvc.lock").read_text()
    foreign = re.sub(r"(path: results/runs\n\s+hash: md5\n\s+md5: )[0-9a-f]+", r"\g<1>" + "0" * 32, lock)
    assert foreign != lock
    (project / "dvc.lock").write_text(foreign)
    sh(["git", "commit", "-qam", "dvc.lock from another machine"], project)
    experiment_keeps_untouched_runs(project, "lr", 0.02)


SLURM_LOCK = Path("/tmp/wmil-slurm-tests.lock")


@pytest.fixture
def slurm_cluster():
    """The local Slurm cluster, (re)started for the test under an exclusive file lock, so that no
    other pytest process on the machine restarts it underneath. On leaving, only the jobs this test
    submitted are cancelled: a failing workflow leaves its other jobs running."""
    import fcntl

    with open(SLURM_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = subprocess.run([str(ROOT / "scripts/slurm-local.sh"), "start"], capture_output=True, text=True,
                                 timeout=300)
        assert started.returncode == 0, started.stdout + started.stderr
        before = slurm_job_ids()
        try:
            yield
        finally:
            mine = sorted(slurm_job_ids() - before)
            if mine:
                subprocess.run(["scancel", *mine], capture_output=True)


def slurm_profile(tmp_path: Path) -> Path:
    """The committed Slurm profile, polling job status every second instead of Snakemake's 10 s
    (a smoke DAG's jobs take seconds, and each stage of the DAG would wait a whole poll)."""
    profile = tmp_path / "slurm-profile"
    profile.mkdir()
    committed = (ROOT / "workflow/profiles/slurm/config.yaml").read_text()
    (profile / "config.yaml").write_text(committed + "seconds-between-status-checks: 1\n")
    return profile


def run_on_slurm(project: Path, profile: Path) -> subprocess.CompletedProcess:  # without DVC
    # Snakemake ignores SIGTERM while cluster jobs run: timeout -k makes sure it ends
    return sh(["timeout", "-k", "10", "600", str(BIN / "snakemake"), "--profile", str(profile),
               "-s", str(ROOT / "workflow/Snakefile"), "-d", str(project), "all"], project, check=False, timeout=660)


def slurm_job_ids() -> set[str]:
    out = subprocess.run(["squeue", "-t", "all", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_on_slurm_a_failing_job_fails_snakemake_and_the_whole_dag_runs_under_dvc_leaving_dvc_lock_unchanged(
        slurm_cluster, tmp_path):
    """Both on one cluster start, in one test: as two tests they waited on each other's lock, one
    pytest worker idle for minutes."""
    profile = slurm_profile(tmp_path)
    failing = lean_params()
    failing["sanity"]["random_tolerance"] = 1e-9  # a random policy is never exactly at 1/A: sanity fails
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "params.yaml").write_text(yaml.safe_dump(failing))
    result = run_on_slurm(broken, profile)
    assert result.returncode != 0
    assert "Error in rule sanity" in result.stdout + result.stderr
    assert not (broken / "results/runs").exists()

    params = lean_params()
    project = make_project(tmp_path / "project", params)
    dvc = str(BIN / "dvc")
    # every process imports the project's own copy of wmil, as in a real checkout: a Slurm job's
    # Snakemake finds it in its working directory, and had the submitting one imported this
    # checkout's, the code inputs' paths would differ and each job would redo the sanity checks
    local = {**ENV, "PYTHONPATH": str(project)}
    slurm = {**local, "SNAKEMAKE_PROFILE": str(profile)}
    before = slurm_job_ids()
    on_slurm = subprocess.run(["timeout", "-k", "10", "600", dvc, "repro"], cwd=project, env=slurm,
                              capture_output=True, text=True, timeout=660)
    assert on_slurm.returncode == 0, on_slurm.stdout[-3000:] + on_slurm.stderr[-3000:]
    assert f"Using profiles {profile}" in on_slurm.stderr
    assert len(slurm_job_ids() - before) >= count_jobs(params) + 1  # training (and evaluation), sanity
    summary = json.loads((project / "results/metrics/summary.json").read_text())
    assert summary["experiments"]["ppo"]["success_greedy"]["conditional"]["per_seed"]
    assert (project / "results/report/report.html").exists()
    lock = (project / "dvc.lock").read_text()
    here = subprocess.run([dvc, "repro"], cwd=project, env=local, capture_output=True, text=True, timeout=300)
    assert "didn't change, skipping" in here.stdout  # local run: nothing to redo
    again = subprocess.run([dvc, "repro"], cwd=project, env=slurm, capture_output=True, text=True, timeout=300)
    assert "didn't change, skipping" in again.stdout
    assert (project / "dvc.lock").read_text() == lock
