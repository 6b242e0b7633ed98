"""``wmil llm-audit``: how well each judge protocol's verdicts agree with the rules.

For every protocol of ``llm_audit.protocols`` and every task x level, problems of the level are
judged with *every* action: up to ``llm_audit.states_per_level`` of them under the protocols that
ask once per (state, action), up to ``llm_audit.solve_states_per_level`` under ``solve`` (one
request answers every action of a state, so it can afford every state), every one under
``program`` (the rule as code: one request per task answers them all); all of them when the table
is smaller, else a sample seeded by ``llm_audit.seed``, with the ``parent.llm``
settings, action space and episode length of experiment ``llm_audit.experiment`` for ``program``,
of ``llm_audit.per_state_experiment`` for the per-state protocols (a per-state request to the 1.5B
model that writes programs takes 5-20 s here); each protocol's block names its experiment, model,
action space and episode length, and a run's prediction reads only a block of its own settings.
Under ``program`` the audit also asks every task's ``in_level`` programs (what ``roles: all``
draws problems from) and reports the problems each accepts against the level's table. An answer still
invalid after its retries is an outcome of its own (``invalid``), never an error. With temperature
0 and a warm cache every figure here is reproducible; seconds are kept apart (``--timing``)
because they are not.

Two views of the errors, because they teach differently:

* **pooled** (random errors): TPR = P(verdict right | the action is right), FPR = P(verdict right |
  the action is wrong), J = TPR - FPR. A learner's expected reward gap between a right and a wrong
  answer is proportional to J; a parent whose verdicts err afresh each time is predicted by the
  parent-quality sweep at that J.
* **per state** (systematic errors: at temperature 0 a state always gets the same verdicts, and
  the baby learns whatever they reward). For each state, with ``k`` actions approved: no signal
  (``k = 0`` or ``k = A``) leaves chance, ``1/A``; the right action among ``k`` approved ones is
  learnt with probability ``1/k`` (surely when ``k = 1``, possibly not when ``k > 1``); a state
  whose right action is not approved is learnt wrong (0). The ``ceiling`` block averages these
  over the level's problems: ``mean`` (expected greedy success), the range ``[lo, hi]`` between
  what the baby learns for sure and what it can learn at best, and ``pick_variance``, the mean
  of ``p (1 - p)`` over the problems, ``p`` each one's chance: where the verdicts leave a choice,
  which action a seed's greedy policy settles on is a coin it tosses once per problem.
* **per episode** (what a run's held-out success is): an episode succeeds when every answer is
  right, and where the task moves its problem on (SequenceNext's continuations) an episode passes
  through states outside the level's table. The ``episode`` block of a task x level follows each
  audited problem through ``episode_length`` steps by the rules' transitions (held-out evaluation
  judges by the rules), judges the problems it reaches that are not in the table too, and
  multiplies the per-state ceilings of the distinct problems on its way: ``episode.ceiling`` is
  what each run is predicted by. On tasks whose problem stays put it equals ``ceiling``.

Output (JSON)::

    {"experiment", "model", "endpoint" ("local" = the bundled server), "roles", "calibration",
     "num_actions", "states_per_level", "seed",
     "protocols": {protocol: {"experiment", "model", "num_actions", "episode_length", "overall": <block>, "by_task": {task: <block>},
                              "by_task_level": {task: {"0": <block>, "1": ..., "2": ...}},
                              "programs": {task: <programs>}}}}      # program only

    <programs> = {"answer": source | null, "responses": [raw text, ...] (the refused first one too),
                  "in_level": {"0": {"source", "responses", "accepted", "problems", "precision", "recall"}, ...}}

    <block> = {"states", "pairs", "tpr", "fpr", "j", "accuracy", "balanced_accuracy",
               "cohen_kappa" (null: undefined), "invalid_rate",
               "confusion": {"rule_right": {"llm_right", "llm_wrong", "llm_invalid"}, "rule_wrong": {...}},
               "ceiling": {"mean", "lo", "hi", "pick_variance"}, "problems" (in the level's table),
               "requests", "prompt_tokens", "completion_tokens",   # what a cold cache costs
               "per_state": [{"state", "answer", "approved", "invalid"}],  # task x level blocks only, and:
               "episode": {"states" (distinct problems the episodes reach), "continuations" (of them, outside
                           the audited problems), "ceiling": {"mean", "lo", "hi", "pick_variance"} (per
                           audited problem's episode), "requests" (more than the block's),
                           "per_state": [...] (the continuations),
                           "per_problem": [{"problem", "ceiling": [mean, lo, hi]}] (each audited problem's
                           episode ceiling: a run that trains on part of them is predicted by that part)}}
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, cast

import numpy as np
import torch
from sklearn.metrics import cohen_kappa_score

from wmil.config import TASK_NAMES, Params
from wmil.evaluation.stats import pick_variance
from wmil.parents.llm.answers import INVALID, RIGHT, WRONG, Outcome
from wmil.parents.llm.parent import ParentLLM
from wmil.parents.llm.programs import ANSWER, IN_LEVEL
from wmil.parents.llm.protocols import PROTOCOLS
from wmil.parents.llm.server import LocalLLMServer
from wmil.seeding import audit_seed
from wmil.tasks.rules import NUM_LEVELS, Task, make_task
from wmil.tasks.state import State

_LABEL = {RIGHT: "right", WRONG: "wrong", INVALID: "invalid"}


def audit_states(task: Task, level: int, limit: int, generator: torch.Generator) -> torch.Tensor:
    """The level's problems as fresh states ``LongTensor (m, num_slots)``: all of them when there
    are at most ``limit``, else ``limit`` drawn without replacement."""
    table = task.problems(level)
    if len(table) > limit:
        table = table[torch.randperm(len(table), generator=generator)[:limit].sort().values]
    return task.initial_states(table)


def episode_problems(task: Task, problems: torch.Tensor) -> torch.Tensor:
    """The problem slots an episode from each of ``problems`` ``(m, num_problem_slots)`` holds at
    each of its ``episode_length`` steps under the rules' transitions, ``LongTensor (m, T,
    num_problem_slots)``; the answer given never changes them (a wrong one is corrected)."""
    steps = [problems]
    for _ in range(task.episode_length - 1):
        states = task.initial_states(steps[-1])
        answers = task.answer(states)
        steps.append(task.next_problem(states, answers, answers))
    return torch.stack(steps, 1)


def state_ceiling(verdicts: np.ndarray, answer: int) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` greedy success a baby learns on one state from its verdicts on every
    action ``(A,)`` (1 right, 0 wrong, -1 invalid), as the module docstring says."""
    approved = verdicts == RIGHT
    k, A = int(approved.sum()), len(verdicts)
    if k in (0, A):
        return 1 / A, 1 / A, 1 / A
    if not approved[answer]:
        return 0.0, 0.0, 0.0
    return 1 / k, float(k == 1), 1.0


