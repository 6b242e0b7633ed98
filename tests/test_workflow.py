"""The Snakemake DAG: lint, expansion from params.yaml, schema, a smoke run."""

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
from browser import probe
from conftest import tiny_params

from wmil.config import load_params
from wmil.parents.llm.server import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.integration


def sh(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def job_counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.M) if m[1] != "total"}


def dry_run_jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {field: value}) of every job a dry run prints (input, output, log, benchmark, resources...)."""
    return [(m[1], dict(re.findall(r"^    (\w+): (.*)$", m[2], re.M)))
            for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", output, re.M)]


def test_snakemake_lint_is_clean():
    result = sh([str(BIN / "snakemake"), "--lint"], ROOT)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_dry_run_expands_experiments_tasks_seeds():
    result = sh([str(BIN / "snakemake"), "-n", "--forceall", "all"], ROOT)
    from wmil.reporting.figures import FIGURE_SPECS

    params = load_params(ROOT / "params.yaml")
    experiments = params.experiments
    assert "quality_t1-fpr0.3-fnr0.3" in experiments and "quality_t1" not in experiments  # sweeps expanded
    # one job trains and evaluates every seed of an experiment x task: the ten reported seeds through
    # rule train, the experiments that keep five through a rule of their own
    jobs = {"train": 0, "train_seeds_10_11_12_13_14": 0}
    for name, e in experiments.items():
        jobs["train" if params.seeds_of(name) == params.seeds else "train_seeds_10_11_12_13_14"] += len(e.tasks)
    assert params.seeds == tuple(range(10, 20)) and jobs["train"] > 0 and jobs["train_seeds_10_11_12_13_14"] > 0
    assert job_counts(result.stdout) == {
        "sanity": 1, **jobs, "analyze": 3, "tabular": 1, "llm_audit": 1, "mvp_criteria": 1,
        "summarize": 1, "figures": 1, "report": 1, "status": 1, "all": 1}
    figures = [fields for rule, fields in dry_run_jobs(result.stdout) if rule == "figures"]
    assert sorted(figures[0]["output"].split(", ")) == sorted(f"results/figures/{name}.png" for name in FIGURE_SPECS)
    printed = dry_run_jobs(result.stdout)
    assert len(printed) == sum(job_counts(result.stdout).values())
    from wmil import layout

    for rule, fields in printed:  # every heavy job is benchmarked; every job but `all` says what it needs
        if rule in ("sanity", "train", "train_seeds_10_11_12_13_14", "analyze", "tabular", "llm_audit", "summarize",
                    "figures", "report"):
            assert fields["benchmark"].startswith(f"{layout.BENCHMARKS}/"), rule
        if rule != "all":
            assert re.search(r"\bmem_mb=\d+", fields["resources"]) and re.search(r"\bruntime=\d+", fields["resources"]), rule


def test_dry_run_takes_another_params_file_whole(tmp_path):
    """`--configfile FILE` or `--config params=FILE` replaces params.yaml, and the wmil commands read that
    file; single `--config KEY=VALUE` settings, which they would never see, are refused."""
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(tiny_params()))  # seeds 10 and 11
    jobs = sum(len(e.tasks) for e in load_params(other).experiments.values())
    for args in (["--configfile", str(other)], ["--config", f"params={other}"]):
        result = sh([str(BIN / "snakemake"), "-n", "--forceall", "all", *args], ROOT)
        assert job_counts(result.stdout)["train"] == jobs
        commands = [line for line in result.stdout.splitlines() if " wmil train " in line]
        assert len(commands) == jobs and all(f"--params {other} " in c and " --seeds 10 11 " in c for c in commands)
    refused = subprocess.run([str(BIN / "snakemake"), "-n", "all", "--config", "seeds=[0]"], cwd=ROOT, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "the params come from one file" in refused.stdout + refused.stderr


def test_an_experiments_own_seeds_get_their_own_train_rule(tmp_path):
    """Experiments that set `seeds:` (and those that extend them) train and evaluate exactly those
    seeds, through rules of their own; the others keep the top-level seeds and rules."""
    raw = tiny_params()  # top-level seeds 10 and 11
    raw["experiments"]["rl_only"]["seeds"] = [13, 15, 17]
    other = tmp_path / "seeds.yaml"
    other.write_text(yaml.safe_dump(raw))
    result = sh([str(BIN / "snakemake"), "-n", "--forceall", "-p", "all", "--configfile", str(other)], ROOT)
    params = load_params(other)
    tasks = params.experiments["rl_only"].tasks  # ppo's, through `extends`
    own = {n for n in params.experiments if params.seeds_of(n) == (13, 15, 17)}
    assert "rl_only" in own  # and any experiment that extends it, with its seeds
    own_tasks = sum(len(params.experiments[n].tasks) for n in own)
    counts = job_counts(result.stdout)
    assert counts["train_seeds_13_15_17"] == own_tasks
    assert counts["train"] == sum(len(e.tasks) for e in params.experiments.values()) - own_tasks
    trains = [line for line in result.stdout.splitlines() if " wmil train " in line]
    mine = [any(f"--experiment {n} " in c for n in own) for c in trains]
    assert {" --seeds 13 15 17 " in c for c, m in zip(trains, mine) if m} == {True}
    assert {" --seeds 10 11 " in c for c, m in zip(trains, mine) if not m} == {True}
    evaluated = {f for rule, fields in dry_run_jobs(result.stdout) if rule == "train_seeds_13_15_17"
                 for f in fields["output"].split(", ") if f.endswith("eval.json")}
    assert evaluated == {f"results/runs/rl_only/{t}/seed{s}/eval.json"
                         for t in tasks for s in (13, 15, 17)}


def test_slurm_profile_leaves_resources_to_the_rules():
    """Resources live in the rules alone: a profile that set them too would silently override them."""
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    assert not {"default-resources", "set-resources", "set-threads"} & set(profile)


def test_a_stale_schema_stops_the_workflow_with_the_command_that_regenerates_it(tmp_path):
    """As after adding a task without regenerating the schema (test_config checks the committed one):
    Snakemake stops before validating the params against it, and names the fix."""
    shutil.copytree(ROOT / "workflow", tmp_path / "workflow")
    shutil.copy(ROOT / "params.yaml", tmp_path)
    schema = tmp_path / "workflow/schemas/params.schema.yaml"
    stale = yaml.safe_load(schema.read_text())
    tasks = stale["properties"]["defaults"]["properties"]["env"]["properties"]["task"]["enum"]
    tasks.remove(tasks[-1])  # as it was before the last task was added
    schema.write_text(yaml.safe_dump(stale, sort_keys=False))
    result = subprocess.run([str(BIN / "snakemake"), "-n", "all"], cwd=tmp_path, env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "is stale" in said and "regenerate it with `wmil schema --out workflow/schemas/params.schema.yaml`" in said


def test_smoke_dag_builds_everything_then_is_a_noop(tmp_path):
    """First with an LLM parent that cannot start (every other output is built, the report marks
    what is missing, the invocation fails naming the jobs), then with the real one."""
    from wmil.jobs import failure_of
    from wmil.reporting.figures import FIGURE_SPECS

    broken = tiny_params()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    broken["defaults"]["parent"]["llm"].update(base_url=dead, max_retries=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(broken))
    snakemake = [str(BIN / "snakemake"), "-s", str(ROOT / "workflow/Snakefile"), "-d", str(tmp_path), "--cores", "2"]
    failed = subprocess.run([*snakemake, "all"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=900)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    results = tmp_path / "results"
    llm_runs = [f"runs/llm_solve/pattern_echo/seed{s}" for s in (10, 11)]
    assert "train experiment=llm_solve task=pattern_echo: exit code 2; log: results/logs/train/llm_solve/pattern_echo.log" in said
    assert dead in (results / "logs/train/llm_solve/pattern_echo.log").read_text()  # the log says why
    assert "llm_audit: exit code 2; log: results/logs/llm_audit.log" in said
    assert json.loads((results / "metrics/sanity.json").read_text())["passed"]
    assert json.loads((results / "metrics/mvp_criteria.json").read_text())["passed"]
    summary = json.loads((results / "metrics/summary.json").read_text())
    assert summary["experiments"]["llm_solve"] == {"missing": True}
    assert {m["result"] for m in summary["missing"]} == set(llm_runs)
    assert summary["experiments"]["ppo"]["success_greedy"]["conditional"]["per_seed"]  # the rest is complete
    for name in FIGURE_SPECS:  # every figure is a real PNG, a placeholder where its input is missing
        assert (results / f"figures/{name}.png").read_bytes().startswith(b"\x89PNG"), name
    page = (results / "report/report.html").read_text()
    assert "<h2>Missing results</h2>" in page and "metrics/llm_audit.json: job &#x27;llm_audit&#x27; failed" in page
    table = (results / "report/summary.md").read_text()
    assert "| llm_solve | pattern_echo | 2 | missing |" in table and "LLM parent audit: missing" in table
    # the records are gone, so the same command redoes exactly the failed jobs and what reads them
    assert all(failure_of(results / run / "metrics.json") is None for run in llm_runs)
    redo = job_counts(sh([*snakemake, "-n", "all"], tmp_path).stdout)
    assert redo == {"train": 1, "llm_audit": 1, "summarize": 1, "figures": 1, "report": 1, "status": 1, "all": 1}

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    sh([*snakemake, "all"], tmp_path)
    criteria = json.loads((results / "metrics/mvp_criteria.json").read_text())
    assert criteria["passed"] and set(criteria["seeds"]) == {"pattern_echo/seed10", "pattern_echo/seed11"}
    assert json.loads((results / "metrics/sanity.json").read_text())["passed"]
    summary = json.loads((results / "metrics/summary.json").read_text())
    assert set(summary["experiments"]) == set(load_params(tmp_path / "params.yaml").experiments)
    assert len(summary["experiments"]["ppo"]["success_greedy"]["conditional"]["per_seed"]) == 2
    assert set(summary["probability_of_improvement"]) == {"random", "rl_only", "kl_distill"}
    assert set(summary["representation"]) == {"pattern_echo", "sequence_next", "conditional"}
    for seed in (10, 11):
        run_dir = results / f"runs/mvp/pattern_echo/seed{seed}"
        assert json.loads((run_dir / "metrics.json").read_text())["env_steps"] == 3000
        assert json.loads((run_dir / "eval.json").read_text())["seed"] == seed
    assert (results / "logs/train/mvp/pattern_echo.log").exists()  # one job trains every seed
    assert (results / "benchmarks/train/mvp/pattern_echo.tsv").exists()
    assert (results / "benchmarks/figures.tsv").exists() and (results / "benchmarks/summarize.tsv").exists()
    page = (results / "report/report.html").read_text()
    for name in FIGURE_SPECS:  # every figure exists, is a real PNG and is embedded in the report
        png = (results / f"figures/{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, name
        assert f'<figure id="{name}"' in page
    assert "| experiment |" in (results / "report/summary.md").read_text()
    seen = probe(results / "report/report.html", tmp_path)  # in a real browser, with no network
    assert seen["images"] == len(FIGURE_SPECS) and seen["broken"] == [] and seen["figures"] == list(FIGURE_SPECS)
    assert seen["resources"] == [] and {"Summary", "What does an LLM parent teach?"} <= set(seen["sections"])
    assert {"Headline numbers.", "LLM runs against their audit."} <= set(seen["tables"])
    redrawn = tmp_path / "again"  # figures are byte-identical when redrawn (jitter is seeded)
    sh([str(BIN / "wmil"), "figure", "regret", "tsne", "--params", "params.yaml", "--out-dir", str(redrawn)], tmp_path)
    assert sorted(p.name for p in redrawn.iterdir()) == ["regret.png", "tsne.png"]
    for name in ("regret", "tsne"):
        assert (redrawn / f"{name}.png").read_bytes() == (results / f"figures/{name}.png").read_bytes()
    again = sh([*snakemake, "-n", "all"], tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr

    # a params change reruns only the jobs it touches
    def plan_after(edit) -> dict[str, int]:
        changed = tiny_params()
        edit(changed)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
        counts = job_counts(sh([*snakemake, "-n", "all"], tmp_path).stdout)
        return {k: v for k, v in counts.items() if k not in ("figures", "report", "status", "all")}

    jobs = sum(len(e.tasks) for e in load_params(tmp_path / "params.yaml").experiments.values())  # experiment x task
    assert plan_after(lambda p: p.update(seeds=[10, 11, 12])) == {
        "train": jobs, "analyze": 3, "tabular": 1, "mvp_criteria": 1, "summarize": 1}
    assert plan_after(lambda p: p["experiments"]["mvp"]["overrides"]["training"].update(max_steps=4000)) == {
        "train": 1, "mvp_criteria": 1, "summarize": 1}
    # the train jobs evaluate too: with finished runs they only re-finalise (the same bytes) and
    # re-evaluate them, and what reads their models and curves follows
    assert plan_after(lambda p: p["evaluation"].update(episodes=300)) == {
        "train": jobs, "analyze": 3, "tabular": 1, "mvp_criteria": 1, "summarize": 1}
    assert plan_after(lambda p: p["mvp_criteria"].update(by_step=2000)) == {"mvp_criteria": 1}
    # how the LLM is reached changes nothing it computes; what it is asked reruns only its runs
    assert plan_after(lambda p: p["defaults"]["parent"]["llm"].update(concurrency=8, timeout_s=5.0)) == {}
    assert plan_after(lambda p: p["defaults"]["parent"]["llm"].update(max_tokens=16)) == {
        "train": 1, "llm_audit": 1, "summarize": 1}
    # a key only PPO reads reruns the PPO family's runs, never the REINFORCE ones (mvp, t1, sweeps)
    params = load_params(tmp_path / "params.yaml")
    ppo_jobs = sum(params.run_config(e, spec.tasks[0]).algorithm.name == "ppo" for e, spec in params.experiments.items()
                   for _ in spec.tasks)
    assert 0 < ppo_jobs < jobs
    assert plan_after(lambda p: p["defaults"]["algorithm"].update(clip_eps=0.3)) == {
        "train": ppo_jobs, "analyze": 3, "summarize": 1}

    # the code a job runs, by its syntax: a docstring or comment reruns nothing, PPO's arithmetic
    # only the PPO family (dry runs against an edited copy of the package)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    code = tmp_path / "code"
    shutil.copytree(ROOT / "wmil", code / "wmil", ignore=shutil.ignore_patterns("__pycache__"))

    def plan_after_edit(module: str, old: str, new: str) -> dict[str, int]:
        source = code / "wmil" / module
        text = source.read_text()
        assert old in text, (module, old)
        source.write_text(text.replace(old, new, 1))
        try:
            result = subprocess.run([*snakemake, "-n", "all"], cwd=tmp_path, env={**ENV, "PYTHONPATH": str(code)},
                                    capture_output=True, text=True, timeout=300)
        finally:
            source.write_text(text)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        counts = job_counts(result.stdout)
        return {k: v for k, v in counts.items() if k not in ("figures", "report", "status", "all")}

    assert plan_after_edit("config.py", '"""Typed configuration', '"""Typed, validated configuration') == {}
    assert plan_after_edit("config.py", "import copy\n", "import copy  # deep copies of the defaults\n") == {}
    assert plan_after_edit("training/ppo.py", "value_loss = 0.5 *", "value_loss = 0.25 *") == {
        "train": ppo_jobs, "analyze": 3, "summarize": 1}


def test_every_committed_result_is_an_output_of_the_dag():
    """... but the LLM response cache's export, which every job that asks the LLM rewrites (one
    per cache file of the params)."""
    from wmil.parents.llm.cache import export_path

    params = load_params(ROOT / "params.yaml")
    exports = {str(export_path(params.run_config(e).parent.llm.cache_path)) for e in params.experiments}
    tracked = sh(["git", "ls-files", "results"], ROOT).stdout.split()
    summary = sh([str(BIN / "snakemake"), "--summary"], ROOT).stdout.splitlines()
    outputs = {line.split("\t")[0] for line in summary[1:] if line.strip()}
    stray = [f for f in tracked if f not in outputs | exports and not f.endswith(".gitignore")]
    assert not stray, f"committed under results/ but produced by no rule: {stray}"


def test_a_stale_lock_of_a_killed_snakemake_is_removed_but_a_live_one_kept(tmp_path):
    import signal
    import time

    project = tmp_path / "project"
    shutil.copytree(ROOT / "workflow", project / "workflow")
    (project / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/unlock-if-idle.sh", project / "scripts")
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    running = subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", "all"], cwd=project, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    locks = project / ".snakemake/locks"
    try:
        for _ in range(600):
            if locks.is_dir() and any(locks.iterdir()):
                break
            time.sleep(0.1)
        kept = sh([str(project / "scripts/unlock-if-idle.sh"), str(BIN / "snakemake")], project)
        assert "is running" in kept.stderr and any(locks.iterdir())
    finally:
        os.killpg(running.pid, signal.SIGKILL)  # what a user's kill -9 leaves behind: the lock
        running.wait()
    blocked = subprocess.run([str(BIN / "snakemake"), "--cores", "1", "results/metrics/sanity.json"], cwd=project,
                             env=ENV, capture_output=True, text=True, timeout=120)
    assert blocked.returncode != 0 and "LockException" in blocked.stdout + blocked.stderr
    freed = sh([str(project / "scripts/unlock-if-idle.sh"), str(BIN / "snakemake")], project)
    assert "removing a stale Snakemake lock" in freed.stderr and not (locks.is_dir() and any(locks.iterdir()))


def test_the_browser_probe_sees_a_broken_image_and_a_fetch(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<!DOCTYPE html><html><body><h2>A</h2><figure id="f"><img alt="gone" src="missing.png"></figure>'
                    '<img alt="remote" src="https://example.com/x.png"></body></html>')
    seen = probe(page, tmp_path)
    assert sorted(seen["broken"]) == ["gone", "remote"] and seen["figures"] == ["f"]
    assert any(r.startswith("https://example.com") for r in seen["resources"])
