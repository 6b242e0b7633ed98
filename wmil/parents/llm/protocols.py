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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from wmil.errors import LLMError
from wmil.parents.llm import prompts
from wmil.tasks.rules import NUM_LEVELS

if TYPE_CHECKING:
    from wmil.parents.llm.parent import ParentLLM
    from wmil.parents.llm.request import Request

RIGHT, WRONG, INVALID = 1, 0, -1
TOP_LOGPROBS = 20  # first-token alternatives asked for by ``score``
CALIBRATION_PROBLEMS = 8  # batch calibration: this many top-level problems (evenly spaced), with every action


class JudgeProtocol(ABC):
    """One protocol: which requests a batch needs (``codes``: equal codes share one request) and
    how their answers become verdicts ``LongTensor (n,)`` of :data:`RIGHT`, :data:`WRONG` or
    :data:`INVALID` (no valid answer after the retries)."""

    name: ClassVar[str]
    per_action: ClassVar[bool] = True  # one request per (state, action); False: per state

    def codes(self, parent: ParentLLM, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return parent.codes.rows(states, actions)

    @abstractmethod
    def request(self, parent: ParentLLM, state: torch.Tensor, action: int) -> Request: ...

    @abstractmethod
    def verdicts(self, parent: ParentLLM, values: list[Any], inverse: torch.Tensor,
                 actions: torch.Tensor) -> torch.Tensor: ...


class Verdict(JudgeProtocol):
    name = "verdict"

    def request(self, parent, state, action):
        return parent.requests.make("verdict", prompts.verdict_prompt(parent.task, state, action),
                                    prompts.verdict_schema(), lambda c: prompts.parse_verdict(c.text))

    def verdicts(self, parent, values, inverse, actions):
        return torch.tensor([INVALID if v is None else int(v) for v in values], dtype=torch.long)[inverse]


class Solve(JudgeProtocol):
    name = "solve"
    per_action = False

    def codes(self, parent, states, actions):
        return parent.codes.states(states)

    def request(self, parent, state, action):
        A = parent.task.num_actions
        return parent.requests.make("solve", prompts.solve_prompt(parent.task, state), prompts.action_schema(A),
                                    lambda c: prompts.parse_action(c.text, A))

    def verdicts(self, parent, values, inverse, actions):
        answers = torch.tensor([INVALID if v is None else v for v in values], dtype=torch.long)[inverse]
        return torch.where(answers == INVALID, INVALID, (actions == answers).long())


class Score(JudgeProtocol):
    name = "score"

    def request(self, parent, state, action):
        return self._request(parent, prompts.score_prompt(parent.task, state, action))

    @staticmethod
    def _request(parent, text: str):
        return parent.requests.make("score", text, None, lambda c: prompts.parse_yes_no(c.top_logprobs),
                                    max_tokens=1, top_logprobs=TOP_LOGPROBS)

    def threshold(self, parent: ParentLLM) -> float:
        """The log-odds above which a verdict is "right" (asked once per parent, then memoized)."""
        mode = parent.config.calibration
        if mode == "none":
            return 0.0
        if mode == "contextual":
            texts = [prompts.content_free_prompt(parent.task)]
        else:  # batch: a fixed set of the top level's problems, each with every action
            task = parent.task
            table = task.problems(NUM_LEVELS - 1)
            pick = torch.linspace(0, len(table) - 1, min(len(table), CALIBRATION_PROBLEMS)).round().long().unique()
            texts = [prompts.score_prompt(task, s, a) for s in task.initial_states(table[pick])
                     for a in range(task.num_actions)]
        values = [o.value for o in parent.answers.resolve([self._request(parent, t) for t in texts])]
        valid = [v for v in values if v is not None]
        if not valid:
            raise LLMError(f"{parent.endpoint.url}: no valid score among the {len(values)} calibration questions")
        return float(sum(valid) / len(valid))

    def verdicts(self, parent, values, inverse, actions):
        threshold = parent.score_threshold()
        return torch.tensor([INVALID if v is None else int(v > threshold) for v in values], dtype=torch.long)[inverse]


PROTOCOLS: dict[str, JudgeProtocol] = {p.name: p for p in (Verdict(), Solve(), Score())}
