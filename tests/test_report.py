"""The report: a summary of one sentence per question, then each question's section (its answer,
its tables, its figures beside them); numbers people can read, every table with its unit."""

from __future__ import annotations

import re

import pytest

from wmil.reporting.report import COUNT, Table, headline, interval, quality_table


def estimate(value, lo, hi, per_seed=None):
    return {"value": value, "lo": lo, "hi": hi, "per_seed": per_seed}


def test_step_counts_print_with_thousands_separators_and_rates_with_two_decimals():
    assert interval(estimate(1683.4, 1533.0, 1832.6), COUNT) == "1,683 [1,533, 1,833]"
    assert interval(estimate(24576.0, 24576.0, 24576.0), COUNT) == "24,576 [24,576, 24,576]"
    assert interval(estimate(0.9876, 0.955, 1.0)) == "0.99 [0.95, 1.00]"  # 0.955 is 0.95499... in binary
    assert interval(None) == "n/a"


def km_entry(median, lo, hi, reached, runs=10, budget=16384):
    return {"median": median, "lo": lo, "hi": hi, "reached": reached, "runs": runs, "budget": budget, "per_seed": []}


def test_kaplan_meier_medians_print_with_their_interval_share_and_open_ends():
    from wmil.reporting.report import km

    assert km(km_entry(8576.0, 7936.0, 9984.0, 10)) == "8,576 [7,936, 9,984] (10/10)"
    assert km(km_entry(30000.0, 21000.0, None, 6, budget=32768)) == "30,000 [21,000, ...] (6/10)"
    assert km(km_entry(None, None, None, 3, budget=32768)) == "> 32,768 (3/10)"  # fewer than half: no median


def test_the_headline_table_reads_like_the_paper(params):
    exp = "mvp"
    summary = {"experiments": {name: {"missing": True} for name in params.experiments},
               "settings": {"score": "greedy success", "aggregate": "IQM over seeds", "steps_to_0.9": "Kaplan-Meier"}}
    summary["experiments"][exp] = {
        "seeds": 10, "success_greedy": {"pattern_echo": estimate(1.0, 1.0, 1.0), "all_tasks": estimate(1.0, 1.0, 1.0)},
        "held_out_success_greedy": {}, "steps_to_0.9": {"pattern_echo": km_entry(1680.0, 1530.0, 1830.0, 10)},
        "failures_to_0.99": {"pattern_echo": estimate(810.0, 738.0, 993.0)}, "reached_0.99": {"pattern_echo": 9}}
    summary["experiments"]["ppo"] = {
        "seeds": 10, "success_greedy": {t: estimate(0.95, 0.9, 1.0) for t in ("pattern_echo", "sequence_next", "conditional")},
        "held_out_success_greedy": {"conditional": estimate(0.25, 0.2, 0.3), "sequence_next": estimate(0.0, 0.0, 0.0)},
        "steps_to_0.9": {t: km_entry(None, None, None, 2) for t in ("pattern_echo", "sequence_next", "conditional")},
        "failures_to_0.99": {t: estimate(810.0, 738.0, 993.0) for t in ("pattern_echo", "sequence_next", "conditional")},
        "reached_0.99": dict.fromkeys(("pattern_echo", "sequence_next", "conditional"), 1)}
    table = headline(params, summary)
    row = next(r for r in table.rows if r["experiment"] == exp)
    assert row == {"experiment": "mvp", "task": "pattern_echo", "seeds": "10",
                   "success (training problems)": "1.00 [1.00, 1.00]", "success (held-out problems)": "none held out",
                   "env steps to 90%: median [95% CI] (reached/runs)": "1,680 [1,530, 1,830] (10/10)",
                   "failed episodes to 99% (reached/runs)": "810 [738, 993] (9/10)"}
    cond = next(r for r in table.rows if r["experiment"] == "ppo" and r["task"] == "conditional")
    assert cond["success (held-out problems)"] == "0.25 [0.20, 0.30]"
    assert cond["env steps to 90%: median [95% CI] (reached/runs)"] == "> 16,384 (2/10)"
    assert {r["success (training problems)"] for r in table.rows if r["experiment"] not in (exp, "ppo")} == {"missing"}
    assert "a rate in [0, 1]" in table.note and "env steps" in table.note and "tuning seeds 0-9" in table.note
    markdown = "\n".join(table.markdown())
    assert "| mvp | pattern_echo | 10 | 1.00 [1.00, 1.00] |" in markdown and "e+0" not in markdown


