"""The LLM parent: an OpenAI-compatible chat endpoint judges actions by a judge protocol
(``parent.llm.protocol``: per state, see :mod:`~wmil.parents.llm.protocols`, or ``program``, the
rule written once as code, see :mod:`~wmil.parents.llm.programs`) and, by ``roles``, moves the
state and proposes problems; the task's rules answer everything else.

What the LLM answers (``parent.llm.roles``):

* ``reward``: the verdict on each action, by the protocol;
* ``reward+transition``: also the next step's problem: per state, its slots as
  ``{"<slot>": int, ...}``; under ``program``, the problem moves on (:meth:`Task.next_problem`) by
  the program's answer instead of the rules';
* ``all``: also each new episode's problem at a level: per state, "problem number k" of the level
  (it must be one of the level's problems); under ``program``, drawn from the problems that the
  LLM's ``in_level`` program accepts, from the level's card in words.

Every answer is validated (:mod:`~wmil.parents.llm.prompts`) and an invalid one asked again
(:class:`~wmil.parents.llm.transport.Endpoint`); still invalid after ``max_retries``, ``on_invalid``
decides (:class:`~wmil.parents.llm.answers.Answers`, which also holds the memo and the cache). The
next state's feedback slot always agrees with the verdict that was returned as reward.
"""

from __future__ import annotations

import atexit

import numpy as np
import torch

from wmil.config import LLMConfig
from wmil.errors import LLMError
from wmil.parents.base import Parent, Split
from wmil.parents.deterministic import DeterministicParent
from wmil.parents.llm.answers import INVALID, Answers, Outcome
from wmil.parents.llm.codes import RowCodes
from wmil.parents.llm.programs import Programs
from wmil.parents.llm.protocols import PROTOCOLS, JudgeProtocol
from wmil.parents.llm.request import RequestBuilder
from wmil.parents.llm.server import LocalLLMServer
from wmil.parents.llm.transport import BACKOFF_S, Endpoint, Transport
from wmil.tasks.rules import Task, verdict_feedback

#: The counters of :meth:`ParentLLM.stats`, in the order they have always been reported.
LLM_COUNTERS = ("answers", "memo_hits", "memo_misses", "cache_hits", "cache_misses", "requests", "retries",
                "transport_errors", "invalid_responses", "fallbacks", "prompt_tokens", "completion_tokens")