def block(rule: np.ndarray, llm: np.ndarray, outcomes: list[Outcome], ceilings: np.ndarray,
          states: int, problems: int) -> dict[str, Any]:
    """The ``<block>`` for pairs with rule verdicts ``rule`` (1/0), LLM verdicts ``llm`` (1/0/-1),
    the distinct ``outcomes`` that gave them and per-state ``ceilings (states, 3)``."""
    confusion = {f"rule_{_LABEL[r]}": {f"llm_{_LABEL[v]}": int(((rule == r) & (llm == v)).sum())
                                       for v in (RIGHT, WRONG, INVALID)} for r in (RIGHT, WRONG)}
    with warnings.catch_warnings():  # one label only (e.g. every verdict right): kappa is undefined
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(cohen_kappa_score(rule, llm, labels=[RIGHT, WRONG, INVALID]))
    tpr = float((llm[rule == RIGHT] == RIGHT).mean())
    fpr = float((llm[rule == WRONG] == RIGHT).mean())
    mean, lo, hi = ceilings.mean(0).tolist()
    return {
        "states": states, "problems": problems, "pairs": len(rule), "tpr": tpr, "fpr": fpr, "j": tpr - fpr,
        "accuracy": float((rule == llm).mean()),
        "balanced_accuracy": (tpr + 1 - fpr) / 2,
        "cohen_kappa": None if math.isnan(kappa) else kappa,
        "invalid_rate": float((llm == INVALID).mean()),
        "confusion": confusion,
        "ceiling": {"mean": mean, "lo": lo, "hi": hi, "pick_variance": pick_variance(ceilings[:, 0])},
        "requests": len(outcomes),
        "prompt_tokens": sum(o.prompt_tokens for o in outcomes),
        "completion_tokens": sum(o.completion_tokens for o in outcomes),
    }


