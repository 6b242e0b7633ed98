"""The paper's figures, each drawn from result files alone (``wmil figure NAME``).

:data:`FIGURE_SPECS` names every figure, the result files it reads (``layout``'s paths; the
Snakemake rule ``figures`` declares them as inputs) and its caption (the report prints it beside
the figure's table). Intervals are rliable's 95% stratified-bootstrap intervals over seeds wherever
the summary has them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from wmil import layout
from wmil.config import TASK_NAMES, Params
from wmil.errors import MissingResult
from wmil.jobs import check_result
from wmil.results import (
    FAILURES_TO_MASTERY,
    REACHED_MASTERY,
    STEPS_TO_90,
    ExperimentSummary,
    Interval,
    StepsToMastery,
    Summary,
    complete_experiments,
    read_result,
    read_summary,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SUCCESS = "greedy success, fresh episodes of\nthe training problems (full task; IQM, 95% CI)"


@dataclass(frozen=True)
class FigureSpec:
    draw: Callable[[Context], Figure]
    inputs: tuple[Path, ...]  # under layout.RESULTS; ``{task}`` stands for each analysed task
    caption: str  # may name {success_window}: see :func:`success_window`

    def caption_for(self, params: Params) -> str:
        """The caption with the numbers it names taken from ``params``."""
        return self.caption.format(success_window=success_window(params))


def success_window(params: Params) -> int:
    """The episodes of the rolling success the learning curves show: the method's window (on its first task)."""
    method = params.evaluation.method
    return params.run_config(method, params.experiments[method].tasks[0]).training.success_window


@dataclass(frozen=True)
class Context:
    params: Params
    results: Path

    def csv(self, table: str) -> pd.DataFrame:
        """The tidy table ``table`` (one of ``layout.PLOT_TABLES``); :class:`MissingResult` where its job failed."""
        return pd.read_csv(check_result(layout.plot_table(table, layout.under(self.results, layout.PLOTS))))

    def json(self, path: Path) -> Any:
        """The JSON result at ``path`` (``layout``'s, moved under :attr:`results`); :class:`MissingResult`
        where its job failed."""
        return read_result(layout.under(self.results, path))

    def summary(self) -> Summary:
        return read_summary(layout.under(self.results, layout.SUMMARY))

    @staticmethod
    def experiment(summary: Summary, name: str) -> ExperimentSummary:
        """Experiment ``name`` of ``summary``; where one of its runs failed, :class:`MissingResult`
        naming that run's job (the figure becomes a placeholder rather than the job failing)."""
        entry = complete_experiments(summary).get(name)
        if entry is None:
            failed = next(m for m in summary["missing"] if m["experiment"] == name)
            raise MissingResult(Path(failed["result"]), {key: failed[key] for key in ("job", "reason", "log")})
        return entry

    @property
    def compared(self) -> list[str]:
        """The method, the curriculum variant and the baselines, in that order."""
        ev = self.params.evaluation
        return list(dict.fromkeys([ev.method, ev.curriculum, *ev.baselines]))

    @property
    def tasks(self) -> list[str]:
        return list(self.params.experiments[self.params.evaluation.method].tasks)

    @property
    def analysis_tasks(self) -> list[str]:
        """The tasks ``wmil analyze`` covers: those of the experiments compared in representation."""
        exps = self.params.experiments
        return [t for t in TASK_NAMES if any(t in exps[e].tasks for e in self.params.evaluation.representation)]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
    return plt, sns