def test_every_table_says_its_unit():
    point = {"experiment": "q", "task": "pattern_echo", "false_positive_rate": 0.3, "false_negative_rate": 0.0,
             "j": 0.7, "noise_correction": True, "success_greedy": estimate(0.92, 0.78, 1.0)}
    table = quality_table({"parent_quality": [point]})
    assert table.rows == [{"experiment": "q", "task": "pattern_echo", "FPR": "0.30", "FNR": "0.00", "J": "0.70",
                           "noise-corrected": "yes", "success (training problems)": "0.92 [0.78, 1.00]"}]
    assert "rate" in table.note
    with pytest.raises(ValueError, match="table 'T': rows with different columns"):
        Table("T", "cells are rates", [{"a": "1"}, {"b": "2"}])
    empty = Table("T", "cells are rates", [])
    assert empty.markdown() == ["### T", "", "cells are rates (no rows)", ""]
    assert empty.html() == "<table><caption><b>T.</b> cells are rates (no rows)</caption></table>"


def test_an_html_cell_breaks_between_numbers_never_inside_an_interval():
    cell = "0.98 [0.91, 1.00] better (Holm p = 0.002)"
    page = Table("T", "rates", [{"P": cell}]).html()
    assert "<td>0.98\u00a0[0.91,\u00a01.00] better (Holm p\u00a0=\u00a00.002)</td>" in page
    assert Table("T", "rates", [{"P": cell}]).markdown()[-2] == f"| {cell} |"  # the markdown keeps plain spaces


def rule_summary(held_out: float, tabular_held_out: float = 0.0, training: float = 0.98) -> dict:
    return {"rule": {"conditional": {
        "chance": 16.0 ** -4, "episode_length": 4,
        "experiments": {"ppo": {"training": estimate(training, training - 0.03, min(1.0, training + 0.02)),
                                "held_out": estimate(held_out, held_out - 0.02,
                                                                                             held_out + 0.02),
                                "seeds": 10}},
        "tabular": {"training": estimate(1.0, 1.0, 1.0), "held_out": estimate(tabular_held_out, 0.0, tabular_held_out),
                    "seeds": 10}}}}


def test_the_rule_table_puts_each_learner_beside_the_lookup_table_and_chance():
    from wmil.reporting.report import rule_table

    table = rule_table(rule_summary(0.5))
    assert [r["learner"] for r in table.rows] == ["ppo", "tabular reference", "chance (1/A per answer, 4 answers)"]
    assert table.rows[0] == {"task": "conditional", "learner": "ppo", "seeds": "10", "training problems": "0.98 [0.95, 1.00]",
                             "held-out problems": "0.50 [0.48, 0.52]"}
    assert table.rows[2]["held-out problems"] == "0.0000" and table.title == "Success on trained and held-out problems"
    assert "Latin square" in table.note and "rate" in table.note


@pytest.mark.parametrize("held_out, training, answer", [
    (0.97, 0.98, "it learns the rule"), (0.5, 0.98, "it generalises beyond a lookup table, short of the rule"),
    (0.01, 0.98, "it memorises: on held-out problems no better than a lookup table"),
    (0.03, 0.05, "no answer: it does not master its own training problems")])  # not "learns the rule"
def test_the_rule_finding_answers_plainly(held_out, training, answer):
    from wmil.reporting.report import interval, rule_findings

    [line] = rule_findings(rule_summary(held_out, tabular_held_out=0.02, training=training), "ppo")
    train = interval(rule_summary(held_out, training=training)["rule"]["conditional"]["experiments"]["ppo"]["training"])
    assert line.startswith(f"Does ppo learn the rule on conditional? Success {train} on its training problems")
    assert f"{held_out:.2f} [" in line and f"): {answer}" in line and line.endswith(".")
    assert rule_findings(rule_summary(0.5), "kl_distill") == []  # no row for it: no sentence


@pytest.mark.parametrize("held_out, training, short", [
    (0.97, 0.98, "learns the rule"), (0.5, 0.98, "generalises beyond a lookup table, short of the rule"),
    (0.01, 0.98, "memorises"), (0.03, 0.05, "does not master its own training problems")])
