"""Judge protocols: how an LLM's answers become the 0/1 verdicts the learner is rewarded with.

* ``verdict``: "is action ``a`` correct in state ``s``?", answered ``{"correct": true|false}``;
  one request per distinct (state, action).
* ``solve``: "which action is correct in state ``s``?", answered ``{"action": k}`` (constrained to
  ``0..A-1``); the verdict ``a == k`` is computed in code. One request per distinct *state*, so
  ``A`` times fewer than ``verdict``, and exactly one action of a state is ever approved.
* ``score``: the verdict question answered in one word; the log-odds of the first token
  (``log P(Yes) - log P(No)``) are compared with a threshold that removes the model's bias
  towards "Yes" (``parent.llm.calibration``): ``contextual`` takes the log-odds of a content-free
  question with neither state nor action (Zhao et al. 2021); ``batch`` the mean log-odds over
  a fixed set of the task's top-level problems (up to :data:`CALIBRATION_PROBLEMS`, evenly spaced
  in the table) with every action (batch calibration, Zhou et al. 2023, over a fixed set so that a
  verdict never depends on the batch it came in); ``none`` uses 0.

Only the 0/1 verdict ever reaches the learner's reward (the plan's rule): no probability does.

A protocol is made for one parent from what it asks with: the task's requests, its row codes and
its answers (where ``score`` asks its calibration questions), never the parent itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, ClassVar

import torch

from wmil.errors import LLMError
from wmil.parents.llm import prompts
from wmil.parents.llm.answers import INVALID, RIGHT, WRONG, Answers, Plan
from wmil.parents.llm.codes import RowCodes
from wmil.parents.llm.request import Request, RequestBuilder
from wmil.tasks.rules import NUM_LEVELS

TOP_LOGPROBS = 20  # first-token alternatives asked for by ``score``
CALIBRATION_PROBLEMS = 8  # batch calibration: this many top-level problems (evenly spaced), with every action


class JudgeProtocol(ABC):
    """One protocol for one parent: which requests a batch needs (:meth:`codes`: equal codes share
    one request; ``requests`` makes them, for the task and ``parent.llm`` config it was made with)
    and how their answers become verdicts ``LongTensor (n,)`` of :data:`RIGHT`, :data:`WRONG` or
    :data:`INVALID` (no valid answer after the retries). ``row_codes``: the task's; ``answers``:
    the parent's, for questions a protocol asks of its own (``score``'s calibration)."""

    name: ClassVar[str]
    per_action: ClassVar[bool] = True  # one request per (state, action); False: per state

    def __init__(self, requests: RequestBuilder, row_codes: RowCodes, answers: Answers):
        self.requests = requests
        self.task = requests.task
        self.row_codes = row_codes
        self.answers = answers

    def plan(self, states: torch.Tensor, actions: torch.Tensor) -> Plan:
        """The questions of a batch ``(n, num_slots)``, ``(n,)``: its rows' codes, and how a row asks."""
        return self.name, self.codes(states, actions), lambda i: self.request(states[i], int(actions[i]))

    def codes(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.row_codes.rows(states, actions)

    @abstractmethod
    def request(self, state: torch.Tensor, action: int) -> Request: ...

    @abstractmethod
    def verdicts(self, values: list[Any], inverse: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Verdicts ``LongTensor (n,)`` from the validated ``values`` of the distinct requests (None:
        invalid) and each row's index into them, ``inverse (n,)``."""


class Verdict(JudgeProtocol):
    name = "verdict"

    def request(self, state: torch.Tensor, action: int) -> Request:
        return self.requests.make("verdict", prompts.verdict_prompt(self.task, state, action),
                                  prompts.verdict_schema(), lambda c: prompts.parse_verdict(c.text))

    def verdicts(self, values: list[Any], inverse: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.tensor([INVALID if v is None else RIGHT if v else WRONG for v in values], dtype=torch.long)[inverse]


class Solve(JudgeProtocol):
    name = "solve"
    per_action = False

    def codes(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.row_codes.states(states)

    def request(self, state: torch.Tensor, action: int) -> Request:
        A = self.task.num_actions
        return self.requests.make("solve", prompts.solve_prompt(self.task, state), prompts.action_schema(A),
                                  lambda c: prompts.parse_action(c.text, A))

    def verdicts(self, values: list[Any], inverse: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        answers = torch.tensor([INVALID if v is None else v for v in values], dtype=torch.long)[inverse]
        return torch.where(answers == INVALID, INVALID, (actions == answers).long())


class Score(JudgeProtocol):
    name = "score"

    def request(self, state: torch.Tensor, action: int) -> Request:
        return self._request(prompts.score_prompt(self.task, state, action))

    def _request(self, text: str) -> Request:
        return self.requests.make("score", text, None, lambda c: prompts.parse_yes_no(c.top_logprobs),
                                  max_tokens=1, top_logprobs=TOP_LOGPROBS)

    @cached_property
    def threshold(self) -> float:
        """The log-odds above which a verdict is "right", by ``parent.llm.calibration`` (asked for
        at the first verdict, then kept)."""
        mode = self.requests.config.calibration
        if mode == "none":
            return 0.0
        if mode == "contextual":
            texts = [prompts.content_free_prompt(self.task)]
        else:  # batch: a fixed set of the top level's problems, each with every action
            task = self.task
            table = task.problems(NUM_LEVELS - 1)
            pick = torch.linspace(0, len(table) - 1, min(len(table), CALIBRATION_PROBLEMS)).round().long().unique()
            texts = [prompts.score_prompt(task, s, a) for s in task.initial_states(table[pick])
                     for a in range(task.num_actions)]
        values = [o.value for o in self.answers.resolve([self._request(t) for t in texts])]
        valid = [v for v in values if v is not None]
        if not valid:
            raise LLMError(f"{self.answers.endpoint.url}: no valid score among the {len(values)} calibration questions")
        return float(sum(valid) / len(valid))

    def verdicts(self, values: list[Any], inverse: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        threshold = self.threshold
        return torch.tensor([INVALID if v is None else RIGHT if v > threshold else WRONG for v in values],
                            dtype=torch.long)[inverse]


#: Each per-state protocol by name; a parent makes its own (``PROTOCOLS[name](requests, row_codes, answers)``).
PROTOCOLS: dict[str, type[JudgeProtocol]] = {p.name: p for p in (Verdict, Solve, Score)}
