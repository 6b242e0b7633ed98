"""The paper report: one self-contained HTML file (figures embedded) and a markdown file of the
same text and tables, both built from result files alone (``wmil report``).

It reads like a paper's results section: a summary of one sentence per question (its number with
the 95% interval, and what it means), then one section per question: its answer, its tables, and
the figures drawn beside them. The questions: does the plan's MVP pass, does the method beat its
baselines, does the baby learn the rule, what does the world model add, does the curriculum help,
how good must a parent be, and what does an LLM parent teach. Every sentence is derived from the
summary, every table says its unit; step counts print as ``1,680 [1,530, 1,830]``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmil import layout
from wmil.config import Params
from wmil.errors import MissingResult
from wmil.jobs import failure_of
from wmil.provenance import results_code_hash
from wmil.reporting.figures import FIGURE_SPECS
from wmil.results import (
    FAILURES_TO_MASTERY,
    REACHED_MASTERY,
    STEPS_TO_90,
    Comparison,
    CurriculumComparison,
    CurriculumMeasure,
    Interval,
    LlmOutcome,
    ParentQualityPoint,
    RuleEntry,
    RuleExperiment,
    StepsToMastery,
    Summary,
    WorldModelComparison,
    WorldModelVariant,
    complete_experiments,
    read_result,
    read_summary,
)
from wmil.tasks.rules import NUM_LEVELS

MISSING = "missing"
#: Formats: success rates and J with two decimals, counts of env steps or episodes as integers.
RATE, COUNT = ".2f", ",.0f"


def interval(entry: Interval | None, fmt: str = RATE) -> str:
    """``value [lo, hi]`` of an estimate with its 95% interval; ``n/a`` when there is none."""
    if entry is None:
        return "n/a"
    return f"{entry['value']:{fmt}} [{entry['lo']:{fmt}}, {entry['hi']:{fmt}}]"


@dataclass(frozen=True)
class Table:
    title: str
    note: str                      # what a cell is, with its unit
    rows: list[dict[str, str]]

    def __post_init__(self) -> None:
        if len({tuple(row) for row in self.rows}) > 1:  # one header line for every row
            raise ValueError(f"table {self.title!r}: rows with different columns: {sorted({tuple(r) for r in self.rows})}")

    def markdown(self) -> list[str]:
        """A subsection of its question's section: title, note, then the rows."""
        if not self.rows:
            return [f"### {self.title}", "", f"{self.note} (no rows)", ""]
        header = list(self.rows[0])
        return [f"### {self.title}", "", self.note, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *("| " + " | ".join(row[h] for h in header) + " |" for row in self.rows), ""]

    def html(self) -> str:
        """The table with its title and note as the caption above it."""
        note = self.note if self.rows else f"{self.note} (no rows)"
        title = self.title if self.title.endswith(("?", ".")) else self.title + "."
        header = list(self.rows[0]) if self.rows else []
        return (f"<table><caption><b>{html.escape(title)}</b> {html.escape(note)}</caption>"
                + ("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else "")
                + "".join("<tr>" + "".join(f"<td>{html.escape(_unbroken(r[h]))}</td>" for h in header) + "</tr>"
                          for r in self.rows)
                + "</table>")


def _unbroken(cell: str) -> str:
    """``cell`` with no line break inside an interval ``[lo, hi]``, just before one, or in ``p = 0.002``
    (non-breaking spaces: a narrow column then breaks between numbers, never inside one)."""
    return re.sub(r" ?\[[^\]]*\]", lambda m: m[0].replace(" ", "\u00a0"), cell).replace("p = ", "p\u00a0=\u00a0")


HEADLINE_CELLS = ("success (training problems)", "success (held-out problems)",
                  "env steps to 90%: median [95% CI] (reached/runs)", "failed episodes to 99% (reached/runs)")


def km(entry: StepsToMastery, runs: bool = True) -> str:
    """A Kaplan-Meier median of env steps with its 95% interval and the runs that got there: ``8,576
    [7,936, 9,984] (10/10)``; ``>`` the budget when fewer than half did, ``...`` an open end;
    without the runs (``runs=False``) in a headline sentence."""
    reached = f" ({entry['reached']}/{entry['runs']})" if runs else ""
    if entry["median"] is None:
        return f"> {entry['budget']:{COUNT}}{reached}"
    lo = "..." if entry["lo"] is None else f"{entry['lo']:{COUNT}}"
    hi = "..." if entry["hi"] is None else f"{entry['hi']:{COUNT}}"
    return f"{entry['median']:{COUNT}} [{lo}, {hi}]{reached}"


def headline(params: Params, summary: Summary) -> Table:
    """One row per experiment (not a sweep point) and task: success on the training problems and on
    the held-out ones, env steps to 90% and failed episodes until 99%."""
    rows = []
    for name, exp in params.experiments.items():
        if exp.sweep is not None:
            continue
        entry = summary["experiments"][name]
        for task in exp.tasks:
            if "missing" in entry:
                rows.append({"experiment": name, "task": task, "seeds": str(len(params.seeds_of(name))),
                             **dict.fromkeys(HEADLINE_CELLS, MISSING)})
                continue
            held_out = entry["held_out_success_greedy"].get(task)
            failures = entry[FAILURES_TO_MASTERY][task]
            rows.append({"experiment": name, "task": task, "seeds": str(entry["seeds"]),
                         HEADLINE_CELLS[0]: interval(entry["success_greedy"][task]),
                         HEADLINE_CELLS[1]: interval(held_out) if held_out else "none held out",
                         HEADLINE_CELLS[2]: km(entry[STEPS_TO_90][task]),
                         HEADLINE_CELLS[3]: f"{interval(failures, COUNT)} ({entry[REACHED_MASTERY][task]}/{entry['seeds']})"})
    return Table("Headline numbers",
                 f"Success: {summary['settings']['score']}, a rate in [0, 1], the {summary['settings']['aggregate']}; "
                 "PatternEcho holds none out (an unseen target is an untrained output: it tests association). "
                 f"Steps: env steps (one step is one answer), {summary['settings'][STEPS_TO_90]}. Failures: failed "
                 "episodes until 99% rolling success (all of them where it never came; IQM [95% CI]). Seeds: "
                 f"{len(params.seeds)} on the headline comparisons, fewer where the row says so; none of them tuned "
                 f"anything (tuning seeds {params.tuning_seeds[0]}-{params.tuning_seeds[-1]}). Sweep points are in the "
                 "parent-quality table.", rows)


def rule_table(summary: Summary) -> Table:
    """Does the baby learn the rule? Per task that holds problems out: each experiment at the
    method's settings, the tabular reference and chance, on training and held-out problems."""
    rows = []
    for task, entry in summary["rule"].items():
        for name, e in entry["experiments"].items():
            rows.append({"task": task, "learner": name, "seeds": str(e["seeds"]),
                         "training problems": interval(e["training"]), "held-out problems": interval(e["held_out"])})
        if "tabular" in entry:
            t = entry["tabular"]
            rows.append({"task": task, "learner": "tabular reference", "seeds": str(t["seeds"]),
                         "training problems": interval(t["training"]), "held-out problems": interval(t["held_out"])})
        chance = f"{entry['chance']:.4f}"
        rows.append({"task": task, "learner": f"chance (1/A per answer, {entry['episode_length']} answers)", "seeds": "-",
                     "training problems": chance, "held-out problems": chance})
    return Table("Success on trained and held-out problems",
                 "Greedy episode success (rate; IQM [95% CI] over seeds) on fresh episodes of the problems a run "
                 "trained on and of those its split held out (never drawn, never reached by a transition): "
                 "Conditional holds out one shape per colour and size (a Latin square drawn per seed), SequenceNext "
                 "every sequence of one step (one sign and magnitude drawn per seed, the opposite step trained). "
                 "The tabular reference is a lookup table learning from the same verdicts: it memorises every "
                 "training problem and guesses on the others.", rows)


MASTERED = 0.9  # training-problem success (the interval's lower end) before held-out success means anything


def _rule_verdict(entry: RuleEntry, e: RuleExperiment) -> tuple[str, str]:
    """``(short, full)`` answer (the short one to follow the learner's name) for one learner ``e`` on
    one task's rule ``entry``: once it masters
    its training problems, does it learn the rule (held-out success within 0.1 of training),
    generalise beyond a lookup table (above the table's held-out interval), or memorise?"""
    tabular = entry.get("tabular")
    train, held = e["training"], e["held_out"]
    if train["lo"] < MASTERED:
        return "does not master its own training problems", "no answer: it does not master its own training problems"
    if held["lo"] >= train["value"] - 0.1:
        return "learns the rule", "it learns the rule: held-out problems as well as trained ones"
    if tabular is not None and held["lo"] > tabular["held_out"]["hi"]:
        return "generalises beyond a lookup table, short of the rule", "it generalises beyond a lookup table, short of the rule"
    return "memorises", "it memorises: on held-out problems no better than a lookup table"


def rule_findings(summary: Summary, method: str) -> list[str]:
    """One sentence per task that holds problems out: the method's success on both kinds of
    problem beside the lookup table's and chance, and what that says (:func:`_rule_verdict`)."""
    lines = []
    for task, entry in summary["rule"].items():
        e = entry["experiments"].get(method)
        if e is None:
            continue
        tabular = entry.get("tabular")
        reference = (f"; lookup table {interval(tabular['training'])} and {interval(tabular['held_out'])}"
                     if tabular is not None else "")
        lines.append(f"Does {method} learn the rule on {task}? Success {interval(e['training'])} on its training "
                     f"problems, {interval(e['held_out'])} on held-out problems (chance {entry['chance']:.4f}"
                     f"{reference}): {_rule_verdict(entry, e)[1]}.")
    return lines


def rule_answer(summary: Summary, method: str) -> str | None:
    """The headline: per task, the short answer with held-out against training success."""
    said = [f"On {task} {method} {_rule_verdict(entry, e)[0]}: held-out success {interval(e['held_out'])} against "
            f"{interval(e['training'])} on the problems it trained on."
            for task, entry in summary["rule"].items() if (e := entry["experiments"].get(method)) is not None]
    return " ".join(said) or None


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def audit_table(audit: dict[str, Any]) -> Table:
    """Each protocol on each task at the full difficulty (level 2) and over all levels."""
    rows = []
    for protocol, by in audit["protocols"].items():
        for task, levels in by["by_task_level"].items():
            top, pooled = levels[max(levels, key=int)], by["by_task"][task]
            c, e = top["ceiling"], top["episode"]["ceiling"]
            rows.append({"protocol": protocol, "model (A, T)": f"{by['model']} ({by['num_actions']}, {by['episode_length']})",
                         "task": task, "J (level 2)": f"{top['j']:{RATE}}",
                         "TPR / FPR (level 2)": f"{top['tpr']:{RATE}} / {top['fpr']:{RATE}}",
                         "ceiling (level 2)": f"{c['mean']:{RATE}} [{c['lo']:{RATE}}, {c['hi']:{RATE}}]",
                         "episode ceiling (level 2)": f"{e['mean']:{RATE}} [{e['lo']:{RATE}}, {e['hi']:{RATE}}]",
                         "J (all levels)": f"{pooled['j']:{RATE}}", "invalid": f"{pooled['invalid_rate']:{RATE}}",
                         "requests": f"{pooled['requests']:{COUNT}}",
                         "tokens (prompt + completion)": f"{pooled['prompt_tokens'] + pooled['completion_tokens']:{COUNT}}"})
    return Table("The LLM parent: audit by judge protocol and model",
                 "Every state of a level (every problem under program, up to llm_audit.states_per_level otherwise) "
                 "with every action, at the model, action space A and episode length T of the runs that use the "
                 "protocol. J = TPR - FPR (rates in "
                 "[0, 1]); ceiling: the success the per-state verdicts allow on the level's problems, mean [sure, at "
                 "best]; episode ceiling: its product over the problems each episode passes through (SequenceNext "
                 "moves on to continuations outside the table), what a run's success is predicted by; "
                 "requests and tokens: what the whole audit costs from an empty cache (wall seconds are in "
                 "results/benchmarks/llm_audit.json, apart, because they are not reproducible).", rows)


def programs_table(audit: dict[str, Any]) -> Table | None:
    """What the LLM's programs get right: the answer program per level, and the problems each
    level's in_level program accepts against the level's table (what roles: all trains on)."""
    block = audit["protocols"].get("program")
    if block is None:
        return None
    rows = []
    for task, programs in block["programs"].items():
        for level, made in programs["in_level"].items():
            judged = block["by_task_level"][task][level]
            right = judged["confusion"]["rule_right"]["llm_right"]
            rows.append({"task": task, "level": level, "answer program right": f"{right}/{judged['states']}",
                         "in_level accepts": f"{made['accepted']:{COUNT}} of {made['problems']}",
                         "precision": MISSING if made["precision"] is None else f"{made['precision']:{RATE}}",
                         "recall": f"{made['recall']:{RATE}}",
                         "refused first": "yes" if len(made["responses"]) > 1 else "no"})
    return Table(f"The LLM's programs ({block['model']})",
                 "answer program right: problems of the level whose program answer is the rule's; in_level: the "
                 "problems of the whole slot grid that the level's membership program accepts, precision and recall "
                 "against the level's table (a program refused twice accepts none: the rules' table is used); "
                 "refused first: the sandbox refused the first program and the LLM was asked once more. The "
                 "programs' text follows the tables; every response is in results/metrics/llm_audit.json.", rows)


def program_texts(audit: dict[str, Any] | None) -> list[tuple[str, str | None]]:
    """``(what, checked source)`` of every program the audit's LLM wrote (None: refused twice)."""
    block = None if audit is None else audit["protocols"].get("program")
    if block is None:
        return []
    texts = []
    for task, programs in block["programs"].items():
        texts.append((f"{task}: answer", programs["answer"]))
        texts += [(f"{task}: in_level, level {level}", made["source"]) for level, made in programs["in_level"].items()]
    return texts


REFUSED_TWICE = "refused twice by the sandbox (its responses are in results/metrics/llm_audit.json)"
PROGRAMS_TITLE = "The LLM's programs, as the sandbox checked them"


def programs_markdown(texts: list[tuple[str, str | None]]) -> list[str]:
    """The programs of :func:`program_texts`, a heading for each."""
    lines = [f"### {PROGRAMS_TITLE}", ""] if texts else []
    for what, source in texts:
        lines += [f"#### {what}", "", *(["```python", source.rstrip(), "```"] if source else [REFUSED_TWICE]), ""]
    return lines


def programs_html(texts: list[tuple[str, str | None]]) -> str:
    """The programs of :func:`program_texts`, folded away until a reader opens them."""
    if not texts:
        return ""
    return (f"<details><summary>{html.escape(PROGRAMS_TITLE)}</summary>" + "".join(
        f"<h4>{html.escape(what)}</h4>"
        + (f"<pre><code>{html.escape(source)}</code></pre>" if source else f"<p>{html.escape(REFUSED_TWICE)}</p>")
        for what, source in texts) + "</details>")


def llm_table(summary: Summary) -> Table:
    rows = []
    e: LlmOutcome
    for name, by_task in summary["llm"].items():
        for task, e in by_task.items():
            p = e.get("prediction")
            rows.append({"experiment": name, "task": task, "protocol": e["protocol"],
                         "success (training problems)": interval(e["success_greedy"]),
                         "per seed": ", ".join(f"{s:{RATE}}" for s in e["success_greedy"]["per_seed"] or ()),
                         "audited J": f"{e['audited_j']:{RATE}}" if p else MISSING,
                         "predicted (episode ceiling)": (f"{p['mean']:{RATE}} in [{p['interval'][0]:{RATE}}, "
                                                         f"{p['interval'][1]:{RATE}}]") if p else MISSING,
                         "J curve at that J": f"{e['j_curve']:{RATE}}" if p and e["j_curve"] is not None else "n/a",
                         "seeds inside": f"{sum(e['inside'])}/{len(e['inside'])}" if p else MISSING,
                         "run and audit": e["no_prediction"] if p is None else ("agree" if e["agrees"] else "DISAGREE")})
    return Table("LLM runs against their audit",
                 "Greedy success on the training problems (rate; IQM [95% CI] over seeds). At temperature 0 the "
                 "judge's errors repeat on a state, so the prediction is the audit's episode ceiling at the run's "
                 "protocol, task and level over the run's own training problems (the range over seeds shown), with a "
                 "95% interval for the policy's pick among the answers the verdicts leave open (a coin per "
                 "problem) and the evaluation episodes' binomial error; the J curve (random errors, anchored at chance "
                 "for J = 0) is shown beside it; run and audit agree when every seed is inside its interval.", rows)


def quality_table(summary: Summary) -> Table:
    rows = [{"experiment": p["experiment"], "task": p["task"], "FPR": f"{p['false_positive_rate']:{RATE}}",
             "FNR": f"{p['false_negative_rate']:{RATE}}", "J": f"{p['j']:{RATE}}",
             "noise-corrected": "yes" if p["noise_correction"] else "no",
             "success (training problems)": interval(p["success_greedy"])} for p in summary["parent_quality"]]
    return Table("The parent-quality sweep",
                 "A rule parent that calls a wrong answer right with probability FPR and a right one wrong with FNR "
                 "(rates), each verdict afresh; greedy success on the training problems (rate; IQM [95% CI] over "
                 "seeds; five seeds).", rows)


TAUGHT = 0.9  # IQM success at which a parent has taught a task well enough


def _parent_points(summary: Summary, corrected: bool) -> dict[str, list[ParentQualityPoint]]:
    """The parent-quality points per task (tasks in order of first appearance), of the learners
    that correct for the parent's known error rates or of those that take its verdicts as given."""
    by_task: dict[str, list[ParentQualityPoint]] = {}
    for point in summary["parent_quality"]:
        if point["noise_correction"] == corrected:
            by_task.setdefault(point["task"], []).append(point)
    return by_task


def _good_enough(points: list[ParentQualityPoint]) -> ParentQualityPoint | None:
    """The point at the lowest J (to two decimals) down to which every parent teaches IQM success
    of at least :data:`TAUGHT`, the weakest there; None where even the best one does not."""
    found = None
    for j in sorted({round(p["j"], 2) for p in points}, reverse=True):
        weakest = min((p for p in points if round(p["j"], 2) == j), key=lambda p: p["success_greedy"]["value"])
        if weakest["success_greedy"]["value"] < TAUGHT:
            break
        found = weakest
    return found


def _rates(point: ParentQualityPoint) -> str:
    return f"FPR {point['false_positive_rate']:{RATE}}, FNR {point['false_negative_rate']:{RATE}}: J = {point['j']:{RATE}}"


def quality_answer(summary: Summary) -> str | None:
    """The headline sentence: per task, how low J may go while every rule parent erring at random
    still teaches success of :data:`TAUGHT`; whether correcting for known rates helps."""
    by_task = _parent_points(summary, corrected=False)
    if not by_task:
        return None
    clauses = []
    for task, points in by_task.items():
        point = _good_enough(points)
        clauses.append(f"not even at J = {max(p['j'] for p in points):{RATE}} on {task}" if point is None else
                       f"J = {point['j']:{RATE}} on {task} ({interval(point['success_greedy'])} there)")
    pairs = _corrected_pairs(summary)
    lower = sum(c["success_greedy"]["value"] < u["success_greedy"]["value"] for c, u in pairs)
    return (f"A rule parent that errs at random still teaches success of {TAUGHT:.2f} or more down to {_and(clauses)}, "
            "where J = TPR - FPR is 1 for a perfect parent and 0 for a useless one"
            + (f"; correcting for the known error rates lowers success at {lower} of {len(pairs)} points" if pairs else "")
            + ".")


def _corrected_pairs(summary: Summary) -> list[tuple[ParentQualityPoint, ParentQualityPoint]]:
    """``(corrected, uncorrected)`` points of the same task and error rates."""
    plain = {(p["task"], p["false_positive_rate"], p["false_negative_rate"]): p
             for points in _parent_points(summary, corrected=False).values() for p in points}
    return [(c, plain[key]) for points in _parent_points(summary, corrected=True).values() for c in points
            if (key := (c["task"], c["false_positive_rate"], c["false_negative_rate"])) in plain]


def quality_findings(summary: Summary) -> list[str]:
    """Per task, how far success falls with the worst parent measured; each corrected learner
    against the uncorrected one at the same rates."""
    worst = [min(points, key=lambda p: p["success_greedy"]["value"])
             for points in _parent_points(summary, corrected=False).values()]
    lines = ["With the worst parent measured, success falls to " + _and(
        [f"{interval(p['success_greedy'])} on {p['task']} ({_rates(p)})" for p in worst]) + "."] if worst else []
    by_task: dict[str, list[str]] = {}
    for c, u in _corrected_pairs(summary):
        by_task.setdefault(c["task"], []).append(f"{interval(c['success_greedy'])} against {interval(u['success_greedy'])} "
                                                 f"({_rates(c)})")
    return lines + [f"Correcting for the known rates on {task}, success with against without: {'; '.join(said)}."
                    for task, said in by_task.items()]


def _verdict(poi: Comparison) -> str:
    """The summary's verdict on one comparison: better, worse or no clear difference by its
    Holm-adjusted test (``p_holm``); a comparison pooled over tasks has none (not tested), nor
    one the summary marks inconclusive (a curriculum that did not reach the full task)."""
    if "verdict" in poi:
        return f"{poi['verdict']} (Holm p = {poi['p_holm']:.3f})"
    return poi.get("inconclusive", "pooled, not tested")


def _p(poi: Comparison) -> str:
    """A probability of improvement with its 95% interval: ``0.73 [0.68, 0.78]``."""
    return interval({"value": poi["p"], "lo": poi["lo"], "hi": poi["hi"]})


def _poi(poi: Comparison) -> str:
    return f"{_p(poi)} {_verdict(poi)}"


def _tally(pois: dict[str, Comparison], verdict: str) -> int:
    """How many of the tested comparisons ``pois`` (task -> comparison) came out ``verdict``."""
    return sum(poi.get("verdict") == verdict for poi in pois.values())


def _baselines(params: Params, summary: Summary) -> dict[str, dict[str, Comparison]]:
    """Each baseline's comparisons with the method (task -> comparison), in the order of ``evaluation.baselines``."""
    pois = summary["probability_of_improvement"]
    return {name: pois[name] for name in params.evaluation.baselines if name in pois}


def improvement_table(params: Params, summary: Summary) -> Table:
    """Per baseline and task (and over all tasks): P(a run of the method beats a run of the baseline) and its verdict."""
    rows = [{"baseline": name, "task": task, "P(higher success) [95% CI]": _p(poi), "verdict": _verdict(poi)}
            for name, pois in _baselines(params, summary).items() for task, poi in pois.items()]
    method = params.evaluation.method
    return Table(f"{method} against its baselines",
                 f"P: the probability that a run of {method} has higher greedy success on the training problems than a "
                 "run of the baseline (rliable; ties count half; 0.5: no difference) [95% CI], per task and over all "
                 "tasks; verdict: a two-sided Mann-Whitney test, Holm-adjusted over every verdict of the report "
                 "(pooled over tasks: not tested).", rows)


def baselines_answer(params: Params, summary: Summary) -> str | None:
    """The headline sentence: on how many tasks the method beats (and loses to) each baseline, and
    its probability of improvement over all tasks."""
    baselines = _baselines(params, summary)
    if not baselines:
        return None
    method = params.evaluation.method
    tested = {sum("verdict" in poi for poi in pois.values()) for pois in baselines.values()}
    higher = _and([str(_tally(pois, "better")) for pois in baselines.values()]) + f" of {tested.pop()} tasks" if len(
        tested) == 1 else _and([f"{_tally(pois, 'better')} of {sum('verdict' in p for p in pois.values())}" for pois in baselines.values()])
    lower = _and([f"lower than {name} on {_tally(pois, 'worse')}" for name, pois in baselines.items() if _tally(pois, "worse")])
    pooled = [(name, pois["all_tasks"]) for name, pois in baselines.items() if "all_tasks" in pois]
    return (f"Against {_and(list(baselines))}, {method} has higher success on {higher} and {lower or 'lower on none'}"
            + (f"; over all tasks a {method} run beats a run of {_and([name for name, _ in pooled])} with probability "
               f"{_and([_p(poi) for _, poi in pooled])} (0.5: a tie)" if pooled else "") + ".")


def _world_model(summary: Summary) -> WorldModelComparison | None:
    """The world-model comparison; None where it could not run (a reference missing, or none configured)."""
    comparison = summary["world_model"]
    return comparison if "variants" in comparison else None


def world_model_variants(params: Params, summary: Summary) -> dict[str, WorldModelVariant]:
    """The world-model variants and controls in the order of ``evaluation.world_model`` (sweeps
    expanded), each with its ``reference``; empty when the comparison is missing."""
    comparison = _world_model(summary)
    variants = {} if comparison is None else comparison["variants"]
    return {n: variants[n] for n in params.expand(list(params.evaluation.world_model)) if n in variants}


def world_model_groups(params: Params, summary: Summary) -> dict[str, dict[str, WorldModelVariant]]:
    """Reference -> its variants (name -> entry), references in order of first appearance."""
    groups: dict[str, dict[str, WorldModelVariant]] = {}
    for name, v in world_model_variants(params, summary).items():
        groups.setdefault(v["reference"], {})[name] = v
    return groups


def world_model_label(v: WorldModelVariant | None) -> str:
    """What a variant's world model is, in words (None: the reference, which has none)."""
    if v is None:
        return "none"
    if v["head"] == "answer":
        label = "answer head (next problem from the state alone)"
    elif v["target"] == "raw":
        label = "raw next state"
    else:
        switch = " and ".join(x for x in (f"{v['embedding_after_steps']:,} steps" if v["embedding_after_steps"] else "",
                                          f"success {v['embedding_after_success']:g}" if v["embedding_after_success"] else "") if x)
        label = f"embedding (raw until {switch})" if switch else "embedding"
    extras = [text for on, text in ((v["detached"], "detached from the encoder"),
                                    (v["distill_coef"] > 0, "plus KL to the parent's answer"),
                                    (v["next_problem"] == "fresh", "fresh problem after each answer")) if on]
    return ", ".join([label, *extras])


def world_model_table(params: Params, summary: Summary) -> Table:
    """Each reference without a world model, then its variants and controls, per task."""
    rows = []
    for reference, variants in world_model_groups(params, summary).items():
        compared = list(dict.fromkeys(t for v in variants.values() for t in v["tasks"]))
        for name, v in {reference: None, **variants}.items():
            entry = complete_experiments(summary)[name]  # compared only where none of its runs failed
            for task in compared if v is None else v["tasks"]:
                row = {"experiment": name, "world model": world_model_label(v), "seeds": str(entry["seeds"]),
                       "coef": "-" if v is None else f"{v['world_model_coef']:g}", "task": task,
                       "env steps to 90%": km(entry[STEPS_TO_90][task]),
                       "success": interval(entry["success_greedy"][task]),
                       "held-out success": interval(entry["held_out_success_greedy"].get(task))}
                row["P(fewer steps than its reference)"] = "-" if v is None else _poi(v["p_steps"][task])
                row["P(higher success than its reference)"] = "-" if v is None else _poi(v["p_success"][task])
                rows.append(row)
    return Table("Each world-model variant against its reference",
                 "ppo's settings and budget with the world model changed, each against the run without one on the "
                 "same tasks (its reference: the row above it with world model 'none'). Steps: env steps until 90% "
                 "rolling success on the full task, Kaplan-Meier median [95% CI] with runs censored at the budget "
                 "(reached/runs); success: greedy success on the training problems, held-out: on the problems the run "
                 "never trained on (rates; IQM [95% CI] over seeds). P: the probability that a run of the variant "
                 "beats a run of its reference (rliable; ties count half) [95% CI], and its verdict: a two-sided "
                 "Mann-Whitney test, Holm-adjusted over every verdict of the report.", rows)


def _beats(v: WorldModelVariant, task: str) -> bool:
    """Whether a variant beats its reference on ``task`` by a Holm-adjusted verdict (steps or success)."""
    return any(v[key][task].get("verdict") == "better" for key in ("p_steps", "p_success") if task in v[key])


def world_model_answer(params: Params, summary: Summary) -> str | None:
    """The headline sentence: on how many tasks the method's world model beats its reference
    (Holm-adjusted, on env steps to 90% or on success), with both runs' env steps to 90%."""
    variants = world_model_variants(params, summary)
    method = params.evaluation.method
    if method not in variants:
        return None
    v, experiments = variants[method], complete_experiments(summary)
    steps = _and([f"{km(experiments[method][STEPS_TO_90][task], runs=False)} against "
                  f"{km(experiments[v['reference']][STEPS_TO_90][task], runs=False)} on {task}" for task in v["tasks"]])
    return (f"{method} (with a world model) beats {v['reference']} (the same learner without one) on "
            f"{sum(_beats(v, task) for task in v['tasks'])} of {len(v['tasks'])} tasks; env steps to 90% rolling success, "
            f"with against without: {steps}.")


def world_model_findings(params: Params, summary: Summary) -> list[str]:
    """Per task, what the controls say about the method's world model, in words derived from the
    verdicts of the world-model table (which has every variant's probabilities)."""
    variants = world_model_variants(params, summary)
    if params.evaluation.method not in variants:
        return []
    return _world_model_explanation(params, summary, variants)


def _unreachable(poi: Comparison, summary: Summary) -> bool:
    """Whether no verdict was reachable: even complete separation of the runs (``p_floor``) would
    not pass the Holm adjustment over the report's family (five runs against five never does)."""
    settings, floor = summary["settings"], poi.get("p_floor")
    return floor is not None and floor * settings["comparisons_tested"] >= settings["alpha"]


def _control_clause(v: WorldModelVariant, task: str, as_far: bool, what: str, full: str, part: str, none: str) -> str:
    """How far a control gets against its reference: as far as the method (it beats the reference
    and ``as_far``: at least the method's share of runs reach 90%), part of the way (it beats it,
    fewer reach 90%), or not (no verdict in its favour)."""
    if not _beats(v, task):
        return f"{what} does not beat {v['reference']}{none}"
    return f"{what} does as well{full}" if as_far else f"{what} gets part of the way{part}"


def _world_model_explanation(params: Params, summary: Summary, variants: dict[str, WorldModelVariant]) -> list[str]:
    """The headline sentence on the method's world model: per task where it beats its reference,
    how far each control gets (the answer head: supervision or reconstruction, no dynamics; the
    detached head: the prediction reward alone), whether it still beats its reference where the
    next state reveals no answer, and the upper bound of being told the parent's answer outright
    (distillation), each with its env steps to 90%."""
    method = params.evaluation.method
    comparison = _world_model(summary)
    holds = {} if comparison is None else comparison["next_problem_holds_answer"]
    experiments = complete_experiments(summary)
    lines = []
    for task in variants[method]["tasks"]:
        def steps(name: str, task: str = task) -> str:
            return f"{km(experiments[name][STEPS_TO_90][task])} env steps to 90%"

        def reached(name: str, task: str = task) -> float:
            entry = experiments[name][STEPS_TO_90][task]
            return entry["reached"] / entry["runs"]

        reference = variants[method]["reference"]
        if not _beats(variants[method], task):
            lines.append(f"The world model on {task}: {method} does not beat {reference}; nothing to explain.")
            continue
        said = [f"{method} beats {reference} ({steps(method)} against {steps(reference)})"]
        why, some = (("the next problem holds the answer, so the gain is supervision from the parent's corrections, not "
                      "a model of dynamics", "the next problem holds the answer, and that label alone carries some of the "
                      "gain") if holds.get(task) else
                     ("the problem stays, so that head only reconstructs it: an auxiliary loss on the state, no dynamics",
                      "the problem stays, and reconstructing it carries some of the gain"))
        for name, v in variants.items():
            if task not in v["tasks"] or name == method or v["next_problem"] != "rules" or v["distill_coef"] > 0:
                continue
            as_far = reached(name) >= reached(method)
            if v["head"] == "answer":
                said.append(_control_clause(
                    v, task, as_far, "a head that predicts the next problem from the state alone (no action)",
                    f": {why}", f": {some}", ": the action-conditioned model adds more") + f" ({name}: {steps(name)})")
            elif v["detached"]:
                said.append(_control_clause(
                    v, task, as_far, "the head detached from the encoder",
                    ": the gain comes through the prediction reward",
                    ": most of the gain comes through the shared representation",
                    ": the gain comes through the shared representation") + f" ({name}: {steps(name)})")
        for name, v in variants.items():
            if task in v["tasks"] and v["next_problem"] == "fresh" and v["distill_coef"] == 0:
                success = " against ".join(interval(experiments[n]["success_greedy"][task]) for n in (name, v["reference"]))
                verdict = "still beats" if _beats(v, task) else "does not beat"
                power = (", though five runs against five cannot reach a verdict among this report's tests"
                         if any(_unreachable(v[k][task], summary) for k in ("p_steps", "p_success")) else "")
                said.append(f"with a fresh problem after each answer (the next state reveals no answer) the world "
                            f"model {verdict} {v['reference']} (success {success}{power})")
        for name, v in variants.items():
            if task in v["tasks"] and v["distill_coef"] > 0:
                said.append(f"told the parent's answer outright ({name}), a learner needs {steps(name)}")
        lines.append(f"The world model on {task}: " + "; ".join(said) + ".")
    return lines


#: The curriculum comparison's measures (summary.json "curriculum"): the report's name for each,
#: which way is better, and the name in a sentence.
CURRICULUM_LABELS: dict[CurriculumMeasure, tuple[str, str, str]] = {"success_level2": ("success, level 2", "higher", "success at level 2"),
    "success_all_levels": ("success, mean of levels 0-2", "higher", "success averaged over levels 0-2"),
    STEPS_TO_90: ("env steps to 90%, level 2", "fewer", "env steps to 90% at level 2")}


def _curriculum(summary: Summary) -> CurriculumComparison | None:
    """The curriculum comparison; None where it could not run (an arm missing, or none configured)."""
    c = summary.get("curriculum")
    return None if c is None or "reference" not in c else c


def curriculum_table(summary: Summary) -> Table:
    """Per measure and task (and over all tasks for the rates): the curriculum, its matched
    reference, and P(curriculum better) with its verdict (or why there is none)."""
    c = _curriculum(summary)
    rows = [] if c is None else [
        {"measure": label, "task": task,
         **{arm: (km if measure == STEPS_TO_90 else interval)(c[measure][arm][task]) for arm in (c["curriculum"], c["reference"])},
         "better": better, "P(curriculum better)": _poi(poi)}
        for measure, (label, better, _) in CURRICULUM_LABELS.items() for task, poi in c[measure]["p"].items()]
    budget = ", ".join(f"{task} {steps:,}" for task, steps in (c["budget"] if c else {}).items())
    return Table("The curriculum against its matched arm",
                 f"The mastery curriculum (levels 0 -> 2) against {c and c['reference']}: every "
                 f"setting, the env-step budget ({budget}) and the learning-rate schedule shared, five seeds. Greedy "
                 "success on the training problems (rate) of the full task and averaged over the levels, IQM [95% CI]; "
                 "env steps until 90% rolling success on the full task, Kaplan-Meier median [95% CI], censored at the "
                 "budget. P: the probability that a curriculum run beats a run without (higher success, fewer steps; "
                 "rliable; ties count half) [95% CI], with its Holm-adjusted verdict; inconclusive where fewer than "
                 "four in five curriculum runs reached level 2 (the comparison would be zero-shot transfer).", rows)


def climb_table(summary: Summary) -> Table:
    """Each curriculum run's climb: the level it reached and the env steps it spent at each."""
    c = _curriculum(summary)
    rows = [{"task": task, "seed": str(run["seed"]), "top level": str(run["top_level"]),
             **{f"env steps at level {lv}": f"{steps:,}" if steps else "-" for lv, steps in enumerate(run["steps_per_level"])},
             "level 2 from": "-" if run["level_entered_at"][-1] is None else f"{run['level_entered_at'][-1]:,}"}
            for task, runs in (c["climb"] if c else {}).items() for run in runs]
    return Table("How far did the curriculum climb?",
                 "Each curriculum run: the highest level it reached, the env steps it played while each level was "
                 "the current one (replayed easier episodes included), and the env step at which it first played "
                 "level 2 (the full task, which the verdicts judge).", rows)


def _curriculum_outcome(c: CurriculumComparison, summary: Summary) -> tuple[int, int, int, str]:
    """``(better, worse, tested, outcome)`` over the curriculum's tested comparisons (task x
    measure): ``earns`` (better on some, worse on none), ``not``, ``unreachable`` (no verdict either
    way, and none could have passed the Holm adjustment) or ``inconclusive`` (none tested: it did
    not reach the full task)."""
    pois = [poi for m in CURRICULUM_LABELS for poi in c[m]["p"].values()]
    verdicts = [poi.get("verdict") for poi in pois]
    better, worse = verdicts.count("better"), verdicts.count("worse")
    tested = sum(v is not None for v in verdicts)
    if tested == 0:
        outcome = "inconclusive"
    elif better == worse == 0 and all(_unreachable(poi, summary) for poi in pois if poi.get("p_value") is not None):
        outcome = "unreachable"
    else:
        outcome = "earns" if better > 0 and worse == 0 else "not"
    return better, worse, tested, outcome


def curriculum_finding(summary: Summary) -> list[str]:
    """Whether the curriculum earns its place: better on some tested comparison and worse on none;
    inconclusive where it did not reach the full task."""
    c = _curriculum(summary)
    if c is None:
        return []
    better, worse, tested, outcome = _curriculum_outcome(c, summary)
    reached = ", ".join(f"{task} {n}/{len(c['climb'][task])}" for task, n in c["reached_top"].items())
    inconclusive = sorted({task for m in CURRICULUM_LABELS for task, poi in c[m]["p"].items() if "inconclusive" in poi})
    verdict = (": no verdict was reachable (five runs against five cannot pass the Holm adjustment over "
               f"{summary['settings']['comparisons_tested']} tests), so it has not shown that it earns its place."
               if outcome == "unreachable" else
               {"inconclusive": ": inconclusive (it reached the full task on too few runs to compare there).",
                "earns": ": it earns its place.", "not": ": it does not earn its place."}[outcome])
    if inconclusive and outcome != "inconclusive":
        verdict = verdict[:-1] + f"; inconclusive on {', '.join(inconclusive)}."
    return [f"Curriculum against {c['reference']} at equal env steps (runs that reached level 2: {reached}): better on "
            f"{better}, worse on {worse} of {tested} tested comparisons (task x measure, Holm-adjusted)" + verdict]


def curriculum_answer(summary: Summary) -> str | None:
    """The headline sentence: the verdict in a word, the tally behind it and the probabilities of
    improvement over all tasks."""
    c = _curriculum(summary)
    if c is None:
        return None
    better, worse, tested, outcome = _curriculum_outcome(c, summary)
    word = {"earns": "Yes", "not": "No", "unreachable": "Not shown", "inconclusive": "Inconclusive"}[outcome]
    why = {"unreachable": ", as five runs against five cannot reach a verdict",
           "inconclusive": ": it reached the full task on too few runs to compare there"}.get(outcome, "")
    pooled = _and([f"{_p(c[m]['p']['all_tasks'])} on {words}" for m, (_, _, words) in CURRICULUM_LABELS.items()
                   if "all_tasks" in c[m]["p"]])
    return (f"{word}: against {c['reference']} (the same learner and budget without it) it is better on {better} and "
            f"worse on {worse} of {tested} tested comparisons{why}"
            + (f"; over all tasks a curriculum run beats a {c['reference']} run with probability {pooled} (0.5: a tie)"
               if pooled else "") + ".")


def mvp_table(params: Params, criteria: dict[str, Any]) -> Table:
    """The plan's LOCKED criteria on every seed: the numbers each one checks, and which failed."""
    by_step = params.mvp_criteria.by_step
    rows = [{"run": run, f"rolling success at step {by_step:,}": f"{s[f'rolling_success_at_step_{by_step}']:{RATE}}",
             "final rolling success": f"{s['final_rolling_success']:{RATE}}", "chance": f"{s['chance']:.3f}",
             "entropy (nats), first -> last quarter": f"{s['entropy_first_quarter']:.2f} -> {s['entropy_last_quarter']:.2f}",
             "world-model MSE, first -> last quarter":
                 f"{s['world_model_mse_first_quarter']:.2g} -> {s['world_model_mse_last_quarter']:.2g}",
             "passed": "yes" if s["passed"] else "no: " + ", ".join(c for c, ok in s["checks"].items() if not ok)}
            for run, s in criteria["seeds"].items()]
    return Table(f"The LOCKED MVP criteria per seed ({criteria['experiment']})",
                 f"Rolling success (a rate) above {params.mvp_criteria.by_step_success:g} by env step {by_step:,} and "
                 "above chance (1/A) at the end; policy entropy and the world model's raw next-state MSE falling from "
                 "the first quarter of training to the last (means over each quarter's curve rows).", rows)


def mvp_answer(summary: Summary, criteria: dict[str, Any]) -> str:
    """The headline sentence: the verdict, the seeds that pass, and the env steps to 90%."""
    seeds = criteria["seeds"]
    checks = {c for s in seeds.values() for c in s["checks"]}
    entry = complete_experiments(summary).get(criteria["experiment"])
    steps = "" if entry is None else f"; {criteria['experiment']} reaches 90% rolling success " + _and(
        [f"on {task} in {km(e, runs=False)} env steps" for task, e in entry[STEPS_TO_90].items()])
    return (f"{'Yes' if criteria['passed'] else 'No'}: the plan's {len(checks)} LOCKED criteria hold on "
            f"{sum(s['passed'] for s in seeds.values())}/{len(seeds)} seeds{steps}.")


def llm_answer(params: Params, summary: Summary, audit: dict[str, Any] | None) -> str | None:
    """The headline sentence: the success of the runs the audit audits (``llm_audit.experiment``),
    what the LLM's answer programs get right, and how many LLM runs their audit predicts."""
    name = params.llm_audit.experiment
    runs = summary["llm"].get(name)
    if not runs:
        return None
    success = _and([f"{interval(e['success_greedy'])} on {task}" for task, e in runs.items()])
    block = None if audit is None else audit["protocols"].get("program")
    top = str(NUM_LEVELS - 1)
    taught = f"{name} reaches" if block is None else (
        f"The LLM's answer programs ({block['model']}) are right on " + _and([
            f"{levels[top]['confusion']['rule_right']['llm_right']}/{levels[top]['states']} {task}"
            for task, levels in block["by_task_level"].items() if task in runs]) + f" level-{top} problems; taught by them, "
        f"{name} reaches")
    predicted = [e for by_task in summary["llm"].values() for e in by_task.values() if e.get("prediction") is not None]
    check = (f"; for {sum(e['agrees'] for e in predicted)} of {len(predicted)} LLM runs every seed's success lies inside "
             "the interval its parent's audit predicts") if predicted else "; no LLM run can be checked against an audit"
    return f"{taught} success {success}{check}."


@dataclass(frozen=True)
class Section:
    """One question of the paper: its answer (the headline sentence; None where there is nothing
    to answer), further sentences, and its tables, each with the figures drawn beside it (names of
    :data:`FIGURE_SPECS`; a block without a table shows its figures alone)."""
    anchor: str  # the HTML id
    question: str
    answer: str | None
    details: list[str]
    blocks: list[tuple[Table | None, tuple[str, ...]]]
    programs: list[tuple[str, str | None]] = field(default_factory=list)  # the LLM's, after the tables (program_texts)


def sections(params: Params, summary: Summary, criteria: dict[str, Any], audit: dict[str, Any] | None) -> list[Section]:
    """The report's questions in the order a reader meets them; every figure is in exactly one (the
    LLM audit's only with an audit: without one, the report lists the audit as missing instead)."""
    method = params.evaluation.method
    llm_blocks: list[tuple[Table | None, tuple[str, ...]]] = [(llm_table(summary), ())]
    if audit is not None:
        programs = programs_table(audit)
        llm_blocks = [(audit_table(audit), ("llm_audit",)), *([(programs, ())] if programs else []), *llm_blocks]
    missing_audit = ["LLM parent audit: missing (its job failed; see Missing results)."] if audit is None else []
    return [
        Section("mvp", "Does the plan's MVP pass?", mvp_answer(summary, criteria), criteria["failures"],
                [(mvp_table(params, criteria), ("mvp_criteria",))]),
        Section("baselines", f"Does {method} beat its baselines?", baselines_answer(params, summary), [],
                [(headline(params, summary), ("learning_curves", "final_success", "steps_to_90")),
                 (improvement_table(params, summary), ("probability_of_improvement",))]),
        Section("rule", "Does the baby learn the rule?", rule_answer(summary, method), rule_findings(summary, method),
                [(rule_table(summary), ("rule",))]),
        Section("world-model", "What does the world model add?", world_model_answer(params, summary),
                world_model_findings(params, summary),
                [(world_model_table(params, summary), ("world_model",)), (None, ("probes", "tsne"))]),
        Section("curriculum", "Does the curriculum help?", curriculum_answer(summary), curriculum_finding(summary),
                [(curriculum_table(summary), ("curriculum",)), (climb_table(summary), ())]),
        Section("parent-quality", "How good must a parent be?", quality_answer(summary), quality_findings(summary),
                [(quality_table(summary), ("regret", "parent_quality"))]),
        Section("llm", "What does an LLM parent teach?", llm_answer(params, summary, audit), missing_audit, llm_blocks,
                program_texts(audit)),
        Section("training", "How does training go?", None,
                ["Policy entropy, the world model's error and each reward component over training."],
                [(None, ("training_dynamics", "reward_components"))]),
    ]


def reading_guide(summary: Summary) -> str:
    """How to read the numbers, from the summary's own settings."""
    settings = summary["settings"]
    return (f"How to read the numbers: a success is a rate in [0, 1], the {settings['aggregate']}, written value "
            "[95% CI]. Env steps to 90%: the " + settings[STEPS_TO_90] + ", written median [95% CI] (runs that got "
            "there/runs). P: the probability that a run of one beats a run of the other [95% CI] (0.5: a tie). "
            f"Verdicts: {settings['comparisons_tested']} tested comparisons, {settings['verdicts']}.")


def missing_results(summary: Summary, records: dict[str, dict[str, Any]]) -> list[str]:
    """One line per result whose job failed: the runs and analyses the summary lists, and the
    result files of ``records`` (name -> failure record)."""
    entries = [(m["result"], m) for m in summary.get("missing", [])] + list(records.items())
    return [f"{result}: job '{r['job']}' failed ({r['reason']}); log: {r['log']}" for result, r in entries]


def params_hash(params: Params) -> str:
    return hashlib.sha256(json.dumps(params.defaults, sort_keys=True).encode()
                          + json.dumps({n: e.overrides for n, e in params.experiments.items()}, sort_keys=True).encode()
                          ).hexdigest()[:12]


#: Pixels: a figure at least this wide has several panels and keeps its width (shrunk, its labels
#: could not be read); a narrower one may shrink to 60% to sit beside its table.
WIDE_FIGURE = 1200


def figure_html(name: str, number: int, figures: Path, params: Params) -> str:
    """Figure ``name`` embedded as a data URI with its number and caption (what failed where its job
    did), shown at its own width at most (:data:`WIDE_FIGURE`)."""
    path = layout.figure_file(name, figures)
    record = failure_of(path)
    style = ""
    if record is not None:
        body = (f'<p class="missing">{MISSING}: its job failed ({html.escape(record["reason"])}); '
                f'log: <code>{html.escape(record["log"])}</code></p>')
    else:
        png = path.read_bytes()
        width = int.from_bytes(png[16:20], "big")  # the PNG header's IHDR chunk: width, height (pixels)
        basis = width if width >= WIDE_FIGURE else round(0.6 * width)
        style = f' style="flex: 1 1 {basis}px; max-width: min(100%, {width}px)"'
        body = f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
    return (f'<figure id="{name}"{style}>{body}<figcaption><b>Figure {number}.</b> '
            f"{html.escape(FIGURE_SPECS[name].caption_for(params))}</figcaption></figure>")


def section_html(section: Section, numbers: dict[str, int], figures: Path, params: Params) -> str:
    """A question's section: its answer and further sentences, then each table with its figures
    beside it (``numbers``: each figure's number in the report)."""
    blocks = "".join(
        '<div class="block">' + (f'<div class="table">{table.html()}</div>' if table is not None else "")
        + "".join(figure_html(n, numbers[n], figures, params) for n in names) + "</div>" for table, names in section.blocks)
    return (f'<section id="{section.anchor}"><h2>{html.escape(section.question)}</h2>'
            + (f'<p class="answer">{html.escape(section.answer)}</p>' if section.answer else "")
            + "".join(f"<p>{html.escape(line)}</p>" for line in section.details)
            + blocks + programs_html(section.programs) + "</section>")


def section_markdown(section: Section) -> list[str]:
    """A question's section: its answer and further sentences, each table, and where its figures are."""
    lines = [f"## {section.question}", ""]
    for line in ([section.answer] if section.answer else []) + section.details:
        lines += [line, ""]
    for table, names in section.blocks:
        lines += table.markdown() if table is not None else []
        lines += [f"Figures in report.html: {', '.join(names)}.", ""] if names else []
    return lines + programs_markdown(section.programs)


def summary_lines(parts: list[Section]) -> list[tuple[Section, str]]:
    """The summary: each question that has an answer, with it."""
    return [(section, section.answer) for section in parts if section.answer]


def markdown(params: Params, summary: Summary, criteria: dict[str, Any], audit: dict[str, Any] | None,
             missing: list[str]) -> str:
    parts = sections(params, summary, criteria, audit)
    lines = ["# WMIL: results", "",
             f"Generated by `wmil report` from `results/` (code {results_code_hash()}, params {params_hash(params)}).", "",
             "## Summary", "", *(f"- **{section.question}** {answer}" for section, answer in summary_lines(parts)), "",
             reading_guide(summary), ""]
    if missing:
        lines += ["## Missing results", "", "Their jobs failed; every other number is complete.", "",
                  *(f"- {line}" for line in missing), ""]
    for section in parts:
        lines += section_markdown(section)
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1500px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
section { border-top: 1px solid #ddd; margin-top: 2.5em; }
.summary li { margin: 0.5em 0; } .answer { font-size: 1.05em; font-weight: 500; }
.block { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; margin: 1.5em 0; }
.block > .table { flex: 0 1 auto; max-width: 100%; overflow-x: auto; }
figure { flex: 1 1 30em; min-width: 0; margin: 0; } .guide { font-size: 0.9em; color: #444; }
table { border-collapse: collapse; font-size: 0.85em; line-height: 1.3; }
caption { caption-side: top; text-align: left; padding-bottom: 0.5em; color: #444; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; } th { background: #f0f0f0; }
img { max-width: 100%; max-height: 85vh; } figcaption { color: #555; font-size: 0.9em; } .missing { color: #a00; }
"""


def render_html(params: Params, results: Path, summary: Summary, criteria: dict[str, Any],
                audit: dict[str, Any] | None, missing: list[str]) -> str:
    parts = sections(params, summary, criteria, audit)
    figures = layout.under(results, layout.FIGURES)
    numbers = {name: i for i, name in enumerate((n for section in parts for _, names in section.blocks for n in names), 1)}
    answers = "".join(f'<li><a href="#{section.anchor}"><b>{html.escape(section.question)}</b></a> {html.escape(answer)}</li>'
                      for section, answer in summary_lines(parts))
    experiments = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(e.description)}</li>"
                          for n, e in params.experiments.items() if e.sweep is None)
    sweeps = "".join(f"<li><b>{html.escape(n)}</b>: {len(points)} points, {html.escape(', '.join(points))}</li>"
                     for n, points in params.sweeps.items())
    missing_section = ("<h2>Missing results</h2><p>Their jobs failed; every other number is complete.</p><ul>"
                       + "".join(f"<li>{html.escape(line)}</li>" for line in missing) + "</ul>") if missing else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WMIL report</title>
<style>{STYLE}</style></head><body>
<h1>WMIL: world-model interaction learning</h1>
<p>A randomly initialised transformer learns goal-directed behaviour purely from interacting with a parent
environment: a rule parent, then an LLM. Generated by <code>wmil report</code> from <code>results/</code>: code
{results_code_hash()}, params {params_hash(params)}, {len(params.seeds)} seeds.</p>
<h2 id="summary">Summary</h2><ul class="summary">{answers}</ul>
<p class="guide">{html.escape(reading_guide(summary))}</p>
{missing_section}
{''.join(section_html(section, numbers, figures, params) for section in parts)}
<section id="experiments"><h2>Experiments</h2><ul>{experiments}</ul>
<h2>Sweeps</h2><ul>{sweeps}</ul></section>
</body></html>
"""


def headline_metrics(params: Params, summary: Summary, criteria: dict[str, Any]) -> dict[str, float | int | None]:
    """A short, flat set of the paper's numbers for ``dvc exp show`` / ``dvc metrics diff``: IQM
    success of every experiment but the sweep points, the method's success on held-out problems and
    env steps to 90% per task (Kaplan-Meier median), the MVP's criteria, steps and regret, the LLM
    runs' agreement with their audit and the probabilities of improvement."""
    out: dict[str, float | int | None] = {"mvp_criteria_seeds_passed": sum(s["passed"] for s in criteria["seeds"].values())}
    method, experiments = params.evaluation.method, complete_experiments(summary)
    for name, exp in params.experiments.items():
        if exp.sweep is None:
            entry = experiments.get(name)
            out[f"success.{name}"] = None if entry is None else round(entry["success_greedy"]["all_tasks"]["value"], 4)
    mvp_name = params.mvp_criteria.experiment
    if (mvp := experiments.get(mvp_name)) is not None:
        for task in params.experiments[mvp_name].tasks:
            out[f"mvp_{STEPS_TO_90}.{task}"] = mvp[STEPS_TO_90][task]["median"]
            out[f"mvp_{FAILURES_TO_MASTERY}.{task}"] = round(mvp[FAILURES_TO_MASTERY][task]["value"], 1)
    if (entry := experiments.get(method)) is not None:
        for task in params.experiments[method].tasks:
            out[f"{STEPS_TO_90}.{method}.{task}"] = entry[STEPS_TO_90][task]["median"]
            held_out = entry["held_out_success_greedy"].get(task)
            if held_out is not None:
                out[f"held_out_success.{method}.{task}"] = round(held_out["value"], 4)
    for name, pois in summary["probability_of_improvement"].items():
        out[f"p_improvement.{method}_over_{name}"] = round(pois["all_tasks"]["p"], 4)
    for name, v in world_model_variants(params, summary).items():
        for task in v["tasks"]:
            out[f"p_fewer_steps_than_reference.{name}.{task}"] = round(v["p_steps"][task]["p"], 4)
    if (c := _curriculum(summary)) is not None:
        for measure in CURRICULUM_LABELS:
            for task, poi in c[measure]["p"].items():
                out[f"p_curriculum_over_reference.{measure}.{task}"] = round(poi["p"], 4)
    for name, by_task in summary["llm"].items():
        for task, e in by_task.items():
            out[f"llm_seeds_inside_prediction.{name}.{task}"] = sum(e["inside"]) if e.get("prediction") else None
    return out


def build_report(params: Params, results: Path) -> tuple[str, str, dict[str, float | int | None]]:
    """``(html, markdown, headline metrics)`` from ``results/metrics`` and ``results/figures``."""
    results = Path(results)
    summary = read_summary(layout.under(results, layout.SUMMARY))
    criteria = read_result(layout.under(results, layout.MVP_CRITERIA), "wmil mvp-criteria")
    audit_path = layout.under(results, layout.LLM_AUDIT)
    records: dict[str, dict[str, Any]] = {}  # result -> the failure record of the job that should have made it
    try:
        audit = read_result(audit_path, "wmil llm-audit")
    except MissingResult as failed:  # the report says so, and shows everything else
        audit, records[f"{audit_path.parent.name}/{audit_path.name}"] = None, failed.record
    figures = layout.under(results, layout.FIGURES)
    records |= {f"{p.parent.name}/{p.name}": r for p in (layout.figure_file(n, figures) for n in FIGURE_SPECS)
                if (r := failure_of(p)) is not None}
    missing = missing_results(summary, records)
    return (render_html(params, results, summary, criteria, audit, missing),
            markdown(params, summary, criteria, audit, missing), headline_metrics(params, summary, criteria))
