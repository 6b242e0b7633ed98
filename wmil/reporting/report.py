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


def headline(params: Params, summary: dict[str, Any]) -> Table:
    """One row per experiment that is not a sweep point: held-out success per task and over all
    tasks, env steps to 90% and failed episodes until 99% over all tasks."""
    tasks = params.experiments[params.evaluation.method].tasks
    rows = []
    for name, exp in params.experiments.items():
        if exp.sweep is not None:
            continue
        entry = summary["experiments"][name]
        runs = len(params.seeds_of(name)) * len(exp.tasks)
        cells = [f"success: {t}" for t in tasks] + ["success: all tasks", "env steps to 90% (reached/runs)",
                                                    "failed episodes to 99% (reached/runs)"]
        if entry.get("missing"):
            rows.append({"experiment": name, "tasks": ", ".join(exp.tasks), **dict.fromkeys(cells, MISSING)})
            continue
        success = entry["success_greedy"]
        rows.append({
            "experiment": name, "tasks": ", ".join(exp.tasks),
            **{f"success: {t}": interval(success.get(t)) for t in tasks},
            "success: all tasks": interval(success["all_tasks"]),
            cells[-2]: f"{interval(entry['steps_to_0.9_censored']['all_tasks'], COUNT)} "
                       f"({sum(entry['reached_0.9'].values())}/{runs})",
            cells[-1]: f"{interval(entry['failures_to_0.99']['all_tasks'], COUNT)} "
                       f"({sum(entry['reached_0.99'].values())}/{runs})",
        })
    return Table("Headline numbers",
                 f"Success: {summary['settings']['score']}, a rate in [0, 1]; steps: env steps (one step is one "
                 f"answer), a run that never reached 90% counted as its budget; failures: failed episodes. Every "
                 f"cell is the {summary['settings']['aggregate']} ({len(params.seeds)} seeds unless an experiment sets its own; tasks an experiment "
                 f"lacks: n/a). Sweep points are in the parent-quality table.", rows)


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
                 "moves on to continuations outside the table), what a run's held-out success is predicted by; "
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
                         "held-out success": interval(e["success_greedy"]),
                         "per seed": ", ".join(f"{s:{RATE}}" for s in e["success_greedy"]["per_seed"]),
                         "audited J": f"{e['audited_j']:{RATE}}" if p else MISSING,
                         "predicted (episode ceiling)": (f"{p['mean']:{RATE}} in [{p['interval'][0]:{RATE}}, "
                                                         f"{p['interval'][1]:{RATE}}]") if p else MISSING,
                         "J curve at that J": f"{e['j_curve']:{RATE}}" if p and e["j_curve"] is not None else "n/a",
                         "seeds inside": f"{sum(e['inside'])}/{len(e['inside'])}" if p else MISSING})
    return Table("LLM runs against their audit",
                 "Held-out greedy success (rate; IQM [95% CI] over seeds). At temperature 0 the judge's errors repeat "
                 "on a state, so the prediction is the audit's episode ceiling at the run's protocol, task and "
                 "level, with a 95% interval for the policy's pick among the answers the verdicts leave open (a coin per "
                 "problem) and the held-out episodes' binomial error; the J curve (random errors, anchored at chance "
                 "for J = 0) is shown beside it.", rows)


def quality_table(summary: dict[str, Any]) -> Table:
    rows = [{"experiment": p["experiment"], "task": p["task"], "FPR": f"{p['false_positive_rate']:{RATE}}",
             "FNR": f"{p['false_negative_rate']:{RATE}}", "J": f"{p['j']:{RATE}}",
             "noise-corrected": "yes" if p["noise_correction"] else "no",
             "held-out success": interval(p["success_greedy"])} for p in summary["parent_quality"]]
    return Table("How good must a parent be?",
                 "A rule parent that calls a wrong answer right with probability FPR and a right one wrong with FNR "
                 "(rates), each verdict afresh; held-out greedy success (rate; IQM [95% CI] over seeds).", rows)


def _verdict(poi: dict[str, float]) -> str:
    """Better, worse, or no clear difference: whether the 95% interval of P(X > Y) excludes 1/2."""
    return "better" if poi["lo"] > 0.5 else "worse" if poi["hi"] < 0.5 else "no clear difference"


