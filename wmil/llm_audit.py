"""``wmil llm-audit``: how often the LLM parent's verdicts agree with the rules.

For every task x level, ``llm_audit.pairs_per_level`` (state, action) pairs are drawn (seeded by
``llm_audit.seed``): states are fresh episodes of problems sampled uniformly from the level's
table, half of them paired with the correct action and half with a uniformly random wrong one. The
LLM (the ``parent.llm`` settings, action space and episode length of experiment
``llm_audit.experiment``, applied to every task) judges each pair; an answer still invalid after
its retries is an outcome of its own (``invalid``), never an error. With temperature 0 and a warm
cache the verdicts, and so every agreement figure, are reproducible.

Output (JSON, every ``<block>`` below has the same layout)::

    {
      "experiment": str, "model": str, "endpoint": str ("local" = the bundled server),
      "roles": str, "pairs_per_level": int, "seed": int,
      "error_rate": float,            # 1 - overall accuracy (the LLM's effective flip rate)
      "overall": <block>,
      "by_task": {task: <block>},
      "by_task_level": {task: {"0": <block>, "1": <block>, "2": <block>}},
      "requests": {...}               # ParentLLM.stats() summed over the tasks (this run only)
    }

    <block> = {
      "pairs": int,
      "accuracy": float,              # share of pairs where the LLM's verdict is the rule's
      "cohen_kappa": float | null,    # rule vs LLM verdicts, invalid as a third label (null: undefined)
      "invalid_rate": float,          # share of pairs with no valid verdict
      "confusion": {"rule_right": {"llm_right": int, "llm_wrong": int, "llm_invalid": int},
                    "rule_wrong": {"llm_right": int, "llm_wrong": int, "llm_invalid": int}},
      "latency_p50_s": float, "latency_p95_s": float,  # per pair, of the request that answered it
                                      # (its recorded latency when the cache answered)
      "cache_hit_rate": float         # share of pairs answered by the persistent cache
    }
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score

from wmil.config import TASK_NAMES, Params
from wmil.envs.tasks import NUM_LEVELS, make_task
from wmil.parents.llm import Outcome, ParentLLM
from wmil.parents.llm_server import LocalLLMServer

RIGHT, WRONG, INVALID = 1, 0, -1
_LABEL = {RIGHT: "right", WRONG: "wrong", INVALID: "invalid"}


def audit_pairs(task, level: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh states of ``level`` (``LongTensor (n, num_slots)``) and actions ``(n,)``: the
    first ``n // 2`` correct, the rest a uniformly random wrong action."""
    table = task.problems(level)
    states = task.initial_states(table[torch.randint(len(table), (n,), generator=generator)])
    answers = task.answer(states)
    shift = torch.randint(1, task.num_actions, (n,), generator=generator)  # never 0: a wrong action
    wrong = (answers + shift) % task.num_actions
    right = torch.arange(n) < n // 2
    return states, torch.where(right, answers, wrong)


def agreement(rule: np.ndarray, llm: np.ndarray, outcomes: list[Outcome]) -> dict[str, Any]:
    """The ``<block>`` of the module docstring for rule verdicts ``rule`` (1/0), LLM verdicts
    ``llm`` (1/0/-1) and the outcomes that gave them."""
    confusion = {f"rule_{_LABEL[r]}": {f"llm_{_LABEL[v]}": int(((rule == r) & (llm == v)).sum())
                                       for v in (RIGHT, WRONG, INVALID)} for r in (RIGHT, WRONG)}
    with warnings.catch_warnings():  # one label only (e.g. every verdict right): kappa is undefined
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohen_kappa_score(rule, llm, labels=[RIGHT, WRONG, INVALID]))
    latencies = np.array([o.latency_s for o in outcomes])
    return {
        "pairs": len(rule),
        "accuracy": float((rule == llm).mean()),
        "cohen_kappa": None if math.isnan(kappa) else kappa,
        "invalid_rate": float((llm == INVALID).mean()),
        "confusion": confusion,
        "latency_p50_s": float(np.percentile(latencies, 50)),
        "latency_p95_s": float(np.percentile(latencies, 95)),
        "cache_hit_rate": float(np.mean([o.cached for o in outcomes])),
    }


def _seed(seed: int, task_index: int, level: int) -> int:
    """Independent streams per task x level, so that one sample does not shift another."""
    return int(np.random.SeedSequence([seed, task_index, level]).generate_state(1)[0])


def run_llm_audit(params: Params) -> dict[str, Any]:
    """The audit report (layout in the module docstring)."""
    torch.set_num_threads(1)
    audit = params.llm_audit
    # The audit applies no policy (an invalid verdict is a label of its own), but caches invalid
    # answers as a fallback run does, so that a warm rerun is offline and identical.
    llm = dataclasses.replace(params.run_config(audit.experiment).parent.llm, on_invalid="zero")
    server = LocalLLMServer() if llm.base_url == "" else None  # shared; started at the first cache miss
    report: dict[str, Any] = {
        "experiment": audit.experiment, "model": llm.model, "endpoint": llm.base_url or "local",
        "roles": llm.roles, "pairs_per_level": audit.pairs_per_level, "seed": audit.seed,
        "by_task": {}, "by_task_level": {}, "requests": {}}
    everything: list[tuple[np.ndarray, np.ndarray, list[Outcome]]] = []
    try:
        for task_index, name in enumerate(TASK_NAMES):
            env = params.run_config(audit.experiment, None, 0, {"env": {"task": name}}).env
            task = make_task(name, env.num_actions, env.episode_length)
            with ParentLLM(task, llm, server=server) as parent:
                per_task = []
                report["by_task_level"][name] = {}
                for level in range(NUM_LEVELS):
                    g = torch.Generator().manual_seed(_seed(audit.seed, task_index, level))
                    states, actions = audit_pairs(task, level, audit.pairs_per_level, g)
                    outcomes = parent.resolve([parent.reward_request(s, int(a)) for s, a in zip(states, actions)])
                    rule = (actions == task.answer(states)).long().numpy()
                    verdicts = np.array([INVALID if o.value is None else int(o.value) for o in outcomes])
                    report["by_task_level"][name][str(level)] = agreement(rule, verdicts, outcomes)
                    per_task.append((rule, verdicts, outcomes))
                report["by_task"][name] = agreement(*_concat(per_task))
                everything += per_task
                for key, value in parent.stats().items():
                    if not key.startswith("latency"):  # percentiles do not add up; the blocks have them
                        report["requests"][key] = report["requests"].get(key, 0) + value
    finally:
        if server is not None:
            server.stop()
    report["overall"] = agreement(*_concat(everything))
    report["error_rate"] = 1.0 - report["overall"]["accuracy"]
    return report


def _concat(parts: list[tuple[np.ndarray, np.ndarray, list[Outcome]]]) -> tuple[np.ndarray, np.ndarray, list[Outcome]]:
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [o for p in parts for o in p[2]])