def test_the_rule_headline_names_the_learner_and_both_successes(held_out, training, short):
    from wmil.reporting.report import interval, rule_answer

    summary = rule_summary(held_out, tabular_held_out=0.02, training=training)
    e = summary["rule"]["conditional"]["experiments"]["ppo"]
    assert rule_answer(summary, "ppo") == (f"On conditional ppo {short}: held-out success {interval(e['held_out'])} "
                                           f"against {interval(e['training'])} on the problems it trained on.")
    assert rule_answer(summary, "kl_distill") is None


def poi(p, lo, hi, verdict=None, p_holm=None):
    out = {"p": p, "lo": lo, "hi": hi, "p_value": None if verdict is None else p_holm}
    return out if verdict is None else {**out, "verdict": verdict, "p_holm": p_holm}


def test_the_world_model_table_and_findings_state_each_variant_against_its_reference(params):
    from wmil.reporting.report import world_model_answer, world_model_findings, world_model_table

    TASKS = ["pattern_echo", "sequence_next", "conditional"]
    SN = ["sequence_next"]

    def experiment(steps, reached, tasks=TASKS):
        return {"seeds": 5, "steps_to_0.9": {t: km_entry(steps, steps - 500, steps + 500, reached, 5) for t in tasks},
                "success_greedy": {t: estimate(1.0, 1.0, 1.0) for t in tasks},
                "held_out_success_greedy": {t: estimate(0.25, 0.2, 0.3) for t in tasks if t != "pattern_echo"}}

    def variant(reference, tasks, steps, head="dynamics", detached=False, fresh=False, target="raw", distill=0.0, **extra):
        return {"reference": reference, "target": target, "head": head, "detached": detached,
                "next_problem": "fresh" if fresh else "rules", "distill_coef": distill, "world_model_coef": 100.0,
                "embedding_after_steps": 0, "embedding_after_success": 0.0, "tasks": tasks,
                "p_steps": steps, "p_success": {t: poi(0.5, 0.5, 0.5, "no clear difference", 1.0) for t in tasks}, **extra}

    better, same = poi(0.96, 0.8, 1.0, "better", 0.004), poi(0.5, 0.2, 0.8, "no clear difference", 1.0)
    summary = {"experiments": {"rl_only": experiment(32768, 0), "ppo": experiment(20864, 5),
                               "answer_head": experiment(20000, 5), "detached_head": experiment(32768, 0),
                               "kl_distill": experiment(4000, 5),
                               "raw_then_embedding": experiment(32768, 0, SN), "ppo_fresh": experiment(32768, 0, SN),
                               "rl_only_fresh": experiment(32768, 0, SN)},
               "world_model": {"variants": {  # as summary.json sorts them
                   "raw_then_embedding": variant("rl_only", SN, {"sequence_next": same}, target="embedding",
                                                 embedding_after_success=0.5),
                   "ppo_fresh": variant("rl_only_fresh", SN, {"sequence_next": {**same, "p_floor": 2 / 252}}, fresh=True),
                   "detached_head": variant("rl_only", TASKS, dict.fromkeys(TASKS, same), detached=True),
                   "kl_distill": variant("rl_only", TASKS, dict.fromkeys(TASKS, same), distill=1.0),
                   "answer_head": variant("rl_only", TASKS, {"pattern_echo": same, "sequence_next": better,
                                                             "conditional": same}, head="answer"),
                   "ppo": variant("rl_only", TASKS, {"pattern_echo": same, "sequence_next": better,
                                                     "conditional": same, "all_tasks": poi(0.8, 0.6, 0.9)})},
                   "next_problem_holds_answer": {"conditional": False, "pattern_echo": False, "sequence_next": True}},
               "settings": {"comparisons_tested": 46, "alpha": 0.05}}
    rows = world_model_table(params, summary).rows
    # each reference first, then its variants in the order of evaluation.world_model, each on its own tasks
    order = [n for n in params.evaluation.world_model if n in summary["world_model"]["variants"]]
    assert order == ["ppo", "kl_distill", "answer_head", "detached_head", "raw_then_embedding", "ppo_fresh"]
    assert [(r["experiment"], r["task"]) for r in rows] == [
        *(("rl_only", t) for t in TASKS), *((n, t) for n in order[:4] for t in TASKS), ("raw_then_embedding", "sequence_next"),
        ("rl_only_fresh", "sequence_next"), ("ppo_fresh", "sequence_next")]
    assert rows[0]["P(fewer steps than its reference)"] == "-" and rows[0]["world model"] == "none"
    ppo = next(r for r in rows if r["experiment"] == "ppo" and r["task"] == "sequence_next")
    assert ppo["env steps to 90%"] == "20,864 [20,364, 21,364] (5/5)" and ppo["seeds"] == "5"
    assert ppo["P(fewer steps than its reference)"] == "0.96 [0.80, 1.00] better (Holm p = 0.004)"
    assert ppo["held-out success"] == "0.25 [0.20, 0.30]" and ppo["world model"] == "raw next state"
    labels = {r["experiment"]: r["world model"] for r in rows}
    assert labels["answer_head"] == "answer head (next problem from the state alone)"
    assert labels["detached_head"] == "raw next state, detached from the encoder"
    assert labels["ppo_fresh"] == "raw next state, fresh problem after each answer"
    assert labels["raw_then_embedding"] == "embedding (raw until success 0.5)"
    assert world_model_answer(params, summary) == (
        "ppo (with a world model) beats rl_only (the same learner without one) on 1 of 3 tasks; env steps to 90% rolling "
        "success, with against without: 20,864 [20,364, 21,364] against 32,768 [32,268, 33,268] on pattern_echo, "
        "20,864 [20,364, 21,364] against 32,768 [32,268, 33,268] on sequence_next and 20,864 [20,364, 21,364] against "
        "32,768 [32,268, 33,268] on conditional.")
    lines = world_model_findings(params, summary)  # what the controls say: the probabilities are the table's
    assert len(lines) == 3 and not any("Holm p" in line for line in lines)
    explained = next(line for line in lines if line.startswith("The world model on sequence_next"))
    assert explained == (
        "The world model on sequence_next: ppo beats rl_only (20,864 [20,364, 21,364] (5/5) env steps to 90% against "
        "32,768 [32,268, 33,268] (0/5) env steps to 90%); a head that predicts the next problem from the state alone "
        "(no action) does as well: the next problem holds the answer, so the gain is supervision from the parent's "
        "corrections, not a model of dynamics (answer_head: 20,000 [19,500, 20,500] (5/5) env steps to 90%); the head "
        "detached from the encoder does not beat rl_only: the gain comes through the shared representation "
        "(detached_head: 32,768 [32,268, 33,268] (0/5) env steps to 90%); with a fresh problem after each answer (the "
        "next state reveals no answer) the world model does not beat rl_only_fresh (success 1.00 [1.00, 1.00] against "
        "1.00 [1.00, 1.00], though five runs against five cannot reach a verdict among this report's tests); told the "
        "parent's answer outright (kl_distill), a learner needs 4,000 [3,500, 4,500] (5/5) env steps to 90%.")
    summary["experiments"]["answer_head"] = experiment(30000, 1)  # beats rl_only, but one run in five reaches 90%
    part = next(line for line in world_model_findings(params, summary) if line.startswith("The world model on seq"))
    assert ("(no action) gets part of the way: the next problem holds the answer, and that label alone carries some of "
            "the gain (answer_head: 30,000") in part
    assert labels["kl_distill"] == "raw next state, plus KL to the parent's answer"
    assert "The world model on pattern_echo: ppo does not beat rl_only; nothing to explain." in lines