def world_model_variants(params: Params, summary: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The reference without a world model and the variants compared with it, in the order of
    ``evaluation.world_model`` (sweeps expanded); ``(None, {})`` when the comparison is missing."""
    comparison = summary.get("world_model") or {}
    variants = comparison.get("variants", {})
    return comparison.get("reference"), {n: variants[n] for n in params.expand(params.evaluation.world_model) if n in variants}


def world_model_table(params: Params, summary: dict[str, Any]) -> Table:
    """The reference without a world model, then each variant, per task and over all tasks."""
    reference, variants = world_model_variants(params, summary)
    rows = []
    for name, v in ({reference: None, **variants}.items() if reference else []):
        entry = summary["experiments"][name]
        tasks = list(params.experiments[name].tasks)
        if v is None:
            target = "none"
        elif v["target"] == "raw":
            target = "raw next state"
        else:
            switch = " and ".join(x for x in (f"{v['embedding_after_steps']:,} steps" if v["embedding_after_steps"] else "",
                                              f"success {v['embedding_after_success']:g}" if v["embedding_after_success"] else "") if x)
            target = f"embedding (raw until {switch})" if switch else "embedding"
        for task in [*tasks, "all_tasks"]:
            reached = (sum(entry["reached_0.9"].values()) if task == "all_tasks" else entry["reached_0.9"][task])
            runs = len(params.seeds_of(name)) * (len(tasks) if task == "all_tasks" else 1)
            row = {"experiment": name, "target": target,
                   "coef": "-" if v is None else f"{v['world_model_coef']:g}", "task": task,
                   "env steps to 90% (reached)": f"{interval(entry['steps_to_0.9_censored'][task], COUNT)} ({reached}/{runs})",
                   "held-out success": interval(entry["success_greedy"][task])}
            for key, label in (("p_steps", "fewer steps"), ("p_success", "higher success")):
                row[f"P({label} than {reference})"] = ("-" if v is None else
                                                       f"{interval({'value': v[key][task]['p'], **v[key][task]})} "
                                                       f"{_verdict(v[key][task])}")
            rows.append(row)
    return Table("Does the world model help?",
                 f"ppo's settings and budget with the world model changed; {reference}: none at all. Steps: env steps "
                 "until 90% rolling success on the full task, a run that never got there counted as its budget; "
                 "success: held-out greedy success (rate); both IQM [95% CI] over seeds. P: the probability that "
                 "a run of the variant beats a run of the reference (rliable; ties count half) [95% CI]: better or "
                 "worse when the interval excludes 0.5.", rows)


def world_model_findings(params: Params, summary: dict[str, Any]) -> list[str]:
    """Per task: the world-model variants that beat the reference (on steps to 90% or on held-out
    success, the interval of P above 0.5), or that none does (a null result)."""
    reference, variants = world_model_variants(params, summary)
    tasks = list(params.experiments[reference].tasks) if variants else []
    lines = []
    for task in tasks:
        wins = [f"{name} (P(fewer steps) = {v['p_steps'][task]['p']:.2f} [{v['p_steps'][task]['lo']:.2f}, "
                f"{v['p_steps'][task]['hi']:.2f}], P(higher success) = {v['p_success'][task]['p']:.2f} "
                f"[{v['p_success'][task]['lo']:.2f}, {v['p_success'][task]['hi']:.2f}])"
                for name, v in variants.items() if "better" in (_verdict(v["p_steps"][task]), _verdict(v["p_success"][task]))]
        lines.append(f"World model on {task}: " + (f"beats {reference}: " + "; ".join(wins) if wins else
                                                    f"no variant beats {reference} (a null result)") + ".")
    return lines


#: The curriculum comparison's measures (summary.json "curriculum"), as the report names them.
CURRICULUM_MEASURES = {"success_level2": ("held-out success, level 2", RATE, "higher"),
                       "success_all_levels": ("held-out success, mean of levels 0-2", RATE, "higher"),
                       "steps_to_0.9": ("env steps to 90%, level 2", COUNT, "fewer")}


def curriculum_table(summary: dict[str, Any]) -> Table:
    """Per measure and task (and over all tasks): the curriculum, the method, and P(curriculum better)."""
    c = summary.get("curriculum") or {}
    rows = []
    for measure, (label, fmt, better) in CURRICULUM_MEASURES.items() if c else ():
        entry = c[measure]
        for task, poi in entry["p"].items():
            rows.append({"measure": label, "task": task,
                         c["curriculum"]: interval(entry[c["curriculum"]][task], fmt),
                         c["method"]: interval(entry[c["method"]][task], fmt),
                         "better": better,
                         "P(curriculum better)": f"{interval({'value': poi['p'], **poi})} {_verdict(poi)}"})
    budget = ", ".join(f"{task} {steps:,}" for task, steps in c.get("budget", {}).items())
    return Table("Does the curriculum help?",
                 f"{c.get('method')} with the mastery curriculum (levels 0 -> 2, replaying easier levels) against "
                 f"{c.get('method')} itself: the same settings and env-step budget ({budget}). Held-out greedy success "
                 "(rate) on the full task and averaged over the levels; env steps until 90% rolling success on the full "
                 "task, a run that never got there counted as its budget; IQM [95% CI] over seeds. P: the probability "
                 "that a curriculum run beats a run without (higher success, fewer steps; rliable; ties count half) "
                 "[95% CI].", rows)


def curriculum_finding(summary: dict[str, Any]) -> list[str]:
    """Whether the curriculum earns its place: better on some measure over all tasks and worse on none."""
    c = summary.get("curriculum") or {}
    if not c:
        return []
    verdicts = {measure: _verdict(c[measure]["p"]["all_tasks"]) for measure in CURRICULUM_MEASURES}
    earns = "better" in verdicts.values() and "worse" not in verdicts.values()
    parts = [f"{CURRICULUM_MEASURES[m][0]} P = {c[m]['p']['all_tasks']['p']:.2f} [{c[m]['p']['all_tasks']['lo']:.2f}, "
             f"{c[m]['p']['all_tasks']['hi']:.2f}] ({v})" for m, v in verdicts.items()]
    return [f"Curriculum against {c['method']} at equal env steps, all tasks: " + "; ".join(parts)
            + (": it earns its place." if earns else ": it does not earn its place.")]


def findings(params: Params, summary: dict[str, Any], criteria: dict[str, Any], audit: dict[str, Any] | None) -> list[str]:
    """The MVP verdict, the probabilities of improvement and the LLM parent, one line each."""
    seeds_passed = sum(s["passed"] for s in criteria["seeds"].values())
    lines = [f"LOCKED MVP criteria ({criteria['experiment']}): {'pass' if criteria['passed'] else 'FAIL'} "
             f"on {seeds_passed}/{len(criteria['seeds'])} seeds.",
             *(f"P({params.evaluation.method} > {name}) = {poi['p']:.2f} [{poi['lo']:.2f}, {poi['hi']:.2f}]"
               for name, poi in summary["probability_of_improvement"].items())]
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
            verdict = ("no audit at its model, A and T" if e.get("prediction") is None else
                       f"{sum(e['inside'])}/{len(e['inside'])} seeds inside the predicted interval "
                       f"({'agrees' if e['agrees'] else 'DISAGREES'})")
            lines.append(f"{name} on {task} ({e['protocol']}): held-out success {interval(e['success_greedy'])}; {verdict}.")
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
    return [headline(params, summary), world_model_table(params, summary), curriculum_table(summary),
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
    held-out success of every experiment but the sweep points, the method's env steps to 90% per
    task, the MVP's criteria and regret, the LLM runs' agreement with their audit and the
    probabilities of improvement."""
    out: dict[str, float | int | None] = {"mvp_criteria_seeds_passed": sum(s["passed"] for s in criteria["seeds"].values())}
    method = params.evaluation.method
    for name, exp in params.experiments.items():
        entry = summary["experiments"][name]
        if exp.sweep is None:
            out[f"success.{name}"] = None if entry.get("missing") else round(entry["success_greedy"]["all_tasks"]["value"], 4)
    mvp = summary["experiments"][params.mvp_criteria.experiment]
    if not mvp.get("missing"):
        out["mvp_steps_to_0.9"] = round(mvp["steps_to_0.9_censored"]["all_tasks"]["value"], 1)
        out["mvp_failures_to_0.99"] = round(mvp["failures_to_0.99"]["all_tasks"]["value"], 1)
    if not summary["experiments"][method].get("missing"):
        for task in params.experiments[method].tasks:
            out[f"steps_to_0.9.{method}.{task}"] = round(summary["experiments"][method]["steps_to_0.9_censored"][task]["value"], 1)
    for name, poi in summary["probability_of_improvement"].items():
        out[f"p_improvement.{method}_over_{name}"] = round(poi["p"], 4)
    for name, v in (summary.get("world_model") or {}).get("variants", {}).items():
        out[f"p_fewer_steps_than_no_world_model.{name}"] = round(v["p_steps"]["all_tasks"]["p"], 4)
    for measure, entry in {k: v for k, v in (summary.get("curriculum") or {}).items() if k in CURRICULUM_MEASURES}.items():
        out[f"p_curriculum_over_method.{measure}"] = round(entry["p"]["all_tasks"]["p"], 4)
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
