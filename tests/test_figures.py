"""The paper's figures: each drawn from the result files it declares alone, a placeholder naming
the failed job where one it needs is missing."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import REPO_ROOT

from wmil import layout
from wmil.errors import MissingResult
from wmil.jobs import guard
from wmil.reporting.figures import FIGURE_SPECS, Context, draw, placeholder

COMMITTED = REPO_ROOT / "results"
#: Figures whose inputs are all in git (t-SNE reads ``results/analysis``, which DVC caches).
DRAWN_FROM_GIT = [name for name, spec in FIGURE_SPECS.items()
                  if all(layout.under(COMMITTED, path).exists() for path in spec.inputs)]


def test_most_figures_can_be_checked_against_the_committed_results():
    assert set(FIGURE_SPECS) - set(DRAWN_FROM_GIT) == {"tsne"}


def test_every_input_is_a_result_file_of_the_layout():
    for name, spec in FIGURE_SPECS.items():
        for path in spec.inputs:
            assert path.is_relative_to(layout.RESULTS) and path.suffix in (".json", ".csv"), (name, path)


@pytest.mark.parametrize("name", DRAWN_FROM_GIT)
def test_a_figure_is_drawn_from_its_declared_inputs_alone(name, params, tmp_path):
    """What Snakemake hands the figures rule is enough: a figure reading an undeclared file would
    fail here (and, in the pipeline, be drawn before that file was made)."""
    results = tmp_path / "results"
    for path in FIGURE_SPECS[name].inputs:
        target = layout.under(results, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(layout.under(COMMITTED, path), target)
    draw(name, params, results, tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")


def test_a_figure_whose_input_failed_is_a_placeholder_naming_the_job(tmp_path, params):
    results = tmp_path / "results"
    guard("llm_audit", tmp_path / "audit.log", [layout.under(results, layout.LLM_AUDIT)],
          [sys.executable, "-c", "raise SystemExit(2)"])
    with pytest.raises(MissingResult) as missing:
        FIGURE_SPECS["llm_audit"].draw(Context(params, results))
    text = placeholder("llm_audit", missing.value).axes[0].texts[0].get_text()
    assert "llm_audit: not drawn" in text and "job 'llm_audit' failed (exit code 2)" in text
    assert f"log: {tmp_path / 'audit.log'}" in text
    draw("llm_audit", params, results, tmp_path / "f.png")  # the job draws the placeholder and goes on
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["final_success", "steps_to_90", "world_model"])
def test_a_figure_of_an_experiment_with_a_failed_run_names_that_run_and_its_job(name, params, tmp_path):
    """The summary marks an experiment with a failed run ``{"missing": true}`` and lists the run:
    a figure that shows the experiment says which run and job, where it would stop the figures job."""
    method = params.evaluation.method
    summary = json.loads(layout.under(COMMITTED, layout.SUMMARY).read_text())
    summary["experiments"][method] = {"missing": True}
    summary["missing"] = [{"result": f"runs/{method}/pattern_echo/seed10", "experiment": method,
                           "job": f"train experiment={method} task=pattern_echo", "reason": "exit code 2",
                           "log": f"results/logs/train/{method}/pattern_echo.log"}]
    target = layout.under(tmp_path / "results", layout.SUMMARY)
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(summary))
    for path in FIGURE_SPECS[name].inputs:
        if path != layout.SUMMARY:
            layout.under(tmp_path / "results", path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(layout.under(COMMITTED, path), layout.under(tmp_path / "results", path))
    with pytest.raises(MissingResult, match=rf"runs/{method}/pattern_echo/seed10: missing: job 'train experiment={method} "
                                            r"task=pattern_echo' failed \(exit code 2\)"):
        FIGURE_SPECS[name].draw(Context(params, tmp_path / "results"))