def _steps_axis(ax) -> None:
    """Env steps in thousands, so that six-digit tick labels do not run into each other."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))


def _palette(names: list[str]) -> dict[str, tuple]:
    _, sns = _plt()
    return dict(zip(names, sns.color_palette("colorblind", len(names))))


def _interval_points(ax, labels: list[str], entries: Sequence[Interval], color, offset: float = 0.0, label: str | None = None):
    """IQM points with their 95% interval as error bars at x = 0..n-1 (+ offset)."""
    x = np.arange(len(labels)) + offset
    values = np.array([e["value"] for e in entries])
    err = np.array([[e["value"] - e["lo"] for e in entries], [e["hi"] - e["value"] for e in entries]])
    ax.errorbar(x, values, yerr=err, fmt="o", color=color, capsize=3, label=label)


def _km_points(ax, labels: list[str], entries: Sequence[StepsToMastery], color, offset: float = 0.0, label: str | None = None):
    """Kaplan-Meier medians with their 95% interval at x = 0..n-1 (+ offset); an open end (never
    reached by half the runs, or an unbounded interval) is drawn up to ``budget`` with a caret."""
    x = np.arange(len(labels)) + offset
    for i, e in enumerate(entries):
        hi = e["hi"] if e["hi"] is not None else e["budget"]
        lo = e["lo"] if e["lo"] is not None else hi
        median = e["median"] if e["median"] is not None else e["budget"]
        ax.errorbar([x[i]], [median], yerr=[[median - lo], [hi - median]], fmt="o" if e["median"] is not None else "^",
                    color=color, capsize=3, label=label if i == 0 else None)


def learning_curves(ctx: Context):
    plt, _ = _plt()
    table = ctx.csv("sample_efficiency")
    colors = _palette(ctx.compared)
    fig, axes = plt.subplots(1, len(ctx.tasks), figsize=(4.2 * len(ctx.tasks), 3.6), sharey=True, squeeze=False)
    for ax, task in zip(axes[0], ctx.tasks):
        for name in ctx.compared:
            rows = table[(table["experiment"] == name) & (table["task"] == task)]
            ax.plot(rows["env_steps"], rows["iqm"], color=colors[name], label=name)
            ax.fill_between(rows["env_steps"], rows["lo"], rows["hi"], color=colors[name], alpha=0.2, linewidth=0)
        ax.set(title=task, xlabel="env steps", ylim=(-0.02, 1.02))
        _steps_axis(ax)
    axes[0, 0].set_ylabel(f"rolling success on the full task\n(last {success_window(ctx.params)} episodes; IQM, 95% CI)")
    axes[0, -1].legend(loc="lower right", fontsize=8)
    return fig


def final_success(ctx: Context):
    plt, _ = _plt()
    summary = ctx.summary()
    colors = _palette(ctx.compared)
    labels = [*ctx.tasks, "all_tasks"]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(ctx.compared)
    for i, name in enumerate(ctx.compared):
        entries = [ctx.experiment(summary, name)["success_greedy"][t] for t in labels]
        _interval_points(ax, labels, entries, colors[name], offset=(i - (len(ctx.compared) - 1) / 2) * width, label=name)
    ax.set_xticks(range(len(labels)), [t.replace("_", " ") for t in labels])
    ax.set(ylabel=SUCCESS, ylim=(-0.05, 1.05))
    ax.legend(fontsize=8, ncol=len(ctx.compared), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return fig


def steps_to_90(ctx: Context):
    plt, _ = _plt()
    summary = ctx.summary()
    runs = ctx.csv("runs")
    learners = [n for n in ctx.compared if ctx.params.run_config(n, ctx.tasks[0]).algorithm.name != "random"]
    colors = _palette(ctx.compared)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(learners)
    for i, name in enumerate(learners):
        entries = [ctx.experiment(summary, name)[STEPS_TO_90][t] for t in ctx.tasks]
        label = f"{name} (reached: " + ", ".join(f"{e['reached']}/{e['runs']}" for e in entries) + ")"
        _km_points(ax, ctx.tasks, entries, colors[name], offset=(i - (len(learners) - 1) / 2) * width, label=label)
    method = runs[runs["experiment"] == ctx.params.evaluation.method]
    for i, task in enumerate(ctx.tasks):
        ax.hlines(method[method["task"] == task]["max_steps"].max(), i - 0.45, i + 0.45, color="grey", linestyle="--",
                  linewidth=1, label="budget" if i == 0 else None)
    ax.set_xticks(range(len(ctx.tasks)), ctx.tasks)
    ax.set(ylabel="env steps to 90% rolling success\non the full task (Kaplan-Meier median, 95% CI)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    return fig


def _curve_grid(ctx: Context, experiments: list[str], columns: list[tuple[str, str]]):
    plt, sns = _plt()
    curves = ctx.csv("curves")
    curves = curves[curves["experiment"].isin(experiments)]
    fig, axes = plt.subplots(len(columns), len(ctx.tasks), figsize=(4.2 * len(ctx.tasks), 2.8 * len(columns)),
                             sharex="col", squeeze=False)
    for row, (column, label) in enumerate(columns):
        for ax, task in zip(axes[row], ctx.tasks):
            data = curves[(curves["task"] == task) & curves[column].notna()]
            sns.lineplot(data=data, x="env_steps", y=column, hue="experiment", hue_order=experiments,
                         palette=_palette(experiments), errorbar=("ci", 95), n_boot=200, seed=0, ax=ax,
                         legend=row == 0 and task == ctx.tasks[-1])
            ax.set(xlabel="env steps" if row == len(columns) - 1 else "", ylabel=label if task == ctx.tasks[0] else "",
                   title=task if row == 0 else "")
            _steps_axis(ax)
    return fig


def training_dynamics(ctx: Context):
    return _curve_grid(ctx, ctx.compared, [("entropy", "policy entropy (nats)"),
                                           ("world_model_mse", "world-model MSE\n(raw next state)")])


def reward_components(ctx: Context):
    ev = ctx.params.evaluation
    weights = ctx.params.run_config(ev.method, ctx.tasks[0]).rewards
    return _curve_grid(ctx, [ev.method, ev.curriculum], [
        ("reward_goal", f"goal reward\n(per step, weight {weights.goal_weight:g})"),
        ("reward_pred", f"prediction reward\n(per step, weight {weights.pred_weight:g})"),
        ("reward_cons", f"consistency reward\n(per step, weight {weights.cons_weight:g})")])


def curriculum(ctx: Context):
    plt, sns = _plt()
    ev = ctx.params.evaluation
    curves = ctx.csv("curves")
    runs = ctx.csv("runs")
    fig, axes = plt.subplots(2, len(ctx.tasks), figsize=(4.2 * len(ctx.tasks), 6.2), squeeze=False)
    for ax, task in zip(axes[0], ctx.tasks):
        data = curves[(curves["experiment"] == ev.curriculum) & (curves["task"] == task)]
        for seed, rows in data.groupby("seed"):
            ax.step(rows["env_steps"], rows["level"] + 0.03 * seed, where="post", label=f"seed {seed}")
        ax.set(title=task, xlabel="env steps", ylabel="curriculum level" if task == ctx.tasks[0] else "",
               yticks=[0, 1, 2])
        _steps_axis(ax)
    axes[0, -1].legend(fontsize=7)
    levels = [c for c in runs.columns if c.startswith("success_greedy_level")]
    arms = [ev.curriculum_reference, ev.curriculum]
    long = runs[runs["experiment"].isin(arms)].melt(
        id_vars=["experiment", "task", "seed"], value_vars=levels, var_name="level", value_name="success")
    long["level"] = long["level"].str.removeprefix("success_greedy_level")
    for ax, task in zip(axes[1], ctx.tasks):
        sns.barplot(data=long[long["task"] == task], x="level", y="success", hue="experiment",
                    hue_order=arms, palette=_palette(arms),
                    errorbar=("ci", 95), n_boot=200, seed=0, ax=ax, legend=task == ctx.tasks[-1])
        if task == ctx.tasks[-1]:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set(ylim=(0, 1.05), xlabel="difficulty level",
               ylabel="greedy success, training problems\n(mean, 95% CI)" if task == ctx.tasks[0] else "")
    return fig


def tsne(ctx: Context):
    plt, sns = _plt()
    ev = ctx.params.evaluation
    # the method and its ablation without a world model; the probes compare every analysed variant
    sources = [ev.method, ev.world_model[ev.method], "untrained", "raw"]
    tasks = ctx.analysis_tasks
    fig, axes = plt.subplots(len(sources), len(tasks), figsize=(3.6 * len(tasks), 3.3 * len(sources)),
                             squeeze=False)
    for col, task in enumerate(tasks):
        report = ctx.json(layout.analysis_file(task))
        maps = {**{name: seeds[0] for name, seeds in report["runs"].items()}, **report["references"]}
        for row, source in enumerate(sources):
            ax = axes[row, col]
            if source not in maps:
                ax.set_axis_off()
                continue
            m = maps[source]
            sns.scatterplot(x=m["tsne"]["x"], y=m["tsne"]["y"], hue=m["tsne"]["labels"]["answer"], palette="tab20",
                            s=18, ax=ax, legend=False)
            seed = f" (seed {m['run_seed']})" if m["run_seed"] is not None else ""
            ax.set(xticks=[], yticks=[], title=f"{task}: {source}{seed}")
    fig.suptitle("t-SNE of state embeddings, coloured by the correct action", y=1.0)
    return fig


def probes(ctx: Context):
    plt, sns = _plt()
    ev = ctx.params.evaluation
    table = ctx.csv("representation")
    sources = [*ev.representation, "untrained", "raw"]
    tasks = ctx.analysis_tasks
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 4.0), sharey=True, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        data = table[table["task"] == task]
        sns.barplot(data=data, x="attribute", y="probe_accuracy", hue="source", hue_order=sources,
                    palette=_palette(sources), errorbar=("ci", 95), n_boot=200, seed=0, ax=ax,
                    legend=task == tasks[-1])
        chance = data.groupby("attribute", sort=False)["chance"].mean()
        ax.scatter(range(len(chance)), chance.to_numpy(), marker="_", s=400, color="black", zorder=5,
                   label="chance (majority class)")
        if task == tasks[-1]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set(title=task, xlabel="", ylim=(0, 1.05), ylabel="linear probe held-out accuracy" if task == tasks[0] else "")
        ax.tick_params(axis="x", rotation=45)
    return fig


def mvp_criteria(ctx: Context):
    plt, _ = _plt()
    report = ctx.json(layout.MVP_CRITERIA)
    crit = ctx.params.mvp_criteria
    seeds = list(report["seeds"])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    at = [report["seeds"][s][f"rolling_success_at_step_{crit.by_step}"] for s in seeds]
    final = [report["seeds"][s]["final_rolling_success"] for s in seeds]
    x = np.arange(len(seeds))
    axes[0].bar(x - 0.2, at, 0.4, label=f"at step {crit.by_step}")
    axes[0].bar(x + 0.2, final, 0.4, label="final")
    axes[0].axhline(crit.by_step_success, color="black", linestyle="--", linewidth=1, label="criterion")
    axes[0].axhline(report["seeds"][seeds[0]]["chance"], color="grey", linestyle=":", linewidth=1, label="chance")
    axes[0].set(ylabel="rolling success", ylim=(0, 1.05))
    for ax, key, label in ((axes[1], "entropy", "policy entropy (nats)"), (axes[2], "world_model_mse", "world-model MSE")):
        ax.bar(x - 0.2, [report["seeds"][s][f"{key}_first_quarter"] for s in seeds], 0.4, label="first quarter")
        ax.bar(x + 0.2, [report["seeds"][s][f"{key}_last_quarter"] for s in seeds], 0.4, label="last quarter")
        ax.set(ylabel=label)
    for ax in axes:
        ax.set_xticks(x, [s.split("/")[-1] for s in seeds])
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    verdict = "pass" if report["passed"] else "FAIL"
    fig.suptitle(f"LOCKED MVP criteria per seed ({report['experiment']}): {verdict}")
    return fig


def parent_quality(ctx: Context):
    plt, _ = _plt()
    summary = ctx.summary()
    points = summary["parent_quality"]
    tasks = [t for t in TASK_NAMES if any(p["task"] == t for p in points)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.9), sharey=True, squeeze=False)
    kinds = {"symmetric": ("o", "tab:blue"), "yes-biased (FPR > FNR)": ("^", "tab:orange"),
             "no-biased (FNR > FPR)": ("v", "tab:green"), "noise-corrected learner": ("D", "tab:purple")}

    def kind(p):
        if p["noise_correction"]:
            return "noise-corrected learner"
        if p["false_positive_rate"] > p["false_negative_rate"]:
            return "yes-biased (FPR > FNR)"
        return "no-biased (FNR > FPR)" if p["false_negative_rate"] > p["false_positive_rate"] else "symmetric"

    for ax, task in zip(axes[0], tasks):
        for label, (marker, color) in kinds.items():
            pts = [p for p in points if p["task"] == task and kind(p) == label]
            if pts:
                successes = [p["success_greedy"] for p in pts]
                ax.errorbar([p["j"] for p in pts], [x["value"] for x in successes], fmt=marker, color=color, capsize=2,
                            yerr=[[x["value"] - x["lo"] for x in successes], [x["hi"] - x["value"] for x in successes]],
                            label=f"rule parent, random errors: {label}")
        for name, by_task in summary["llm"].items():
            entry = by_task.get(task)
            if entry is None or (prediction := entry["prediction"]) is None:
                continue
            e, lo_hi = entry["success_greedy"], prediction["interval"]
            ax.errorbar([entry["audited_j"]], [e["value"]], yerr=[[e["value"] - e["lo"]], [e["hi"] - e["value"]]],
                        fmt="s", color="tab:red", capsize=3, markersize=7, zorder=5)
            ax.vlines(entry["audited_j"] + 0.03, *lo_hi, color="tab:red", linewidth=7, alpha=0.3)
            ax.annotate(f"{name} ({entry['protocol']})", (entry["audited_j"], e["value"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points", color="tab:red")
        ax.set(title=task, xlabel="parent informativeness J = TPR - FPR", xlim=(-0.3, 1.05), ylim=(-0.05, 1.05))
    axes[0, 0].set_ylabel(SUCCESS)
    axes[0, 0].errorbar([], [], fmt="s", color="tab:red", label="LLM parent at its audited J (shaded bar: predicted)")
    handles: dict[str, Any] = {}  # label -> its first artist, one legend entry for the whole figure
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), fontsize=8, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.12))
    return fig


def llm_audit(ctx: Context):
    plt, sns = _plt()
    audit = ctx.json(layout.LLM_AUDIT)
    protocols = list(audit["protocols"])
    fig, axes = plt.subplots(1, len(protocols) + 1, figsize=(4.2 * (len(protocols) + 1), 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": [3] * len(protocols) + [2]})
    for ax, protocol in zip(axes[0], protocols):
        levels = audit["protocols"][protocol]["by_task_level"]
        j = pd.DataFrame({task: {int(lv): b["j"] for lv, b in by.items()} for task, by in levels.items()}).T
        sns.heatmap(j, annot=True, fmt=".2f", vmin=-1, vmax=1, cmap="RdBu", ax=ax, cbar=protocol == protocols[-1],
                    cbar_kws={"label": "J = TPR - FPR"})
        by = audit["protocols"][protocol]
        ax.set(xlabel="difficulty level", ylabel="", title=f"{protocol}: {by['model']} (A={by['num_actions']})")
        ax.tick_params(axis="y", rotation=0)
    requests = [audit["protocols"][p]["overall"]["requests"] for p in protocols]
    ax = axes[0, -1]
    ax.bar(protocols, requests, color="grey")
    ax.set(ylabel="requests for the whole audit (cold cache)", title="cost")
    ax.set_yscale("log")
    fig.suptitle("LLM parent audit: every state with every action", y=1.02)
    return fig


def regret(ctx: Context):
    plt, sns = _plt()
    runs = ctx.csv("runs")
    ev = ctx.params.evaluation
    names = [n for n in ctx.params.expand(ev.noise)
             if n in set(runs["experiment"]) and ctx.params.experiments[n].tasks == ("pattern_echo",)]
    data = runs[runs["experiment"].isin(names)]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sns.stripplot(data=data, x="experiment", y=FAILURES_TO_MASTERY, hue=REACHED_MASTERY, order=names,
                  palette={True: "tab:blue", False: "tab:orange"}, size=6, ax=ax)
    ideal = data["ideal_failures"].dropna()
    if len(ideal):
        ax.axhline(ideal.iloc[0], color="black", linestyle="--", linewidth=1,
                   label=f"ideal trial-and-error learner ({ideal.iloc[0]:g})")
    ax.set(yscale="log", xlabel="", ylabel="failed episodes until 99% rolling success\n(one point per seed; "
           "not reached: all failures)")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend(title="reached 99%", fontsize=8)
    return fig


def probability_of_improvement(ctx: Context):
    plt, _ = _plt()
    poi = ctx.summary()["probability_of_improvement"]
    pairs = [(n, t) for n in poi for t in poi[n]]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(pairs) + 1.5))
    y = np.arange(len(pairs))
    ax.errorbar([poi[n][t]["p"] for n, t in pairs], y, capsize=3, fmt="o",
                xerr=[[poi[n][t]["p"] - poi[n][t]["lo"] for n, t in pairs], [poi[n][t]["hi"] - poi[n][t]["p"] for n, t in pairs]])
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, [f"{ctx.params.evaluation.method} > {n}: {t.replace('_', ' ')}" for n, t in pairs])
    ax.invert_yaxis()
    ax.set(xlim=(-0.02, 1.02), xlabel="P(method's run beats the baseline's run), 95% CI")
    return fig


def rule(ctx: Context):
    """Training-problem against held-out-problem success per task: each experiment at the method's
    settings, the tabular reference and chance."""
    plt, _ = _plt()
    rule = ctx.summary()["rule"]
    tasks = list(rule)
    names = list(dict.fromkeys(n for t in tasks for n in rule[t]["experiments"])) + ["tabular"]
    colors = _palette(names)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        entries = {**rule[task]["experiments"], **({"tabular": rule[task]["tabular"]} if "tabular" in rule[task] else {})}
        width = 0.8 / len(entries)
        for i, (name, e) in enumerate(entries.items()):
            _interval_points(ax, ["training problems", "held-out problems"], [e["training"], e["held_out"]], colors[name],
                             offset=(i - (len(entries) - 1) / 2) * width, label=name)
        ax.axhline(rule[task]["chance"], color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_xticks([0, 1], ["training problems", "held-out problems"])
        ax.set(title=task, ylim=(-0.05, 1.05),
               ylabel="greedy episode success\n(full task; IQM, 95% CI)" if task == tasks[0] else "")
    axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def world_model(ctx: Context):
    plt, _ = _plt()
    summary = ctx.summary()
    comparison = summary["world_model"]
    if "variants" not in comparison:  # every pair lost an arm: the placeholder names the first failed run
        for variant, reference in ctx.params.evaluation.world_model.items():
            for name in (*ctx.params.expand([variant]), reference):
                ctx.experiment(summary, name)
        raise ValueError("evaluation.world_model: no variant to compare")
    variants = comparison["variants"]
    ordered = [n for n in ctx.params.expand(list(ctx.params.evaluation.world_model)) if n in variants]
    names = list(dict.fromkeys(x for n in ordered for x in (variants[n]["reference"], n)))  # each reference before its variants
    colors = _palette(names)
    labels = [*ctx.tasks, "all_tasks"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        entry = ctx.experiment(summary, name)
        offset = (i - (len(names) - 1) / 2) * width
        tasks = [t for t in ctx.tasks if t in entry[STEPS_TO_90]]
        at = [ctx.tasks.index(t) for t in tasks]
        steps = [entry[STEPS_TO_90][t] for t in tasks]
        for x, e in zip(at, steps):
            _km_points(axes[0], ["x"], [e], colors[name], offset=x + offset, label=None)
        reached = ", ".join(f"{e['reached']}/{e['runs']}" for e in steps)
        axes[0].plot([], [], "o", color=colors[name], label=f"{name} (reached: {reached})")
        if name in variants:
            p = variants[name]["p_steps"]
            for t in (t for t in labels if t in p):
                _interval_points(axes[1], ["x"], [{"value": p[t]["p"], **p[t]}], colors[name], offset=labels.index(t) + offset)
    method = ctx.params.evaluation.method
    for i, task in enumerate(ctx.tasks):
        axes[0].hlines(ctx.params.run_config(method, task).training.max_steps, i - 0.45, i + 0.45, color="grey",
                       linestyle="--", linewidth=1, label="budget" if i == 0 else None)
    axes[0].set_xticks(range(len(ctx.tasks)), ctx.tasks)
    axes[0].set(ylabel="env steps to 90% rolling success\non the full task (Kaplan-Meier median, 95% CI)")
    axes[0].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    axes[1].axhline(0.5, color="grey", linestyle="--", linewidth=1)
    axes[1].set_xticks(range(len(labels)), [t.replace("_", " ") for t in labels])
    axes[1].set(ylim=(-0.02, 1.02), ylabel="P(variant needs fewer steps\nthan its reference) (95% CI)")
    return fig


#: Every figure, in the order the report shows them.
FIGURE_SPECS: dict[str, FigureSpec] = {
    "mvp_criteria": FigureSpec(mvp_criteria, (layout.MVP_CRITERIA,),
        "The plan's four LOCKED MVP criteria on every seed: success above chance and above the threshold by the "
        "step named, falling entropy and falling world-model error."),
    "learning_curves": FigureSpec(learning_curves, (layout.plot_table("sample_efficiency"),),
        "Rolling success (last {success_window} episodes) against env steps per task: IQM over seeds with pointwise "
        "95% stratified-bootstrap intervals."),
    "final_success": FigureSpec(final_success, (layout.SUMMARY,),
        "Greedy episode success on fresh episodes of the training problems of the full task (level 2): IQM over seeds "
        "with 95% intervals, per task and over all tasks."),
    "steps_to_90": FigureSpec(steps_to_90, (layout.SUMMARY, layout.plot_table("runs")),
        "Env steps until the rolling success first reached 90%: Kaplan-Meier median with its 95% interval, a run that "
        "never did censored at its task's budget (dashed); a caret: fewer than half got there (how many did is in the "
        "legend)."),
    "probability_of_improvement": FigureSpec(probability_of_improvement, (layout.SUMMARY,),
        "Probability that a run of the method beats a run of each baseline on success (rliable), per task and over "
        "all tasks, with 95% intervals."),
    "rule": FigureSpec(rule, (layout.SUMMARY,),
        "Does the baby learn the rule? Greedy success on fresh episodes of the problems each run trained on and on the "
        "problems its split held out (IQM over seeds, 95% CI), beside a lookup table that learns from the same "
        "verdicts (memorises, never generalises) and chance."),
    "world_model": FigureSpec(world_model, (layout.SUMMARY,),
        "What does the world model add? Left: env steps to 90% rolling success of each world-model variant and "
        "control and of the runs without one (Kaplan-Meier median, 95% CI, censored at the budget). Right: the "
        "probability that a run of each variant needs fewer steps than a run of its reference without a world model "
        "(rliable, 95% CI), per task and over all tasks."),
    "probes": FigureSpec(probes, (layout.plot_table("representation"),),
        "Held-out accuracy of linear probes that read each state attribute off the embedding (mean over seeds, 95% "
        "CI); black bars mark chance (the majority class)."),
    "tsne": FigureSpec(tsne, (layout.analysis_file("{task}"),),  # one per analysed task
        "t-SNE maps of the state embeddings of a fixed grid of states, coloured by the correct action: the method, "
        "its ablation without a world model, an untrained model and the raw one-hot states."),
    "curriculum": FigureSpec(curriculum, (layout.plot_table("curves"), layout.plot_table("runs")),
        "Top: the curriculum's level over training, per seed. Bottom: greedy success on the training problems per "
        "difficulty level, with the curriculum and without it at the same budget and schedule."),
    "regret": FigureSpec(regret, (layout.plot_table("runs"),),
        "Failed episodes until 99% rolling success (one point per seed; resolution one curve row), against an ideal "
        "trial-and-error learner's expected count."),
    "parent_quality": FigureSpec(parent_quality, (layout.SUMMARY,),
        "How good must a parent be? Success on the training problems against the parent's informativeness J = TPR - "
        "FPR: a rule parent erring at random with known rates (symmetric, yes-biased, no-biased; and a learner that "
        "corrects for them), and every LLM run placed at its audited J, with the interval its per-state audit "
        "predicts."),
    "llm_audit": FigureSpec(llm_audit, (layout.LLM_AUDIT,),
        "Each judge protocol of the bundled LLM against the rules, every state of a level with every action: J = TPR "
        "- FPR per task and level, and the requests each protocol needs."),
    "training_dynamics": FigureSpec(training_dynamics, (layout.plot_table("curves"),),
        "Policy entropy and the world model's raw next-state MSE over training (mean over seeds, 95% CI)."),
    "reward_components": FigureSpec(reward_components, (layout.plot_table("curves"),),
        "The reward vector's components per step over training: goal (the parent's verdict), prediction (exp(-MSE) "
        "x scale) and consistency (logged, weight 0)."),
}


def placeholder(name: str, missing: MissingResult):
    """What a figure shows when a result it needs is missing: which one, the job and its log."""
    plt, _ = _plt()
    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.set_axis_off()
    r = missing.record
    ax.text(0.5, 0.5, f"{name}: not drawn, a result it needs is missing\n{missing.path}: job '{r['job']}' "
            f"failed ({r['reason']})\nlog: {r['log']}", ha="center", va="center", fontsize=10, wrap=True)
    return fig


def draw(name: str, params: Params, results: Path, out: Path) -> None:
    """Draw figure ``name`` from the files under ``results`` and save it (PNG, atomically)."""
    from wmil import atomic

    if name not in FIGURE_SPECS:
        raise ValueError(f"unknown figure {name!r}; allowed: {sorted(FIGURE_SPECS)}")
    plt, _ = _plt()
    np.random.seed(0)  # seaborn's strip-plot jitter draws from NumPy's global generator
    try:
        fig = FIGURE_SPECS[name].draw(Context(params, Path(results)))
    except MissingResult as missing:
        fig = placeholder(name, missing)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic.write_bytes(out, buffer.getvalue())
