"""The paper report: one self-contained HTML file (figures embedded) and a markdown file of the
same tables, both built from result files alone (``wmil report``).

Tables: the headline numbers (every experiment but the sweep points), the world-model variants
against the ablation without one, the LLM parent's audit by
judge protocol, the LLM runs against what their audit predicts, and the parent-quality sweep.
Every table says its unit; step counts print as ``1,680 [1,530, 1,830]``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmil import layout
from wmil.config import Params
from wmil.jobs import failure_of
from wmil.provenance import results_code_hash
from wmil.reporting.figures import FIGURES
from wmil.tasks.rules import NUM_LEVELS

MISSING = "missing"
#: Formats: success rates and J with two decimals, counts of env steps or episodes as integers.
RATE, COUNT = ".2f", ",.0f"


def interval(entry: dict[str, Any] | None, fmt: str = RATE) -> str:
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
        if not self.rows:
            return [f"## {self.title}", "", f"{self.note} (no rows)", ""]
        header = list(self.rows[0])
        return [f"## {self.title}", "", self.note, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *("| " + " | ".join(row[h] for h in header) + " |" for row in self.rows), ""]

    def html(self) -> str:
        if not self.rows:
            return f"<h2>{html.escape(self.title)}</h2><p>{html.escape(self.note)} (no rows)</p>"
        header = list(self.rows[0])
        return (f"<h2>{html.escape(self.title)}</h2><p>{html.escape(self.note)}</p><table><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{html.escape(r[h])}</td>" for h in header) + "</tr>" for r in self.rows)
                + "</table>")


HEADLINE_CELLS = ("success (training problems)", "success (held-out problems)",
                  "env steps to 90%: median [95% CI] (reached/runs)", "failed episodes to 99% (reached/runs)")


def km(entry: dict[str, Any]) -> str:
    """A Kaplan-Meier median of env steps with its 95% interval and the runs that got there: ``8,576
    [7,936, 9,984] (10/10)``; ``>`` the budget when fewer than half did, ``...`` an open end."""
    reached = f"({entry['reached']}/{entry['runs']})"
    if entry["median"] is None:
        return f"> {entry['budget']:{COUNT}} {reached}"
    lo = "..." if entry["lo"] is None else f"{entry['lo']:{COUNT}}"
    hi = "..." if entry["hi"] is None else f"{entry['hi']:{COUNT}}"
    return f"{entry['median']:{COUNT}} [{lo}, {hi}] {reached}"


def headline(params: Params, summary: dict[str, Any]) -> Table:
    """One row per experiment (not a sweep point) and task: success on the training problems and on
    the held-out ones, env steps to 90% and failed episodes until 99%."""
    rows = []
    for name, exp in params.experiments.items():
        if exp.sweep is not None:
            continue
        entry = summary["experiments"][name]
        for task in exp.tasks:
            if entry.get("missing"):
                rows.append({"experiment": name, "task": task, "seeds": str(len(params.seeds_of(name))),
                             **dict.fromkeys(HEADLINE_CELLS, MISSING)})
                continue
            held_out = entry["held_out_success_greedy"].get(task)
            failures = entry["failures_to_0.99"][task]
            rows.append({"experiment": name, "task": task, "seeds": str(entry["seeds"]),
                         HEADLINE_CELLS[0]: interval(entry["success_greedy"][task]),
                         HEADLINE_CELLS[1]: interval(held_out) if held_out else "none held out",
                         HEADLINE_CELLS[2]: km(entry["steps_to_0.9"][task]),
                         HEADLINE_CELLS[3]: f"{interval(failures, COUNT)} ({entry['reached_0.99'][task]}/{entry['seeds']})"})
    return Table("Headline numbers",
                 f"Success: {summary['settings']['score']}, a rate in [0, 1], the {summary['settings']['aggregate']}; "
                 "PatternEcho holds none out (an unseen target is an untrained output: it tests association). "
                 f"Steps: env steps (one step is one answer), {summary['settings']['steps_to_0.9']}. Failures: failed "
                 "episodes until 99% rolling success (all of them where it never came; IQM [95% CI]). Seeds: "
                 f"{len(params.seeds)} on the headline comparisons, fewer where the row says so; none of them tuned "
                 f"anything (tuning seeds {params.tuning_seeds[0]}-{params.tuning_seeds[-1]}). Sweep points are in the "
                 "parent-quality table.", rows)


def rule_table(summary: dict[str, Any]) -> Table:
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
    return Table("Does the baby learn the rule?",
                 "Greedy episode success (rate; IQM [95% CI] over seeds) on fresh episodes of the problems a run "
                 "trained on and of those its split held out (never drawn, never reached by a transition): "
                 "Conditional holds out one shape per colour and size (a Latin square drawn per seed), SequenceNext "
                 "every sequence of one step (one sign and magnitude drawn per seed, the opposite step trained). "
                 "The tabular reference is a lookup table learning from the same verdicts: it memorises every "
                 "training problem and guesses on the others.", rows)


MASTERED = 0.9  # training-problem success (the interval's lower end) before held-out success means anything


def rule_findings(summary: dict[str, Any], method: str) -> list[str]:
    """One sentence per task: once the method masters its training problems, does it learn the
    rule (held-out success within 0.1 of training), generalise beyond a lookup table (above the
    table's held-out interval), or memorise (no better than the table)?"""
    lines = []
    for task, entry in summary["rule"].items():
        e = entry["experiments"].get(method)
        if e is None:
            continue
        tabular = entry.get("tabular")
        train, held = e["training"], e["held_out"]
        if train["lo"] < MASTERED:
            answer = "no answer: it does not master its own training problems"
        elif held["lo"] >= train["value"] - 0.1:
            answer = "it learns the rule: held-out problems as well as trained ones"
        elif tabular is not None and held["lo"] > tabular["held_out"]["hi"]:
            answer = "it generalises beyond a lookup table, short of the rule"
        else:
            answer = "it memorises: on held-out problems no better than a lookup table"
        reference = (f"; lookup table {interval(tabular['training'])} and {interval(tabular['held_out'])}"
                     if tabular is not None else "")
        lines.append(f"Does {method} learn the rule on {task}? Success {interval(train)} on its training problems, "
                     f"{interval(held)} on held-out problems (chance {entry['chance']:.4f}{reference}): {answer}.")
    return lines


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
    block = (audit or {}).get("protocols", {}).get("program")
    if block is None:
        return []
    texts = []
    for task, programs in block["programs"].items():
        texts.append((f"{task}: answer", programs["answer"]))
        texts += [(f"{task}: in_level, level {level}", made["source"]) for level, made in programs["in_level"].items()]
    return texts


REFUSED_TWICE = "refused twice by the sandbox (its responses are in results/metrics/llm_audit.json)"
PROGRAMS_TITLE = "The LLM's programs, as the sandbox checked them"


def programs_markdown(audit: dict[str, Any] | None) -> list[str]:
    texts = program_texts(audit)
    lines = [f"## {PROGRAMS_TITLE}", ""] if texts else []
    for what, source in texts:
        lines += [f"### {what}", "", *(["```python", source.rstrip(), "```"] if source else [REFUSED_TWICE]), ""]
    return lines


def programs_html(audit: dict[str, Any] | None) -> str:
    texts = program_texts(audit)
    return (f"<h2>{html.escape(PROGRAMS_TITLE)}</h2>" if texts else "") + "".join(
        f"<h3>{html.escape(what)}</h3>"
        + (f"<pre><code>{html.escape(source)}</code></pre>" if source else f"<p>{html.escape(REFUSED_TWICE)}</p>")
        for what, source in texts)


def llm_table(summary: dict[str, Any]) -> Table:
    rows = []
    for name, by_task in summary["llm"].items():
        for task, e in by_task.items():
            p = e.get("prediction")
            rows.append({"experiment": name, "task": task, "protocol": e["protocol"],
                         "success (training problems)": interval(e["success_greedy"]),
                         "per seed": ", ".join(f"{s:{RATE}}" for s in e["success_greedy"]["per_seed"]),
                         "audited J": f"{e['audited_j']:{RATE}}" if p else MISSING,
                         "predicted (episode ceiling)": (f"{p['mean']:{RATE}} in [{p['interval'][0]:{RATE}}, "
                                                         f"{p['interval'][1]:{RATE}}]") if p else MISSING,
                         "J curve at that J": f"{e['j_curve']:{RATE}}" if p and e["j_curve"] is not None else "n/a",
                         "seeds inside": f"{sum(e['inside'])}/{len(e['inside'])}" if p else MISSING})
    return Table("LLM runs against their audit",
                 "Greedy success on the training problems (rate; IQM [95% CI] over seeds). At temperature 0 the "
                 "judge's errors repeat on a state, so the prediction is the audit's episode ceiling at the run's "
                 "protocol, task and level over the run's own training problems (the range over seeds shown), with a "
                 "95% interval for the policy's pick among the answers the verdicts leave open (a coin per "
                 "problem) and the evaluation episodes' binomial error; the J curve (random errors, anchored at chance "
                 "for J = 0) is shown beside it.", rows)


def quality_table(summary: dict[str, Any]) -> Table:
    rows = [{"experiment": p["experiment"], "task": p["task"], "FPR": f"{p['false_positive_rate']:{RATE}}",
             "FNR": f"{p['false_negative_rate']:{RATE}}", "J": f"{p['j']:{RATE}}",
             "noise-corrected": "yes" if p["noise_correction"] else "no",
             "success (training problems)": interval(p["success_greedy"])} for p in summary["parent_quality"]]
    return Table("How good must a parent be?",
                 "A rule parent that calls a wrong answer right with probability FPR and a right one wrong with FNR "
                 "(rates), each verdict afresh; greedy success on the training problems (rate; IQM [95% CI] over "
                 "seeds; five seeds).", rows)


def _verdict(poi: dict[str, Any]) -> str:
    """The summary's verdict on one comparison: better, worse or no clear difference by its
    Holm-adjusted test (``p_holm``); a comparison pooled over tasks has none (not tested), nor
    one the summary marks inconclusive (a curriculum that did not reach the full task)."""
    if "verdict" in poi:
        return f"{poi['verdict']} (Holm p = {poi['p_holm']:.3f})"
    return poi.get("inconclusive", "pooled, not tested")


def _poi(poi: dict[str, Any]) -> str:
    return f"{interval({'value': poi['p'], **poi})} {_verdict(poi)}"


def world_model_variants(params: Params, summary: dict[str, Any]) -> dict[str, Any]:
    """The world-model variants and controls in the order of ``evaluation.world_model`` (sweeps
    expanded), each with its ``reference``; empty when the comparison is missing."""
    variants = (summary.get("world_model") or {}).get("variants", {})
    return {n: variants[n] for n in params.expand(list(params.evaluation.world_model)) if n in variants}


def world_model_groups(params: Params, summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Reference -> its variants (name -> entry), references in order of first appearance."""
    groups: dict[str, dict[str, Any]] = {}
    for name, v in world_model_variants(params, summary).items():
        groups.setdefault(v["reference"], {})[name] = v
    return groups


def world_model_label(v: dict[str, Any] | None) -> str:
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


def world_model_table(params: Params, summary: dict[str, Any]) -> Table:
    """Each reference without a world model, then its variants and controls, per task."""
    rows = []
    for reference, variants in world_model_groups(params, summary).items():
        compared = list(dict.fromkeys(t for v in variants.values() for t in v["tasks"]))
        for name, v in {reference: None, **variants}.items():
            entry = summary["experiments"][name]
            for task in compared if v is None else v["tasks"]:
                row = {"experiment": name, "world model": world_model_label(v), "seeds": str(entry["seeds"]),
                       "coef": "-" if v is None else f"{v['world_model_coef']:g}", "task": task,
                       "env steps to 90%": km(entry["steps_to_0.9"][task]),
                       "success": interval(entry["success_greedy"][task]),
                       "held-out success": interval(entry["held_out_success_greedy"].get(task))}
                for key, label in (("p_steps", "fewer steps"), ("p_success", "higher success")):
                    row[f"P({label} than its reference)"] = "-" if v is None else _poi(v[key][task])
                rows.append(row)
    return Table("What does the world model add?",
                 "ppo's settings and budget with the world model changed, each against the run without one on the "
                 "same tasks (its reference: the row above it with world model 'none'). Steps: env steps until 90% "
                 "rolling success on the full task, Kaplan-Meier median [95% CI] with runs censored at the budget "
                 "(reached/runs); success: greedy success on the training problems, held-out: on the problems the run "
                 "never trained on (rates; IQM [95% CI] over seeds). P: the probability that a run of the variant "
                 "beats a run of its reference (rliable; ties count half) [95% CI], and its verdict: a two-sided "
                 "Mann-Whitney test, Holm-adjusted over every verdict of the report.", rows)


def _beats(v: dict[str, Any], task: str) -> bool:
    """Whether a variant beats its reference on ``task`` by a Holm-adjusted verdict (steps or success)."""
    return any(v[key][task].get("verdict") == "better" for key in ("p_steps", "p_success") if task in v[key])


def world_model_findings(params: Params, summary: dict[str, Any]) -> list[str]:
    """Per task: the variants and controls that beat their reference (Holm-adjusted, on steps to
    90% or on success), or that none does (a null result); then what the controls say about the
    method's world model, in words derived from the same verdicts."""
    variants = world_model_variants(params, summary)
    method = params.evaluation.method
    if method not in variants:
        return []
    lines = []
    tasks = list(dict.fromkeys(t for v in variants.values() for t in v["tasks"]))
    for task in tasks:
        wins = [f"{name} over {v['reference']} ({label} P = {v[key][task]['p']:.2f}, Holm p = {v[key][task]['p_holm']:.3f})"
                for name, v in variants.items() if task in v["p_steps"]
                for key, label in (("p_steps", "fewer steps"), ("p_success", "higher success"))
                if v[key][task].get("verdict") == "better"]
        lines.append(f"World model on {task}: " + ("; ".join(wins) if wins else "no variant beats its reference (a null result)") + ".")
    lines += _world_model_explanation(params, summary, variants)
    return lines


def _unreachable(poi: dict[str, Any], summary: dict[str, Any]) -> bool:
    """Whether no verdict was reachable: even complete separation of the runs (``p_floor``) would
    not pass the Holm adjustment over the report's family (five runs against five never does)."""
    settings = summary["settings"]
    return poi.get("p_floor") is not None and poi["p_floor"] * settings["comparisons_tested"] >= settings["alpha"]


def _control_clause(v: dict[str, Any], task: str, as_far: bool, what: str, full: str, part: str, none: str) -> str:
    """How far a control gets against its reference: as far as the method (it beats the reference
    and ``as_far``: at least the method's share of runs reach 90%), part of the way (it beats it,
    fewer reach 90%), or not (no verdict in its favour)."""
    if not _beats(v, task):
        return f"{what} does not beat {v['reference']}{none}"
    return f"{what} does as well{full}" if as_far else f"{what} gets part of the way{part}"


def _world_model_explanation(params: Params, summary: dict[str, Any], variants: dict[str, Any]) -> list[str]:
    """The headline sentence on the method's world model: per task where it beats its reference,
    how far each control gets (the answer head: supervision or reconstruction, no dynamics; the
    detached head: the prediction reward alone), whether it still beats its reference where the
    next state reveals no answer, and the upper bound of being told the parent's answer outright
    (distillation), each with its env steps to 90%."""
    method = params.evaluation.method
    holds = (summary.get("world_model") or {}).get("next_problem_holds_answer", {})
    experiments = summary["experiments"]
    lines = []
    for task in variants[method]["tasks"]:
        def steps(name: str, task: str = task) -> str:
            return f"{km(experiments[name]['steps_to_0.9'][task])} env steps to 90%"

        def reached(name: str, task: str = task) -> float:
            entry = experiments[name]["steps_to_0.9"][task]
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


#: The curriculum comparison's measures (summary.json "curriculum"), as the report names them.
CURRICULUM_MEASURES = {"success_level2": ("success, level 2", "higher"),
                       "success_all_levels": ("success, mean of levels 0-2", "higher"),
                       "steps_to_0.9": ("env steps to 90%, level 2", "fewer")}


def curriculum_table(summary: dict[str, Any]) -> Table:
    """Per measure and task (and over all tasks for the rates): the curriculum, its matched
    reference, and P(curriculum better) with its verdict (or why there is none)."""
    c = summary.get("curriculum") or {}
    rows = []
    for measure, (label, better) in CURRICULUM_MEASURES.items() if c else ():
        entry = c[measure]
        shown = km if measure == "steps_to_0.9" else interval
        for task, poi in entry["p"].items():
            rows.append({"measure": label, "task": task,
                         c["curriculum"]: shown(entry[c["curriculum"]][task]),
                         c["reference"]: shown(entry[c["reference"]][task]),
                         "better": better, "P(curriculum better)": _poi(poi)})
    budget = ", ".join(f"{task} {steps:,}" for task, steps in c.get("budget", {}).items())
    return Table("Does the curriculum help?",
                 f"The mastery curriculum (levels 0 -> 2) against {c.get('reference')}: every "
                 f"setting, the env-step budget ({budget}) and the learning-rate schedule shared, five seeds. Greedy "
                 "success on the training problems (rate) of the full task and averaged over the levels, IQM [95% CI]; "
                 "env steps until 90% rolling success on the full task, Kaplan-Meier median [95% CI], censored at the "
                 "budget. P: the probability that a curriculum run beats a run without (higher success, fewer steps; "
                 "rliable; ties count half) [95% CI], with its Holm-adjusted verdict; inconclusive where fewer than "
                 "four in five curriculum runs reached level 2 (the comparison would be zero-shot transfer).", rows)


def climb_table(summary: dict[str, Any]) -> Table:
    """Each curriculum run's climb: the level it reached and the env steps it spent at each."""
    c = summary.get("curriculum") or {}
    rows = [{"task": task, "seed": str(run["seed"]), "top level": str(run["top_level"]),
             **{f"env steps at level {lv}": f"{steps:,}" if steps else "-" for lv, steps in enumerate(run["steps_per_level"])},
             "level 2 from": "-" if run["level_entered_at"][-1] is None else f"{run['level_entered_at'][-1]:,}"}
            for task, runs in c.get("climb", {}).items() for run in runs]
    return Table("How far did the curriculum climb?",
                 "Each curriculum run: the highest level it reached, the env steps it played while each level was "
                 "the current one (replayed easier episodes included), and the env step at which it first played "
                 "level 2 (the full task, which the verdicts judge).", rows)


def curriculum_finding(summary: dict[str, Any]) -> list[str]:
    """Whether the curriculum earns its place: better on some tested comparison and worse on none;
    inconclusive where it did not reach the full task."""
    c = summary.get("curriculum") or {}
    if not c:
        return []
    pois = [poi for m in CURRICULUM_MEASURES for poi in c[m]["p"].values()]
    verdicts = [poi.get("verdict") for poi in pois]
    better, worse = verdicts.count("better"), verdicts.count("worse")
    reached = ", ".join(f"{task} {n}/{len(c['climb'][task])}" for task, n in c["reached_top"].items())
    inconclusive = sorted({task for m in CURRICULUM_MEASURES for task, poi in c[m]["p"].items() if "inconclusive" in poi})
    tested = sum(v is not None for v in verdicts)
    if tested == 0:
        verdict = ": inconclusive (it reached the full task on too few runs to compare there)."
    else:
        verdict = (": it earns its place." if better > 0 and worse == 0 else ": it does not earn its place.")
        if better == worse == 0 and all(_unreachable(poi, summary) for poi in pois if poi.get("p_value") is not None):
            verdict = (": no verdict was reachable (five runs against five cannot pass the Holm adjustment over "
                       f"{summary['settings']['comparisons_tested']} tests), so it has not shown that it earns its place.")
        if inconclusive:
            verdict = verdict[:-1] + f"; inconclusive on {', '.join(inconclusive)}."
    return [f"Curriculum against {c['reference']} at equal env steps (runs that reached level 2: {reached}): better on "
            f"{better}, worse on {worse} of {tested} tested comparisons (task x measure, Holm-adjusted)" + verdict]


def findings(params: Params, summary: dict[str, Any], criteria: dict[str, Any], audit: dict[str, Any] | None) -> list[str]:
    """The rule question, the MVP verdict, the probabilities of improvement and the LLM parent, one
    line each; how many verdicts the report tests."""
    seeds_passed = sum(s["passed"] for s in criteria["seeds"].values())
    method = params.evaluation.method
    lines = [*rule_findings(summary, method),
             f"LOCKED MVP criteria ({criteria['experiment']}): {'pass' if criteria['passed'] else 'FAIL'} "
             f"on {seeds_passed}/{len(criteria['seeds'])} seeds.",
             *(f"{method} against {name}: " + "; ".join(
                 f"{task.replace('_', ' ')} P = {poi['p']:.2f} [{poi['lo']:.2f}, {poi['hi']:.2f}] {_verdict(poi)}"
                 for task, poi in pois.items()) for name, pois in summary["probability_of_improvement"].items())]
    lines += world_model_findings(params, summary)
    lines += curriculum_finding(summary)
    if audit is None:
        lines.append("LLM parent audit: missing (its job failed; see Missing results).")
    elif "program" in audit["protocols"]:
        block = audit["protocols"]["program"]
        rights = ", ".join(f"{task} {levels[str(NUM_LEVELS - 1)]['confusion']['rule_right']['llm_right']}/"
                           f"{levels[str(NUM_LEVELS - 1)]['states']}" for task, levels in block["by_task_level"].items())
        lines.append(f"The LLM's answer programs ({block['model']}) at level {NUM_LEVELS - 1}: right on {rights} problems.")
    for name, by_task in summary["llm"].items():
        for task, e in by_task.items():
            verdict = (e["no_prediction"] if e.get("prediction") is None else
                       f"{sum(e['inside'])}/{len(e['inside'])} seeds inside the predicted interval "
                       f"({'agrees' if e['agrees'] else 'DISAGREES'})")
            lines.append(f"{name} on {task} ({e['protocol']}): success {interval(e['success_greedy'])}; {verdict}.")
    lines.append(f"Verdicts: {summary['settings']['comparisons_tested']} tested comparisons, "
                 f"{summary['settings']['verdicts']}.")
    return lines


def missing_results(summary: dict[str, Any], records: dict[str, dict[str, Any]]) -> list[str]:
    """One line per result whose job failed: the runs and analyses the summary lists, and the
    result files of ``records`` (name -> failure record)."""
    entries = [(m["result"], m) for m in summary.get("missing", [])] + list(records.items())
    return [f"{result}: job '{r['job']}' failed ({r['reason']}); log: {r['log']}" for result, r in entries]


def params_hash(params: Params) -> str:
    return hashlib.sha256(json.dumps(params.defaults, sort_keys=True).encode()
                          + json.dumps({n: e.overrides for n, e in params.experiments.items()}, sort_keys=True).encode()
                          ).hexdigest()[:12]


def tables(params: Params, summary: dict[str, Any], audit: dict[str, Any] | None) -> list[Table]:
    return [headline(params, summary), rule_table(summary), world_model_table(params, summary), curriculum_table(summary),
            climb_table(summary),
            *([audit_table(audit)] if audit is not None else []),
            *([t] if audit is not None and (t := programs_table(audit)) is not None else []),
            llm_table(summary), quality_table(summary)]


def markdown(params: Params, summary: dict[str, Any], criteria: dict[str, Any], audit: dict[str, Any] | None,
             missing: list[str]) -> str:
    lines = ["# WMIL: headline numbers", "",
             f"Generated by `wmil report` from `results/` (code {results_code_hash()}, params {params_hash(params)}).", "",
             *(f"- {line}" for line in findings(params, summary, criteria, audit)), ""]
    for table in tables(params, summary, audit):
        lines += table.markdown()
    lines += programs_markdown(audit)
    if missing:
        lines += ["## Missing results", "", "Their jobs failed; every other number above is complete.", "",
                  *(f"- {line}" for line in missing), ""]
    return "\n".join(lines)


def render_html(params: Params, results: Path, summary: dict[str, Any], criteria: dict[str, Any],
                audit: dict[str, Any] | None, missing: list[str]) -> str:
    figures = []
    for name, spec in FIGURES.items():
        path = layout.figure_file(name, layout.under(results, layout.FIGURES))
        record = failure_of(path)
        if record is not None:
            body = (f'<p class="missing">{MISSING}: its job failed ({html.escape(record["reason"])}); '
                    f'log: <code>{html.escape(record["log"])}</code></p>')
        else:
            data = base64.b64encode(path.read_bytes()).decode()
            body = f'<img alt="{name}" src="data:image/png;base64,{data}">'
        figures.append(f'<figure id="{name}"><h3>{html.escape(name.replace("_", " "))}</h3>{body}'
                       f"<figcaption>{html.escape(spec.caption)}</figcaption></figure>")
    experiments = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(e.description)}</li>"
                          for n, e in params.experiments.items() if e.sweep is None)
    sweeps = "".join(f"<li><b>{html.escape(n)}</b>: {len(points)} points, {html.escape(', '.join(points))}</li>"
                     for n, points in params.sweeps.items())
    bullet_items = "".join(f"<li>{html.escape(line)}</li>" for line in findings(params, summary, criteria, audit))
    missing_section = ("<h2>Missing results</h2><p>Their jobs failed; every other number is complete.</p><ul>"
                       + "".join(f"<li>{html.escape(line)}</li>" for line in missing) + "</ul>") if missing else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WMIL report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85em; }} th, td {{ border: 1px solid #ccc; padding: 0.3em 0.5em; }}
th {{ background: #f0f0f0; }} img {{ max-width: 100%; }} figure {{ margin: 2em 0; }}
figcaption {{ color: #555; font-size: 0.9em; }} .missing {{ color: #a00; }}
</style></head><body>
<h1>WMIL: world-model interaction learning</h1>
<p>A randomly initialised transformer learns goal-directed behaviour purely from interacting with a parent
environment: a rule parent, then an LLM. Generated by <code>wmil report</code> from <code>results/</code>: code
{results_code_hash()}, params {params_hash(params)}, {len(params.seeds)} seeds.</p>
<ul>{bullet_items}</ul>
{''.join(t.html() for t in tables(params, summary, audit))}
{programs_html(audit)}
{missing_section}
<h2>Experiments</h2><ul>{experiments}</ul>
<h2>Sweeps</h2><ul>{sweeps}</ul>
<h2>Figures</h2>{''.join(figures)}
</body></html>
"""


def headline_metrics(params: Params, summary: dict[str, Any], criteria: dict[str, Any]) -> dict[str, float | int | None]:
    """A short, flat set of the paper's numbers for ``dvc exp show`` / ``dvc metrics diff``: IQM
    success of every experiment but the sweep points, the method's success on held-out problems and
    env steps to 90% per task (Kaplan-Meier median), the MVP's criteria, steps and regret, the LLM
    runs' agreement with their audit and the probabilities of improvement."""
    out: dict[str, float | int | None] = {"mvp_criteria_seeds_passed": sum(s["passed"] for s in criteria["seeds"].values())}
    method = params.evaluation.method
    for name, exp in params.experiments.items():
        entry = summary["experiments"][name]
        if exp.sweep is None:
            out[f"success.{name}"] = None if entry.get("missing") else round(entry["success_greedy"]["all_tasks"]["value"], 4)
    mvp_name = params.mvp_criteria.experiment
    mvp = summary["experiments"][mvp_name]
    if not mvp.get("missing"):
        for task in params.experiments[mvp_name].tasks:
            out[f"mvp_steps_to_0.9.{task}"] = mvp["steps_to_0.9"][task]["median"]
            out[f"mvp_failures_to_0.99.{task}"] = round(mvp["failures_to_0.99"][task]["value"], 1)
    if not summary["experiments"][method].get("missing"):
        for task in params.experiments[method].tasks:
            out[f"steps_to_0.9.{method}.{task}"] = summary["experiments"][method]["steps_to_0.9"][task]["median"]
            held_out = summary["experiments"][method]["held_out_success_greedy"].get(task)
            if held_out is not None:
                out[f"held_out_success.{method}.{task}"] = round(held_out["value"], 4)
    for name, pois in summary["probability_of_improvement"].items():
        out[f"p_improvement.{method}_over_{name}"] = round(pois["all_tasks"]["p"], 4)
    for name, v in (summary.get("world_model") or {}).get("variants", {}).items():
        for task in v["tasks"]:
            out[f"p_fewer_steps_than_reference.{name}.{task}"] = round(v["p_steps"][task]["p"], 4)
    for measure, entry in {k: v for k, v in (summary.get("curriculum") or {}).items() if k in CURRICULUM_MEASURES}.items():
        for task, poi in entry["p"].items():
            out[f"p_curriculum_over_reference.{measure}.{task}"] = round(poi["p"], 4)
    for name, by_task in summary["llm"].items():
        for task, e in by_task.items():
            out[f"llm_seeds_inside_prediction.{name}.{task}"] = sum(e["inside"]) if e.get("prediction") else None
    return out


def build_report(params: Params, results: Path) -> tuple[str, str]:
    """``(html, markdown)`` from ``results/metrics`` and ``results/figures``."""
    results = Path(results)
    summary, criteria = (json.loads(layout.under(results, path).read_text()) for path in (layout.SUMMARY, layout.MVP_CRITERIA))
    audit_path = layout.under(results, layout.LLM_AUDIT)
    figures = layout.under(results, layout.FIGURES)
    records = {f"{p.parent.name}/{p.name}": r for p in [audit_path, *(layout.figure_file(n, figures) for n in FIGURES)]
               if (r := failure_of(p)) is not None}
    audit = None if failure_of(audit_path) is not None else json.loads(audit_path.read_text())
    missing = missing_results(summary, records)
    return (render_html(params, results, summary, criteria, audit, missing),
            markdown(params, summary, criteria, audit, missing))