def judge_states(parent: ParentLLM, states: torch.Tensor) -> dict[str, Any]:
    """Every action judged in each of ``states`` ``(n, num_slots)``: the rule's and the LLM's
    verdicts on the ``n * A`` pairs, the outcomes that gave them, and per state its answer, LLM
    verdicts ``(n, A)`` and ceiling ``(n, 3)``."""
    task, A = parent.task, parent.task.num_actions
    actions = torch.arange(A).repeat(len(states))
    verdicts, outcomes, _ = parent.judge(states.repeat_interleave(A, 0), actions)
    answers = task.answer(states)
    llm = verdicts.numpy()
    per_state = llm.reshape(len(states), A)
    return {"rule": (actions == answers.repeat_interleave(A)).long().numpy(), "llm": llm, "outcomes": outcomes,
            "answers": answers, "per_state": per_state,
            "ceilings": np.array([state_ceiling(v, int(a)) for v, a in zip(per_state, answers)]).reshape(-1, 3)}


def per_state_list(task: Task, states: torch.Tensor, judged: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"state": State.from_tensor(task, s).to_prompt(), "answer": int(a),
             "approved": [int(x) for x in np.flatnonzero(v == RIGHT)], "invalid": bool((v == INVALID).any())}
            for s, a, v in zip(states, judged["answers"], judged["per_state"])]


def episode_block(parent: ParentLLM, problems: torch.Tensor, judged: dict[str, Any]) -> dict[str, Any]:
    """The ``episode`` block: each audited problem's episode ceiling, the product of the per-state
    ceilings of the distinct problems it passes through (the ones outside ``problems`` judged here)."""
    task = parent.task
    trajectories = episode_problems(task, problems)
    known = {tuple(p): c for p, c in zip(problems.tolist(), judged["ceilings"])}
    new = list(dict.fromkeys(tuple(p) for p in trajectories.flatten(0, 1).tolist() if tuple(p) not in known))
    out: dict[str, Any] = {"states": len(known) + len(new), "continuations": len(new), "requests": 0, "per_state": []}
    if new:
        states = task.initial_states(torch.tensor(new))
        more = judge_states(parent, states)
        known.update(zip(new, more["ceilings"]))
        seen = {id(o) for o in judged["outcomes"]}  # a program's one answer serves every state
        out.update(requests=sum(id(o) not in seen for o in more["outcomes"]), per_state=per_state_list(task, states, more))
    chances = np.array([np.prod([known[p] for p in dict.fromkeys(map(tuple, path))], axis=0)
                        for path in trajectories.tolist()])
    mean, lo, hi = chances.mean(0).tolist()
    out["ceiling"] = {"mean": mean, "lo": lo, "hi": hi, "pick_variance": pick_variance(chances[:, 0])}
    out["per_problem"] = [{"problem": p, "ceiling": c} for p, c in zip(problems.tolist(), chances.tolist())]
    return out