def test_the_curriculum_table_and_finding_say_whether_it_earns_its_place():
    from wmil.reporting.report import climb_table, curriculum_answer, curriculum_finding, curriculum_table

    def measure(curriculum, reference, p, lo, hi, verdict, pooled=True):
        tested = {"pattern_echo": poi(p, lo, hi, verdict, 0.01 if verdict != "no clear difference" else 0.4)}
        return {"curriculum": {"pattern_echo": curriculum, **({"all_tasks": curriculum} if pooled else {})},
                "ppo_matched": {"pattern_echo": reference, **({"all_tasks": reference} if pooled else {})},
                "p": {**tested, **({"all_tasks": poi(p, lo, hi)} if pooled else {})}}

    climb = [{"seed": 10 + i, "top_level": 2 if i < 4 else 1, "level_entered_at": [0, 1024, 4096] if i < 4 else [0, 2048, None],
              "steps_per_level": [1024, 3072, 28672] if i < 4 else [2048, 30720, 0]} for i in range(5)]
    summary = {"curriculum": {
        "reference": "ppo_matched", "curriculum": "curriculum", "budget": {"pattern_echo": 32768},
        "climb": {"pattern_echo": climb}, "reached_top": {"pattern_echo": 4},
        "success_level2": measure(estimate(0.5, 0.4, 0.6), estimate(1.0, 1.0, 1.0), 0.0, 0.0, 0.0, "worse"),
        "success_all_levels": measure(estimate(0.83, 0.8, 0.87), estimate(0.9, 0.85, 0.95), 0.3, 0.1, 0.55,
                                      "no clear difference"),
        "steps_to_0.9": measure(km_entry(None, None, None, 1, 5), km_entry(8000.0, 7000.0, 9000.0, 5, 5), 0.0, 0.0, 0.0,
                                "worse", pooled=False)}}
    table = curriculum_table(summary)
    assert len(table.rows) == 5 and "pattern_echo 32,768" in table.note and "rate" in table.note
    assert table.rows[0] == {"measure": "success, level 2", "task": "pattern_echo", "curriculum": "0.50 [0.40, 0.60]",
                             "ppo_matched": "1.00 [1.00, 1.00]", "better": "higher",
                             "P(curriculum better)": "0.00 [0.00, 0.00] worse (Holm p = 0.010)"}
    assert table.rows[1]["P(curriculum better)"] == "0.00 [0.00, 0.00] pooled, not tested"
    assert table.rows[3]["P(curriculum better)"] == "0.30 [0.10, 0.55] pooled, not tested"
    assert table.rows[4]["curriculum"] == "> 16,384 (1/5)" and table.rows[4]["ppo_matched"] == "8,000 [7,000, 9,000] (5/5)"
    assert "<td>fewer</td>" in table.html()
    rows = climb_table(summary).rows
    assert rows[0] == {"task": "pattern_echo", "seed": "10", "top level": "2", "env steps at level 0": "1,024",
                       "env steps at level 1": "3,072", "env steps at level 2": "28,672", "level 2 from": "4,096"}
    assert (rows[4]["top level"], rows[4]["env steps at level 2"], rows[4]["level 2 from"]) == ("1", "-", "-")
    [line] = curriculum_finding(summary)
    assert line == ("Curriculum against ppo_matched at equal env steps (runs that reached level 2: pattern_echo 4/5): "
                    "better on 0, worse on 2 of 3 tested comparisons (task x measure, Holm-adjusted): it does not earn "
                    "its place.")
    assert curriculum_answer(summary) == (
        "No: against ppo_matched (the same learner and budget without it) it is better on 0 and worse on 2 of 3 tested "
        "comparisons; over all tasks a curriculum run beats a ppo_matched run with probability 0.00 [0.00, 0.00] on "
        "success at level 2 and 0.30 [0.10, 0.55] on success averaged over levels 0-2 (0.5: a tie).")
    summary["curriculum"]["success_level2"]["p"]["pattern_echo"]["verdict"] = "better"
    summary["curriculum"]["steps_to_0.9"]["p"]["pattern_echo"]["verdict"] = "no clear difference"
    assert curriculum_finding(summary)[0].endswith("it earns its place.") and curriculum_answer(summary).startswith("Yes: ")
    summary["settings"] = {"comparisons_tested": 46, "alpha": 0.05}
    for m in ("success_level2", "success_all_levels", "steps_to_0.9"):  # five against five: no verdict can come
        summary["curriculum"][m]["p"]["pattern_echo"].update(verdict="no clear difference", p_floor=2 / 252)
    assert curriculum_finding(summary)[0].endswith(
        "better on 0, worse on 0 of 3 tested comparisons (task x measure, Holm-adjusted): no verdict was reachable "
        "(five runs against five cannot pass the Holm adjustment over 46 tests), so it has not shown that it earns "
        "its place.")
    assert curriculum_answer(summary).startswith(
        "Not shown: against ppo_matched (the same learner and budget without it) it is better on 0 and worse on 0 of 3 "
        "tested comparisons, as five runs against five cannot reach a verdict;")
    for m in ("success_level2", "success_all_levels", "steps_to_0.9"):  # too few runs at level 2: no test anywhere
        entry = summary["curriculum"][m]["p"]["pattern_echo"]
        for key in ("verdict", "p_holm"):
            entry.pop(key)
        entry.update(p_value=None, inconclusive="inconclusive: 3/5 curriculum runs reached level 2")
    assert curriculum_finding(summary)[0].endswith(
        "better on 0, worse on 0 of 0 tested comparisons (task x measure, Holm-adjusted): inconclusive (it reached the "
        "full task on too few runs to compare there).")
    assert curriculum_table(summary).rows[0]["P(curriculum better)"] == (
        "0.00 [0.00, 0.00] inconclusive: 3/5 curriculum runs reached level 2")
    assert curriculum_answer(summary).startswith("Inconclusive: ")
    assert curriculum_finding({"curriculum": {}}) == [] and curriculum_table({}).rows == [] and curriculum_answer({}) is None


