"""One question to the LLM as a :class:`Request`: what is sent (an :class:`Ask`: a prompt of
:mod:`~wmil.parents.llm.prompts`, its answer schema and the sampling settings), how the answer (a
:class:`Completion`) is validated, and the keys under which the response cache keeps its outcome.
The endpoint (:mod:`~wmil.parents.llm.transport`) sends them. :class:`RequestBuilder`
makes them for one task and ``parent.llm`` config; the judge's requests come from its protocol
(:mod:`~wmil.parents.llm.protocols`), through :meth:`RequestBuilder.make`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from wmil.config import LLMConfig
from wmil.parents.llm import prompts
from wmil.parents.llm.cache import request_key
from wmil.parents.llm.prompts import InvalidAnswer
from wmil.tasks.rules import Task

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionUserMessageParam


@dataclass(frozen=True)
class Completion:
    """One answer: its text, the first token's top log-probabilities (when asked for) and tokens."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    top_logprobs: list[tuple[str, float]] | None = None

    @property
    def raw(self) -> str:
        """What the cache keeps as the response: the text, or text and log-probabilities."""
        if self.top_logprobs is None:
            return self.text
        return json.dumps({"text": self.text, "top_logprobs": self.top_logprobs})


@dataclass(frozen=True)
class Ask:
    """What goes out: chat ``messages``; ``schema`` constrains the answer to JSON (None: free
    text); ``top_logprobs > 0`` asks for that many log-probabilities of the first token."""

    messages: list[ChatCompletionUserMessageParam]
    schema: dict[str, Any] | None
    max_tokens: int
    top_logprobs: int = 0


@dataclass(frozen=True)
class Request:
    kind: str                       # "verdict" | "solve" | "score" | "transition" | "generate" | "program ..."
    ask: Ask                        # what is sent
    parse: Callable[[Completion], Any]  # the completion -> validated value (JSON-serializable), or InvalidAnswer
    key: str                        # request_key of model, messages and sampling parameters
    invalid_key: str | None         # where an invalid outcome is cached; None: it is not (on_invalid: error)
    retry_invalid: bool = True      # ask again (up to max_retries) after an invalid answer; a program is
                                    # asked again with its refusal instead (a request of its own)

    @property
    def cache_keys(self) -> tuple[str, ...]:
        """The keys whose rows answer this request, in order of precedence. Its own invalid
        outcome first: stored, it was stored before any valid answer (a valid row would have
        answered the request, and a row is never stored beside one of its alternatives)."""
        return (self.key,) if self.invalid_key is None else (self.invalid_key, self.key)


class RequestBuilder:
    """The requests of ``task`` under ``config`` (states ``LongTensor (num_slots,)``)."""

    def __init__(self, task: Task, config: LLMConfig):
        self.task = task
        self.config = config

    def make(self, kind: str, prompt: str, schema: dict[str, Any] | None, parse: Callable[[Completion], Any],
             max_tokens: int | None = None, top_logprobs: int = 0, retry_invalid: bool = True) -> Request:
        """A request of ``kind`` for ``prompt`` (a user message), keyed by everything it sends."""
        c = self.config
        ask = Ask([{"role": "user", "content": prompt}], schema, max_tokens or c.max_tokens, top_logprobs)
        params = {"temperature": c.temperature, "max_tokens": ask.max_tokens, "schema": schema,
                  **({"top_logprobs": top_logprobs} if top_logprobs else {})}
        # an invalid outcome is cached only for the fallback policies, and only for the same budget
        invalid_key = None if c.on_invalid == "error" else request_key(
            c.model, ask.messages, {**params, "on_invalid": c.on_invalid, "max_retries": c.max_retries if retry_invalid else 0})
        return Request(kind, ask, parse, request_key(c.model, ask.messages, params), invalid_key, retry_invalid)

    def transition(self, state: torch.Tensor, action: int) -> Request:
        """The problem slots of the step after ``action`` in ``state``."""
        slots = self.task.problem_slots
        return self.make("transition", prompts.transition_prompt(self.task, state, action),
                         prompts.problem_schema(slots), lambda c: prompts.parse_problem(c.text, slots))

    def generate(self, level: int, index: int) -> Request:
        """Problem number ``index`` of ``level``; valid only if it is one of the level's problems."""
        slots, table = self.task.problem_slots, self.task.problems(level)
        allowed = [sorted(set(table[:, i].tolist())) for i in range(len(slots))]
        members = set(map(tuple, table.tolist()))

        def parse(completion: Completion) -> tuple[int, ...]:
            problem = prompts.parse_problem(completion.text, slots)
            if problem not in members:
                raise InvalidAnswer(f"{dict(zip([s.name for s in slots], problem))} is not a problem of level {level}")
            return problem

        return self.make("generate", prompts.generate_prompt(self.task, level, index, allowed),
                         prompts.problem_schema(slots, allowed), parse)
