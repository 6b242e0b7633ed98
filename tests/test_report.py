"""The report's tables: numbers people can read, every table with its unit."""

from __future__ import annotations

import pytest

from wmil.reporting.report import COUNT, Table, headline, interval, quality_table


def estimate(value, lo, hi, per_seed=None):
    return {"value": value, "lo": lo, "hi": hi, "per_seed": per_seed}


def test_step_counts_print_with_thousands_separators_and_rates_with_two_decimals():
    assert interval(estimate(1683.4, 1533.0, 1832.6), COUNT) == "1,683 [1,533, 1,833]"
    assert interval(estimate(24576.0, 24576.0, 24576.0), COUNT) == "24,576 [24,576, 24,576]"
    assert interval(estimate(0.9876, 0.955, 1.0)) == "0.99 [0.95, 1.00]"  # 0.955 is 0.95499... in binary
    assert interval(None) == "n/a"


def test_the_headline_table_reads_like_the_paper(params):
    exp = "mvp"
    summary = {"experiments": {name: {"missing": True} for name in params.experiments},
               "settings": {"score": "greedy held-out success", "aggregate": "IQM over seeds"}}
    summary["experiments"][exp] = {
        "success_greedy": {"pattern_echo": estimate(1.0, 1.0, 1.0), "all_tasks": estimate(1.0, 1.0, 1.0)},
        "steps_to_0.9_censored": {"all_tasks": estimate(1680.0, 1530.0, 1830.0)},
        "failures_to_0.99": {"all_tasks": estimate(810.0, 738.0, 993.0)},
        "reached_0.9": {"pattern_echo": 5}, "reached_0.99": {"pattern_echo": 4}}
    table = headline(params, summary)
    row = next(r for r in table.rows if r["experiment"] == exp)
    assert row["env steps to 90% (reached/runs)"] == "1,680 [1,530, 1,830] (5/5)"
    assert row["failed episodes to 99% (reached/runs)"] == "810 [738, 993] (4/5)"
    assert row["success: pattern_echo"] == "1.00 [1.00, 1.00]" and row["success: sequence_next"] == "n/a"
    assert {r["success: all tasks"] for r in table.rows if r["experiment"] != exp} == {"missing"}
    assert "a rate in [0, 1]" in table.note and "env steps" in table.note  # the units
    markdown = "\n".join(table.markdown())
    assert "| mvp | pattern_echo | 1.00 [1.00, 1.00] |" in markdown and "e+0" not in markdown


def test_every_table_says_its_unit():
    point = {"experiment": "q", "task": "pattern_echo", "false_positive_rate": 0.3, "false_negative_rate": 0.0,
             "j": 0.7, "noise_correction": True, "success_greedy": estimate(0.92, 0.78, 1.0)}
    table = quality_table({"parent_quality": [point]})
    assert table.rows == [{"experiment": "q", "task": "pattern_echo", "FPR": "0.30", "FNR": "0.00", "J": "0.70",
                           "noise-corrected": "yes", "held-out success": "0.92 [0.78, 1.00]"}]
    assert "rate" in table.note
    with pytest.raises(ValueError, match="table 'T': rows with different columns"):
        Table("T", "cells are rates", [{"a": "1"}, {"b": "2"}])
    empty = Table("T", "cells are rates", [])
    assert empty.markdown() == ["## T", "", "cells are rates (no rows)", ""]


def test_the_world_model_table_and_findings_state_each_variant_against_the_ablation(params):
    from wmil.reporting.report import world_model_findings, world_model_table

    def experiment(steps, reached):
        return {"steps_to_0.9_censored": {t: estimate(steps, steps - 500, steps + 500) for t in TASKS},
                "success_greedy": {t: estimate(1.0, 1.0, 1.0) for t in TASKS}, "reached_0.9": dict.fromkeys(TASKS[:-1], reached)}

    def poi(p, lo, hi):
        return {t: {"p": p, "lo": lo, "hi": hi} for t in TASKS}

    TASKS = ["pattern_echo", "sequence_next", "conditional", "all_tasks"]
    summary = {"experiments": {"rl_only": experiment(32768, 0), "ppo": experiment(20864, 5),
                               "raw_then_embedding": experiment(32768, 0)},
               "world_model": {"reference": "rl_only", "variants": {  # as summary.json sorts them
                   "raw_then_embedding": {"target": "embedding", "world_model_coef": 100.0, "embedding_after_steps": 0,
                                          "embedding_after_success": 0.5, "p_steps": poi(0.5, 0.2, 0.8),
                                          "p_success": poi(0.1, 0.0, 0.3)},
                   "ppo": {"target": "raw", "world_model_coef": 100.0, "embedding_after_steps": 0,
                           "embedding_after_success": 0.0, "p_steps": poi(0.96, 0.8, 1.0), "p_success": poi(0.5, 0.5, 0.5)}}}}
    rows = world_model_table(params, summary).rows
    # the reference first, then the variants in the order of evaluation.world_model
    assert list(dict.fromkeys(r["experiment"] for r in rows)) == ["rl_only", "ppo", "raw_then_embedding"]
    assert [(r["experiment"], r["task"]) for r in rows[:4]] == [("rl_only", t) for t in TASKS]
    assert rows[0]["P(fewer steps than rl_only)"] == "-" and rows[0]["target"] == "none"
    ppo = next(r for r in rows if r["experiment"] == "ppo" and r["task"] == "sequence_next")
    assert ppo["env steps to 90% (reached)"] == "20,864 [20,364, 21,364] (5/5)"
    assert ppo["P(fewer steps than rl_only)"] == "0.96 [0.80, 1.00] better"
    assert ppo["P(higher success than rl_only)"] == "0.50 [0.50, 0.50] no clear difference"
    emb = next(r for r in rows if r["experiment"] == "raw_then_embedding" and r["task"] == "all_tasks")
    assert emb["target"] == "embedding (raw until success 0.5)" and emb["coef"] == "100"
    assert emb["env steps to 90% (reached)"] == "32,768 [32,268, 33,268] (0/15)"
    assert emb["P(higher success than rl_only)"] == "0.10 [0.00, 0.30] worse"
    lines = world_model_findings(params, summary)
    assert lines[0] == ("World model on pattern_echo: beats rl_only: ppo (P(fewer steps) = 0.96 [0.80, 1.00], "
                        "P(higher success) = 0.50 [0.50, 0.50]).")
    summary["world_model"]["variants"].pop("ppo")
    assert world_model_findings(params, summary)[1] == "World model on sequence_next: no variant beats rl_only (a null result)."