def test_the_llms_programs_are_shown_as_written_and_a_refused_one_said_so():
    from wmil.reporting.report import REFUSED_TWICE, program_texts, programs_html, programs_markdown, programs_table

    source = "def answer(target):\n    return target if target < 8 else 0"
    audit = {"protocols": {"program": {
        "model": "coder", "by_task_level": {"pattern_echo": {"2": {"states": 16, "confusion": {"rule_right": {"llm_right": 8}}}}},
        "programs": {"pattern_echo": {"answer": source, "in_level": {"2": {
            "source": None, "responses": ["a", "b"], "accepted": 0, "problems": 16, "precision": None, "recall": 0.0}}}}}}}
    [row] = programs_table(audit).rows
    assert row["answer program right"] == "8/16" and row["refused first"] == "yes" and row["in_level accepts"] == "0 of 16"
    text = "\n".join(programs_markdown(program_texts(audit)))
    assert f"#### pattern_echo: answer\n\n```python\n{source}\n```" in text
    assert f"#### pattern_echo: in_level, level 2\n\n{REFUSED_TWICE}" in text
    page = programs_html(program_texts(audit))
    assert "<pre><code>def answer(target):\n    return target if target &lt; 8 else 0</code></pre>" in page
    assert page.startswith("<details>")  # folded away until a reader opens it
    assert program_texts({"protocols": {}}) == [] and program_texts(None) == [] and programs_html([]) == ""


