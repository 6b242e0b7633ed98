"""The report's tables: numbers people can read, every table with its unit."""

from __future__ import annotations

from wmil.report import COUNT, Table, headline, interval, quality_table


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
    empty = Table("T", "cells are rates", [])
    assert empty.markdown() == ["## T", "", "cells are rates (no rows)", ""]