def test_the_curriculum_table_and_finding_say_whether_it_earns_its_place():
    from wmil.reporting.report import curriculum_finding, curriculum_table

    def measure(curriculum, method, p, lo, hi):
        return {"curriculum": {"pattern_echo": curriculum, "all_tasks": curriculum},
                "ppo": {"pattern_echo": method, "all_tasks": method},
                "p": {"pattern_echo": {"p": p, "lo": lo, "hi": hi}, "all_tasks": {"p": p, "lo": lo, "hi": hi}}}

    summary = {"curriculum": {
        "method": "ppo", "curriculum": "curriculum", "budget": {"pattern_echo": 16384},
        "success_level2": measure(estimate(0.5, 0.4, 0.6), estimate(1.0, 1.0, 1.0), 0.0, 0.0, 0.0),
        "success_all_levels": measure(estimate(0.83, 0.8, 0.87), estimate(0.9, 0.85, 0.95), 0.3, 0.1, 0.55),
        "steps_to_0.9": measure(estimate(16384.0, 16384.0, 16384.0), estimate(8000.0, 7000.0, 9000.0), 0.0, 0.0, 0.0)}}
    table = curriculum_table(summary)
    assert len(table.rows) == 6 and "pattern_echo 16,384" in table.note and "rate" in table.note
    assert table.rows[0] == {"measure": "held-out success, level 2", "task": "pattern_echo", "curriculum": "0.50 [0.40, 0.60]",
                             "ppo": "1.00 [1.00, 1.00]", "better": "higher", "P(curriculum better)": "0.00 [0.00, 0.00] worse"}
    assert table.rows[3]["P(curriculum better)"] == "0.30 [0.10, 0.55] no clear difference"
    assert table.rows[5]["curriculum"] == "16,384 [16,384, 16,384]" and table.rows[5]["better"] == "fewer"
    assert "<td>fewer</td>" in table.html()
    [line] = curriculum_finding(summary)
    assert line.endswith("it does not earn its place.") and "(worse)" in line and "(no clear difference)" in line
    summary["curriculum"]["success_level2"]["p"]["all_tasks"] = {"p": 0.9, "lo": 0.7, "hi": 1.0}
    summary["curriculum"]["steps_to_0.9"]["p"]["all_tasks"] = {"p": 0.5, "lo": 0.3, "hi": 0.7}
    assert curriculum_finding(summary)[0].endswith("it earns its place.")
    assert curriculum_finding({"curriculum": {}}) == [] and curriculum_table({}).rows == []


def test_the_llms_programs_are_shown_as_written_and_a_refused_one_said_so():
    from wmil.reporting.report import REFUSED_TWICE, programs_html, programs_markdown, programs_table

    source = "def answer(target):\n    return target if target < 8 else 0"
    audit = {"protocols": {"program": {
        "model": "coder", "by_task_level": {"pattern_echo": {"2": {"states": 16, "confusion": {"rule_right": {"llm_right": 8}}}}},
        "programs": {"pattern_echo": {"answer": source, "in_level": {"2": {
            "source": None, "responses": ["a", "b"], "accepted": 0, "problems": 16, "precision": None, "recall": 0.0}}}}}}}
    [row] = programs_table(audit).rows
    assert row["answer program right"] == "8/16" and row["refused first"] == "yes" and row["in_level accepts"] == "0 of 16"
    text = "\n".join(programs_markdown(audit))
    assert f"### pattern_echo: answer\n\n```python\n{source}\n```" in text
    assert f"### pattern_echo: in_level, level 2\n\n{REFUSED_TWICE}" in text
    page = programs_html(audit)
    assert "<pre><code>def answer(target):\n    return target if target &lt; 8 else 0</code></pre>" in page
    assert programs_markdown({"protocols": {}}) == [] and programs_html(None) == ""