def audit_level(parent: ParentLLM, level: int, limit: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The block of one task x level, and its raw parts for pooling: ``(block, parts)``."""
    task = parent.task
    states = audit_states(task, level, limit, torch.Generator().manual_seed(seed))
    judged = judge_states(parent, states)
    problems = len(task.problems(level))
    result = block(judged["rule"], judged["llm"], judged["outcomes"], judged["ceilings"], len(states), problems)
    result["per_state"] = per_state_list(task, states, judged)
    result["episode"] = episode_block(parent, states[:, : task.num_problem_slots], judged)
    return result, {k: judged[k] for k in ("rule", "llm", "outcomes", "ceilings")} | {"states": len(states),
                                                                                      "problems": problems}


def _pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
    distinct = {id(o): o for p in parts for o in p["outcomes"]}  # a request shared by levels counts once
    return block(np.concatenate([p["rule"] for p in parts]), np.concatenate([p["llm"] for p in parts]),
                 list(distinct.values()), np.concatenate([p["ceilings"] for p in parts]),
                 sum(p["states"] for p in parts), sum(p["problems"] for p in parts))


def audit_programs(parent: ParentLLM) -> dict[str, Any]:
    """The ``<programs>`` block of one task: its answer program and, per level, what its
    ``in_level`` program accepts against the level's table (precision, recall)."""
    task, programs = parent.task, parent.programs
    if programs is None:
        raise ValueError(f"audit_programs: the parent's protocol is {parent.config.protocol!r}, not program")
    programs.answer_table()
    answer = programs.outcomes[ANSWER]
    out: dict[str, Any] = {"answer": answer[-1].value, "responses": [o.raw for o in answer], "in_level": {}}
    for level in range(NUM_LEVELS):
        made = programs.level_problems(level)
        outcomes = programs.outcomes[f"{IN_LEVEL}/{level}"]
        true = set(map(tuple, task.problems(level).tolist()))
        accepted = set() if made is None else set(map(tuple, made.tolist()))
        hits = len(accepted & true)
        out["in_level"][str(level)] = {
            "source": outcomes[-1].value, "responses": [o.raw for o in outcomes], "accepted": len(accepted),
            "problems": len(true), "precision": hits / len(accepted) if accepted else None, "recall": hits / len(true)}
    return out


def run_llm_audit(params: Params) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(report, timing)``: the report (layout in the module docstring) and, apart, the seconds
    the requests took (as recorded when they were sent) per protocol x task."""
    audit = params.llm_audit
    base = params.run_config(audit.experiment)
    servers: dict[str, LocalLLMServer] = {}  # one per bundled model, each started at its first cache miss
    report: dict[str, Any] = {
        "experiment": audit.experiment, "model": base.parent.llm.model, "endpoint": base.parent.llm.base_url or "local",
        "roles": base.parent.llm.roles, "calibration": base.parent.llm.calibration,
        "num_actions": base.env.num_actions, "states_per_level": audit.states_per_level, "seed": audit.seed,
        "protocols": {}}
    timing: dict[str, Any] = {}
    try:
        for protocol in audit.protocols:
            experiment = audit.experiment if protocol == "program" else audit.per_state_experiment
            run = params.run_config(experiment)
            # The audit applies no policy (an invalid verdict is a label of its own), but caches invalid
            # answers as a fallback run does, so that a warm rerun is offline and identical.
            # (params typed llm_audit.protocols as str, and checked each against LLMConfig.protocol's choices)
            config = dataclasses.replace(run.parent.llm, protocol=cast(Any, protocol), on_invalid="zero")
            model = config.model
            if config.base_url == "" and model not in servers:
                servers[model] = LocalLLMServer(model=model)
            everything: list[dict[str, Any]] = []
            out: dict[str, Any] = {
                "experiment": experiment, "model": model, "num_actions": run.env.num_actions,
                "episode_length": run.env.episode_length, "by_task": {}, "by_task_level": {}}
            report["protocols"][protocol] = out
            for task_index, name in enumerate(TASK_NAMES):
                task = make_task(name, run.env.num_actions, run.env.episode_length)
                with ParentLLM(task, config, server=servers.get(model)) as parent:
                    if protocol == "program":
                        out.setdefault("programs", {})[name] = audit_programs(parent)
                    levels = []
                    for level in range(NUM_LEVELS):
                        limit = (len(task.problems(level)) if protocol == "program" else
                                 audit.states_per_level if PROTOCOLS[protocol].per_action else
                                 audit.solve_states_per_level)
                        levels.append(audit_level(parent, level, limit, audit_seed(audit.seed, task_index, level)))
                    parts = [p for _, p in levels]
                    out["by_task_level"][name] = {str(lv): b for lv, (b, _) in enumerate(levels)}
                    out["by_task"][name] = _pool(parts)
                    everything += parts
                    seconds = sum(o.latency_s for o in {id(o): o for p in parts for o in p["outcomes"]}.values())
                    timing.setdefault(protocol, {})[name] = {"request_seconds": seconds,
                                                             "sent_now": parent.stats()["requests"]}
            out["overall"] = _pool(everything)
    finally:
        for server in servers.values():
            server.stop()
    return report, timing