def committed(params):
    """The committed report's inputs: summary, MVP criteria and LLM audit."""
    from conftest import REPO_ROOT

    from wmil import layout
    from wmil.results import read_result, read_summary

    results = REPO_ROOT / "results"
    return (read_summary(layout.under(results, layout.SUMMARY)), read_result(layout.under(results, layout.MVP_CRITERIA)),
            read_result(layout.under(results, layout.LLM_AUDIT)))


INTERVAL = re.compile(r"\d[\d,]*(?:\.\d+)? \[[^\]]+\]")  # 0.29 [0.24, 0.42], 8,192 [7,424, 8,832]


def test_the_summary_sentences_say_what_the_tables_say(params):
    """On the committed results: every question has its one-sentence answer, every interval an
    answer or a further sentence gives is a table's own, the LLM runs' agreement with their audit
    is the table's (a sentence once said OUTSIDE where its table showed 4/5 seeds inside), and
    every rule sentence's numbers are the rule table's."""
    from wmil.reporting.report import rule_findings, rule_table, sections

    parts = sections(params, *committed(params))
    assert all(section.answer for section in parts if section.anchor != "training")
    cells = {cell for section in parts for table, _ in section.blocks if table is not None
             for row in table.rows for cell in row.values()}
    said = [line for section in parts for line in [section.answer or "", *section.details]]
    quoted = {m for line in said for m in INTERVAL.findall(line)}
    assert len(quoted) > 30 and {q for q in quoted if not any(q in cell for cell in cells)} == set()

    llm = next(table for section in parts for table, _ in section.blocks if table and table.title == "LLM runs against their audit")
    for row in llm.rows:
        inside, runs = row["seeds inside"].split("/") if row["seeds inside"] != "missing" else (None, None)
        assert row["run and audit"] == ("agree" if inside == runs else "DISAGREE") or inside is None, row
    agreeing = sum(row["run and audit"] == "agree" for row in llm.rows)
    predicted = sum(row["run and audit"] in ("agree", "DISAGREE") for row in llm.rows)
    answer = next(section.answer for section in parts if section.anchor == "llm")
    assert predicted >= 6 and f"for {agreeing} of {predicted} LLM runs every seed's success" in answer

    summary = committed(params)[0]
    rule_rows = {(r["task"], r["learner"]): r for r in rule_table(summary).rows}
    lines = rule_findings(summary, params.evaluation.method)
    for line in lines:
        m = re.match(r"Does (\w+) learn the rule on (\w+)\? Success (.+?) on its training problems, (.+?) on held-out", line)
        row = rule_rows[(m[2], m[1])]
        assert (m[3], m[4]) == (row["training problems"], row["held-out problems"]), line
    assert len(lines) == 2  # the two tasks that hold problems out