class ParentLLM(Parent):
    """An LLM as parent, on whole batches like every parent (states ``LongTensor (n, num_slots)``,
    actions ``LongTensor (n,)``): the rules' draws and answers, replaced by the LLM's where
    ``roles`` say. ``server`` and ``transport`` are the :class:`Endpoint`'s (``transport``
    replaces the HTTP client: tests of the invalid-answer policies)."""

    def __init__(self, task: Task, config: LLMConfig, server: LocalLLMServer | None = None,
                 transport: Transport | None = None, backoff_s: float = BACKOFF_S, split: Split | None = None):
        super().__init__(task, split)
        self.config = config
        self.rules = DeterministicParent(task)
        self.codes = RowCodes(task)
        self.requests = RequestBuilder(task, config)
        self.endpoint = Endpoint(config, server, transport, backoff_s)
        try:
            self.answers = Answers(config, self.endpoint)
        except BaseException:
            self.endpoint.close()
            raise
        per_state = PROTOCOLS.get(config.protocol)
        #: the judge protocol: a per-state one, or (``program``) the LLM's programs
        self.protocol: JudgeProtocol | Programs = (
            Programs(task, self.requests, self.answers) if per_state is None
            else per_state(self.requests, self.codes, self.answers))
        atexit.register(self.close)  # a failing run still stops the server it started

    def close(self) -> None:
        """Close the client and the cache and stop the server this parent started; idempotent."""
        atexit.unregister(self.close)
        try:
            self.endpoint.close()
        finally:
            self.answers.close()

    def __enter__(self) -> ParentLLM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the judge ------------------------------------------------------------------------------
    @property
    def programs(self) -> Programs | None:
        """The LLM's programs, when they judge (``program``); None under a per-state protocol."""
        return self.protocol if isinstance(self.protocol, Programs) else None

    @staticmethod
    def _verdicts(protocol: JudgeProtocol, outcomes: list[Outcome], inverse: torch.Tensor,
                  actions: torch.Tensor) -> torch.Tensor:
        return protocol.verdicts([o.value for o in outcomes], inverse, actions)

    @staticmethod
    def _program_verdicts(programs: Programs, states: torch.Tensor,
                          actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Verdicts by the LLM's ``answer`` program and its answers (None: no program accepted)."""
        answers = programs.answers_for(states)
        if answers is None:
            return torch.full_like(actions, INVALID), None
        return torch.where(answers == INVALID, INVALID, (actions == answers).long()), answers

    def judge(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, list[Outcome], torch.Tensor]:
        """The LLM's verdict on each (state, action), no fallback applied: ``LongTensor (n,)`` of
        1 (right), 0 (wrong) or -1 (no valid answer after the retries), with the distinct
        outcomes behind them and each row's index into those (what ``wmil llm-audit`` reads;
        under ``program`` every row points at the last of the program's outcomes)."""
        if isinstance(self.protocol, Programs):
            verdicts, _ = self._program_verdicts(self.protocol, states, actions)
            outcomes = self.protocol.outcomes["answer"]
            return verdicts, outcomes, torch.full_like(actions, len(outcomes) - 1)
        [(outcomes, inverse)] = self.answers.lookup([self.protocol.plan(states, actions)])
        return self._verdicts(self.protocol, outcomes, inverse, actions), outcomes, inverse

    # ---- the Parent interface -------------------------------------------------------------------
    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reward FloatTensor (n,), next_states LongTensor (n, num_slots))``; the judge's and
        the transition's questions of the batch are sent together."""
        if isinstance(self.protocol, Programs):
            return self._program_step(self.protocol, states, actions)
        rule_reward, nxt = self.rules.step(states, actions)
        plans = [self.protocol.plan(states, actions)]
        if self.config.roles != "reward":
            plans.append(("transition", self.codes.rows(states, actions),
                          lambda i: self.requests.transition(states[i], int(actions[i]))))
        found = self.answers.lookup(plans)
        outcomes, inverse = found[0]
        reward = self.answers.reward(self.protocol.name, outcomes,
                                     self._verdicts(self.protocol, outcomes, inverse, actions), rule_reward)
        if len(found) > 1:
            P = self.task.num_problem_slots
            nxt[:, :P] = self.kept_in_split(self.answers.problems("transition", *found[1], nxt[:, :P]), nxt[:, :P])
        nxt[:, self.task.feedback_slot] = verdict_feedback(reward)
        return reward, nxt

    def _program_step(self, programs: Programs, states: torch.Tensor,
                      actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step under ``program``: verdicts from the ``answer`` program's table; where it gives
        no valid answer, ``on_invalid`` decides (``error`` names the state)."""
        rule_reward, nxt = self.rules.step(states, actions)
        verdicts, answers = self._program_verdicts(programs, states, actions)
        invalid = verdicts == INVALID
        outcomes = programs.outcomes["answer"][-1:]
        if self.config.on_invalid == "error" and answers is not None and bool(invalid.any()):
            state = states[int(invalid.nonzero()[0])].tolist()
            raise LLMError(f"{self.endpoint.url}: the LLM's answer program gives no action in 0..{self.task.num_actions - 1} "
                           f"in state {state} (on_invalid: error); its program:\n{outcomes[0].value}")
        reward = self.answers.reward("program answer", outcomes, verdicts, rule_reward)
        if self.config.roles != "reward":
            rules = self.task.answer(states)
            moved_by = rules if answers is None else torch.where(invalid, rules, answers)
            P = self.task.num_problem_slots
            nxt[:, :P] = self.kept_in_split(self.task.next_problem(states, actions, moved_by), nxt[:, :P])
        nxt[:, self.task.feedback_slot] = verdict_feedback(reward)
        return reward, nxt

    def problem_table(self, level: int) -> torch.Tensor:
        """Under ``program`` with ``roles: all``, the problems the LLM's ``in_level`` accepts (the
        rules' table when it accepts none or was refused, under the fallback policies)."""
        if self.programs is None or self.config.roles != "all":
            return super().problem_table(level)
        made = self.programs.level_problems(level)
        if made is None:
            outcome = self.programs.outcomes[f"in_level/{level}"][-1]
            if outcome.value is None:  # refused twice
                self.answers.check_invalid(f"program in_level/{level}", [outcome])
            elif self.config.on_invalid == "error":
                raise LLMError(f"{self.endpoint.url}: the LLM's in_level program for level {level} accepts no "
                               f"problem (on_invalid: error); its program:\n{outcome.value}")
            return super().problem_table(level)
        return made

    def generate(self, level: int | torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """The rules draw each problem (keeping the random stream of every parent); under
        ``roles: all`` the LLM is then asked for problem number ``k`` of the level, where ``k`` is
        the drawn problem's index in the level's table, and the drawn one stands in if invalid."""
        states = super().generate(level, n, generator)
        if self.config.roles != "all" or self.programs is not None:
            return states
        P = self.task.num_problem_slots
        levels = torch.full((n,), level) if isinstance(level, int) else level
        index = self.codes.problem_index(levels, states[:, :P])
        codes = levels * 1_000_000_000 + index  # tables are far smaller than 1e9 rows
        [(outcomes, inverse)] = self.answers.lookup(
            [("generate", codes, lambda i: self.requests.generate(int(levels[i]), int(index[i])))])
        states[:, :P] = self.kept_in_split(self.answers.problems("generate", outcomes, inverse, states[:, :P]), states[:, :P])
        return states

    def stats(self) -> dict[str, float | None]:
        """Counters since construction: ``answers`` (rows and problems answered by the LLM path),
        memo and persistent-cache hits/misses, ``requests`` sent (retries included), ``retries``,
        ``transport_errors``, ``invalid_responses``, ``fallbacks`` (rows answered by the
        ``on_invalid`` policy), tokens, ``held_out_replaced`` (problems the LLM made that the run's split
        holds out, replaced by the rules': :meth:`Parent.kept_in_split`), and ``latency_p50_s``/``latency_p95_s`` of the requests
        sent (None when none was, never NaN: the trainer writes these to JSON)."""
        counts = {**self.answers.counts, **self.endpoint.counts}
        out: dict[str, float | None] = {k: counts[k] for k in LLM_COUNTERS}
        lat = np.array(self.endpoint.latencies)
        out["held_out_replaced"] = self.held_out_replaced
        out["latency_p50_s"] = float(np.percentile(lat, 50)) if len(lat) else None
        out["latency_p95_s"] = float(np.percentile(lat, 95)) if len(lat) else None
        return out