def test_every_figure_sits_in_one_section_in_the_order_of_the_figure_specs(params):
    from wmil.reporting.figures import FIGURE_SPECS
    from wmil.reporting.report import sections

    placed = [name for section in sections(params, *committed(params)) for _, names in section.blocks for name in names]
    assert placed == list(FIGURE_SPECS)  # each once; the report shows them in the specs' order


def test_a_caption_takes_its_numbers_from_the_params(params):
    from wmil.reporting.figures import FIGURE_SPECS, success_window

    caption = FIGURE_SPECS["learning_curves"].caption_for(params)
    assert f"(last {success_window(params)} episodes)" in caption and "{" not in caption
    assert all("{" not in spec.caption_for(params) for spec in FIGURE_SPECS.values())


@pytest.mark.integration
def test_the_committed_report_reads_in_a_browser(params, tmp_path):
    """The report built from the committed results, in headless Chromium with no network: one
    self-contained page, a summary whose links reach their sections, every figure drawn and
    beside its table where the window leaves room."""
    from browser import probe
    from conftest import REPO_ROOT

    from wmil.reporting.figures import FIGURE_SPECS
    from wmil.reporting.report import build_report

    page, _, _ = build_report(params, REPO_ROOT / "results")
    (tmp_path / "report.html").write_text(page)
    seen = probe(tmp_path / "report.html", tmp_path)
    assert seen["resources"] == [] and seen["broken"] == []
    assert seen["images"] == len(FIGURE_SPECS) and seen["figures"] == list(FIGURE_SPECS)
    assert seen["sections"][:3] == ["Summary", "Does the plan's MVP pass?", f"Does {params.evaluation.method} beat its baselines?"]
    assert len(seen["links"]) == 7 and all(found for _, found in seen["links"])
    assert "Headline numbers." in seen["tables"] and "LLM runs against their audit." in seen["tables"]
    assert seen["beside"]["probability_of_improvement"] == f"{params.evaluation.method} against its baselines."
    assert seen["beside"]["regret"] == "The parent-quality sweep."  # narrow figures beside their tables,
    assert seen["beside"]["parent_quality"] is None  # wide ones (several panels) below them at their own width


def test_a_report_with_failed_jobs_shows_everything_else_and_says_what_is_missing(params, tmp_path):
    """The audit's job and one figure's failed, and an LLM-taught experiment lost a run: every
    other section is there, the LLM's question answered from what is left."""
    import json
    import shutil
    import sys

    from conftest import REPO_ROOT

    from wmil.jobs import guard
    from wmil.reporting.report import build_report

    results = tmp_path / "results"
    shutil.copytree(REPO_ROOT / "results/metrics", results / "metrics")
    shutil.copytree(REPO_ROOT / "results/figures", results / "figures")
    summary = json.loads((results / "metrics/summary.json").read_text())
    summary["experiments"]["llm_solve"] = {"missing": True}
    del summary["llm"]["llm_solve"]
    summary["missing"] = [{"result": "runs/llm_solve/pattern_echo/seed10", "experiment": "llm_solve", "job": "train x",
                           "reason": "exit code 2", "log": "results/logs/x.log"}]
    (results / "metrics/summary.json").write_text(json.dumps(summary))
    fail = [sys.executable, "-c", "raise SystemExit(2)"]
    guard("llm_audit", tmp_path / "audit.log", [results / "metrics/llm_audit.json"], fail)
    guard("figures", tmp_path / "figures.log", [results / "figures/regret.png"], fail)
    page, table, _ = build_report(params, results)
    assert "<h2>Missing results</h2>" in page and "metrics/llm_audit.json: job &#x27;llm_audit&#x27; failed" in page
    assert "figures/regret.png: job &#x27;figures&#x27; failed" in page and '<figure id="regret"><p class="missing">' in page
    assert "| llm_solve | pattern_echo | 10 | missing |" in table and "LLM parent audit: missing" in table
    assert "**What does an LLM parent teach?** llm reaches success 0.58 [0.55, 0.59] on conditional" in table
    assert "### The LLM parent: audit by judge protocol and model" not in table  # no audit, no audit table
