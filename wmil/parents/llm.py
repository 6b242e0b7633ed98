"""The LLM parent: an OpenAI-compatible chat endpoint judges actions (and, by ``roles``, moves the
state and proposes problems); the task's rules answer everything else.

What the LLM answers (``parent.llm.roles``):

* ``reward``: whether ``action`` is correct in a state, as ``{"correct": true|false}``;
* ``reward+transition``: also the next step's problem slots, as ``{"<slot>": int, ...}``;
* ``all``: also each new episode's problem at a level (same form, and it must be one of the
  level's problems).

Every answer is requested with a JSON schema (``response_format``), then parsed and validated
(keys, types, ranges). An invalid answer is asked again; still invalid after ``max_retries``,
``on_invalid`` decides: ``error`` raises :class:`LLMError`, ``deterministic`` uses the rules'
answer, ``zero`` gives reward 0 (and the rules' state). The next state's feedback slot always
agrees with the verdict that was returned as reward.

Caching of invalid outcomes: under ``error`` one is never cached, so a rerun asks again instead of
replaying the same failure; under the fallback policies it is, so a warm rerun reproduces the same
fallbacks, but under a key of its own that adds ``on_invalid`` and ``max_retries`` to the request's
key: an outcome after fewer attempts is not reused by a run that allows more, and valid answers
stay shared by every policy.

Speed: a batch is reduced to its distinct (state, action) rows, which are looked up in an
in-memory memo (keyed by an exact integer code of the row, so a warm run builds no prompt), then
in the persistent :class:`~wmil.parents.cache.ResponseCache`; only what remains is sent, at most
``concurrency`` requests at once. The API key (read from ``api_key_env``) is never logged, cached
or written.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np
import openai
import torch

from wmil.config import LLMConfig
from wmil.envs.state import State
from wmil.envs.tasks import NUM_LEVELS, Slot, Task, verdict_feedback
from wmil.parents.base import Parent
from wmil.parents.cache import ResponseCache, request_key
from wmil.parents.deterministic import DeterministicParent
from wmil.parents.llm_server import LLMError, LocalLLMServer

log = logging.getLogger("wmil.llm")
logging.getLogger("httpx2").setLevel(logging.WARNING)  # its one INFO line per request would flood a run's log

BACKOFF_S = 0.5  # first retry's wait; doubles with each further retry
SYSTEM_PROMPT = ("You are the parent of a learning agent in a small symbolic task. You know the task's "
                 "rule exactly. Answer with one JSON object and nothing else.")
#: Endpoint failures worth another try: the connection, a timeout, rate limits, server errors.
RETRYABLE = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError, openai.ConflictError)


class InvalidAnswer(ValueError):
    """A response that is not the JSON answer asked for; the message says why."""


# ---- parsing and validation ---------------------------------------------------------------------
def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; text around it (a code fence, a preamble) is ignored."""
    start = text.find("{")
    if start < 0:
        raise InvalidAnswer("no JSON object in the response")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):  # pragma: no cover - raw_decode at "{" always yields a dict
        raise InvalidAnswer("not a JSON object")
    return obj


def _check_keys(obj: dict[str, Any], keys: list[str]) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InvalidAnswer(f"missing key {missing[0]!r}; required: {keys}")
    extra = sorted(set(obj) - set(keys))
    if extra:
        raise InvalidAnswer(f"unknown key {extra[0]!r}; allowed: {keys}")


def parse_verdict(text: str) -> bool:
    """``{"correct": true|false}`` -> the verdict."""
    obj = parse_json_object(text)
    _check_keys(obj, ["correct"])
    if not isinstance(obj["correct"], bool):
        raise InvalidAnswer(f"'correct' must be true or false, got {obj['correct']!r}")
    return obj["correct"]


def parse_problem(text: str, slots: tuple[Slot, ...]) -> tuple[int, ...]:
    """``{"<slot>": int, ...}`` with every slot in ``0..cardinality-1`` -> the values in slot order."""
    obj = parse_json_object(text)
    _check_keys(obj, [s.name for s in slots])
    values = []
    for slot in slots:
        v = obj[slot.name]
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidAnswer(f"{slot.name!r} must be an integer, got {v!r}")
        if not 0 <= v < slot.cardinality:
            raise InvalidAnswer(f"{slot.name!r}={v} is out of range; allowed: 0..{slot.cardinality - 1}")
        values.append(v)
    return tuple(values)


def verdict_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"correct": {"type": "boolean"}}, "required": ["correct"],
            "additionalProperties": False}


def problem_schema(slots: tuple[Slot, ...], allowed: list[list[int]] | None = None) -> dict[str, Any]:
    """Integer slots, each restricted to ``allowed[i]`` (default: its whole range)."""
    values = allowed or [list(range(s.cardinality)) for s in slots]
    return {"type": "object", "properties": {s.name: {"type": "integer", "enum": v} for s, v in zip(slots, values)},
            "required": [s.name for s in slots], "additionalProperties": False}


# ---- the transport --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Transport(Protocol):
    """Sends one chat request asking for JSON that matches ``schema``; ``url`` names the endpoint."""

    url: str

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion: ...

    async def aclose(self) -> None: ...


class OpenAITransport:
    """``AsyncOpenAI`` chat completions; retries are the parent's (the client's own are off).

    The schema goes out as OpenAI's ``{"type": "json_schema", ...}``, or as
    ``{"type": "json_object", "schema": ...}`` for the bundled llama.cpp server (``local``),
    which knows only that form; a remote endpoint that refuses the first form (a llama.cpp
    server started by ``wmil llm-serve``) is switched to the second once."""

    def __init__(self, url: str, api_key: str, config: LLMConfig, local: bool = False):
        self.url = url
        self.config = config
        self.json_schema = not local
        self._client = openai.AsyncOpenAI(base_url=url, api_key=api_key, timeout=config.timeout_s, max_retries=0)

    async def complete(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        try:
            return await self._create(messages, schema)
        except openai.APIStatusError as exc:
            if not (self.json_schema and "response_format" in str(exc)):
                raise
            log.info("%s refused response_format json_schema; sending json_object with a schema", self.url)
            self.json_schema = False
            return await self._create(messages, schema)

    async def _create(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> Completion:
        c = self.config
        response_format = ({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
                           if self.json_schema else {"type": "json_object", "schema": schema})
        response = await self._client.chat.completions.create(
            model=c.model, messages=messages, temperature=c.temperature, max_tokens=c.max_tokens,
            response_format=response_format)
        usage = response.usage
        return Completion(response.choices[0].message.content or "",
                          usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)

    async def aclose(self) -> None:
        await self._client.close()


# ---- requests and their outcomes ----------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    kind: str                       # "reward" | "transition" | "generate"
    messages: list[dict[str, str]]
    schema: dict[str, Any]          # JSON schema of the answer
    parse: Callable[[str], Any]     # raw text -> validated value (JSON-serializable), or InvalidAnswer
    key: str                        # request_key of model, messages and sampling parameters
    invalid_key: str | None         # where an invalid outcome is cached; None: it is not (on_invalid: error)

    @property
    def cache_keys(self) -> tuple[str, ...]:
        """The keys whose first-stored row answers this request."""
        return (self.key,) if self.invalid_key is None else (self.key, self.invalid_key)


@dataclass(frozen=True)
class Outcome:
    """The answer to one request after its retries."""

    value: Any          # the validated answer; None when still invalid
    raw: str            # the (last) response text
    latency_s: float    # seconds of the request that answered (as recorded in the cache)
    cached: bool        # answered by the persistent cache, without a request


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _from_json(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class ParentLLM(Parent):
    """An LLM as parent, on whole batches like every parent (states ``LongTensor (n, num_slots)``,
    actions ``LongTensor (n,)``). With ``config.base_url == ""`` it uses ``server`` (which its
    owner stops) or a bundled local server of its own (stopped in :meth:`close`), started at the
    first request the cache cannot answer, so a run with a warm cache needs no server. ``transport`` replaces the HTTP client (tests
    of the invalid-answer policies)."""

    def __init__(self, task: Task, config: LLMConfig, server: LocalLLMServer | None = None,
                 transport: Transport | None = None, backoff_s: float = BACKOFF_S):
        super().__init__(task)
        self.config = config
        self.rules = DeterministicParent(task)
        self.backoff_s = backoff_s
        self.counts = dict.fromkeys(
            ("answers", "memo_hits", "memo_misses", "cache_hits", "cache_misses", "requests", "retries",
             "transport_errors", "invalid_responses", "fallbacks", "prompt_tokens", "completion_tokens"), 0)
        self.latencies: list[float] = []  # seconds of each answered request sent by this parent
        self._memo: dict[str, dict[int, Outcome]] = {"reward": {}, "transition": {}, "generate": {}}
        self._closed = False
        self._server = server
        self._own_server: LocalLLMServer | None = None
        self.cache: ResponseCache | None = None
        self._loop = asyncio.new_event_loop()
        self._semaphore: asyncio.Semaphore | None = None
        self.transport = transport
        self._init_codes()
        atexit.register(self.close)  # a failing run still stops the server it started
        try:
            self._api_key = self._read_api_key()
            if self.transport is None and config.base_url:
                self.transport = OpenAITransport(config.base_url, self._api_key, config)
            if config.cache_path:
                self.cache = ResponseCache(config.cache_path)
        except BaseException:
            self.close()
            raise

    def _read_api_key(self) -> str:
        name = self.config.api_key_env
        if not name:
            return "unused"  # the local server and keyless endpoints ignore it; the client needs one
        key = os.environ.get(name, "")
        if not key:
            raise LLMError(f"parent.llm.api_key_env: the environment variable {name} is not set or empty; "
                           f"it must hold the API key for {self.url}")
        return key

    @property
    def url(self) -> str:
        """The endpoint, for messages."""
        if self.transport is not None:
            return self.transport.url
        if self.config.base_url:
            return self.config.base_url
        return self._server.base_url if self._server is not None else "the local LLM server (not started)"

    def _connect(self) -> None:
        """Make the transport, starting the local server first if this parent must own one."""
        if self.transport is None:
            if self._server is None:
                self._server = self._own_server = LocalLLMServer()
            self._server.start()  # a server given but not started is started now
            self.transport = OpenAITransport(self._server.base_url, self._api_key, self.config, local=True)

    def _init_codes(self) -> None:
        """Weights that turn a (state, action) row into one exact int64 (mixed radix), and each
        level's problem -> table index."""
        radix = [s.cardinality for s in self.task.slots] + [self.task.num_actions]
        if int(np.prod(radix, dtype=object)) >= 2**62:
            raise ValueError(f"{self.task.name}: state space too large for int64 row codes")
        weights = np.cumprod([1] + radix[:-1], dtype=np.int64)
        self._weights = torch.from_numpy(weights)
        P = self.task.num_problem_slots
        self._problem_index = [
            {int(c): i for i, c in enumerate((self.task.problems(lv) * self._weights[:P]).sum(1).tolist())}
            for lv in range(NUM_LEVELS)]

    # ---- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client and the cache and stop the server this parent started; idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            if self.transport is not None and not self._loop.is_closed():
                self._loop.run_until_complete(self.transport.aclose())
        finally:
            self._loop.close()
            if self.cache is not None:
                self.cache.close()
            if self._own_server is not None:
                self._own_server.stop()

    def __enter__(self) -> ParentLLM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- prompts --------------------------------------------------------------------------------
    def _request(self, kind: str, user: str, schema: dict[str, Any], parse: Callable[[str], Any]) -> Request:
        c = self.config
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
        params = {"temperature": c.temperature, "max_tokens": c.max_tokens, "schema": schema}
        # an invalid outcome is cached only for the fallback policies, and only for the same budget
        invalid_key = None if c.on_invalid == "error" else request_key(
            c.model, messages, {**params, "on_invalid": c.on_invalid, "max_retries": c.max_retries})
        return Request(kind, messages, schema, parse, request_key(c.model, messages, params), invalid_key)

    def _slot_help(self, slots: tuple[Slot, ...], allowed: list[list[int]] | None = None) -> str:
        A = self.task.num_actions
        parts = []
        for i, s in enumerate(slots):
            values = allowed[i] if allowed else range(s.cardinality)
            span = f"{min(values)}..{max(values)}"
            blank = f", {A} = blank" if s.cardinality == A + 1 and A in values else ""
            parts.append(f'"{s.name}" ({span}{blank})')
        return ", ".join(parts)

    def reward_request(self, state: torch.Tensor, action: int) -> Request:
        """Is ``action`` correct in ``state`` (``LongTensor (num_slots,)``)?"""
        user = (f"{State.from_tensor(self.task, state).to_prompt()}\n"
                f"The agent answered with action {action}. Is that the correct action for this state? "
                'Reply {"correct": true} or {"correct": false}.')
        return self._request("reward", user, verdict_schema(), parse_verdict)

    def transition_request(self, state: torch.Tensor, action: int) -> Request:
        """The problem slots of the step after ``action`` in ``state``."""
        slots = self.task.problem_slots
        user = (f"{State.from_tensor(self.task, state).to_prompt()}\n"
                f"The agent answered with action {action}. Give the problem of the next step (the same "
                f"problem unless the task's rule moves it on) as JSON with the integer keys "
                f"{self._slot_help(slots)}.")
        return self._request("transition", user, problem_schema(slots),
                             lambda text: parse_problem(text, slots))

    def generate_request(self, level: int, index: int) -> Request:
        """Problem number ``index`` of ``level``; valid only if it is one of the level's problems."""
        slots, table = self.task.problem_slots, self.task.problems(level)
        allowed = [sorted(set(table[:, i].tolist())) for i in range(len(slots))]
        members = set(map(tuple, table.tolist()))

        def parse(text: str) -> tuple[int, ...]:
            problem = parse_problem(text, slots)
            if problem not in members:
                raise InvalidAnswer(f"{dict(zip([s.name for s in slots], problem))} is not a problem of level {level}")
            return problem

        user = (f"Task {self.task.name}: {self.task.description} Actions are 0..{self.task.num_actions - 1}. "
                f"Propose problem number {index + 1} of the {len(table)} problems at difficulty level {level} "
                f"(levels 0..{NUM_LEVELS - 1}) as JSON with the integer keys {self._slot_help(slots, allowed)}.")
        return self._request("generate", user, problem_schema(slots, allowed), parse)

    # ---- resolution -----------------------------------------------------------------------------
    def resolve(self, requests: list[Request]) -> list[Outcome]:
        """One outcome per request: distinct keys are looked up in the cache and the rest sent
        concurrently (at most ``concurrency`` in flight). Raises :class:`LLMError` when the
        endpoint fails after the retries; invalid answers come back with ``value=None``."""
        if self._closed:
            raise LLMError("the LLM parent is closed")
        distinct: dict[str, Request] = {}
        for r in requests:
            distinct.setdefault(r.key, r)
        found: dict[str, Outcome] = {}
        pending = []
        for key, r in distinct.items():
            hit = self.cache.get(*r.cache_keys) if self.cache is not None else None
            if hit is not None:
                found[key] = Outcome(_from_json(hit.value), hit.raw, hit.latency_s, True)
            else:
                pending.append(r)
        if self.cache is not None:
            self.counts["cache_hits"], self.counts["cache_misses"] = self.cache.hits, self.cache.misses
        if pending:
            self._connect()
            found.update(zip((r.key for r in pending), self._loop.run_until_complete(self._ask_all(pending))))
        return [found[r.key] for r in requests]

    async def _ask_all(self, requests: list[Request]) -> list[Outcome]:
        self._semaphore = self._semaphore or asyncio.Semaphore(self.config.concurrency)
        try:
            async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
                tasks = [group.create_task(self._ask(r)) for r in requests]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [t.result() for t in tasks]

    async def _ask(self, request: Request) -> Outcome:
        """Send ``request`` until a valid answer, at most ``1 + max_retries`` times; endpoint
        failures wait ``backoff_s * 2**retry`` first, invalid answers are asked again at once."""
        attempts = 1 + self.config.max_retries
        raw, reason, latency, failure = "", "", 0.0, None
        for attempt in range(attempts):
            if attempt:
                self.counts["retries"] += 1
                if failure is not None:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            async with self._semaphore:
                self.counts["requests"] += 1
                started = time.perf_counter()
                try:
                    completion = await self.transport.complete(request.messages, request.schema)
                except RETRYABLE as exc:
                    self.counts["transport_errors"] += 1
                    if self._server is not None and self.transport.url == self._server.base_url:
                        # a dead local server will not come back: say so now, not after the retries
                        self._server.check_alive(f"during a {request.kind} request", grace_s=1.0)
                    failure = exc
                    continue
                except openai.APIStatusError as exc:  # not worth retrying: a bad request, auth, ...
                    raise LLMError(f"{self.url}: {request.kind} request refused: {self._describe(exc)}") from None
                latency = time.perf_counter() - started
            failure = None
            self.latencies.append(latency)
            self.counts["prompt_tokens"] += completion.prompt_tokens
            self.counts["completion_tokens"] += completion.completion_tokens
            raw = completion.text
            try:
                value = request.parse(raw)
            except InvalidAnswer as exc:
                self.counts["invalid_responses"] += 1
                reason = str(exc)
                log.debug("invalid %s answer from %s (%s): %r", request.kind, self.url, reason, raw)
                continue
            return self._store(request, Outcome(value, raw, latency, False))
        if failure is not None:
            raise LLMError(f"{self.url}: {request.kind} request failed after {attempts} attempt"
                           f"{'s' if attempts > 1 else ''}: "
                           f"{self._describe(failure)}")
        log.warning("%s: %s answer still invalid after %d attempts (%s): %r", self.url, request.kind,
                    attempts, reason, raw)
        return self._store(request, Outcome(None, raw, latency, False))

    def _store(self, request: Request, outcome: Outcome) -> Outcome:
        """``outcome`` cached, and the outcome the cache holds returned: a parallel run may have
        stored another answer first, and then that one is used here too."""
        key = request.key if outcome.value is not None else request.invalid_key
        if self.cache is None or key is None:
            return outcome
        row = self.cache.put(key, self.config.model, outcome.raw, _json_value(outcome.value), outcome.latency_s,
                             request.cache_keys)
        return Outcome(_from_json(row.value), row.raw, row.latency_s, False)

    def _describe(self, exc: Exception) -> str:
        """An endpoint error without anything that could echo the key."""
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return f"HTTP {exc.status_code}: not authorized (check the key in ${self.config.api_key_env})"
        if isinstance(exc, openai.APITimeoutError):
            return f"timed out after {self.config.timeout_s:g} s"
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot connect ({type(exc).__name__}: {exc})"
        text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._api_key, "***") if self.config.api_key_env else text

    # ---- batched lookups ------------------------------------------------------------------------
    def _row_codes(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Each (state, action) row as one exact int64, ``LongTensor (n,)``."""
        return (states * self._weights[:-1]).sum(1) + actions * self._weights[-1]

    def _lookup(self, plans: list[tuple[str, torch.Tensor, Callable[[int], Request]]]
                ) -> list[tuple[list[Outcome], torch.Tensor]]:
        """For each ``(kind, codes, make)``: the outcomes of the distinct ``codes``
        (``LongTensor (n,)``) and each row's index into them. The codes not memoized yet, of all
        plans together, are resolved in one go; ``make(row)`` builds the request of a row."""
        found, requests, todo = [], [], []
        for kind, codes, make in plans:
            memo = self._memo[kind]
            uniq, inverse = torch.unique(codes, return_inverse=True)
            keys = uniq.tolist()
            missing = [c for c in keys if c not in memo]
            self.counts["answers"] += len(codes)
            self.counts["memo_hits"] += len(codes) - len(missing)
            self.counts["memo_misses"] += len(missing)
            if missing:
                first = torch.full((len(keys),), len(codes)).scatter_reduce_(
                    0, inverse, torch.arange(len(codes)), "amin").tolist()
                position = {c: i for i, c in enumerate(keys)}
                requests += [make(first[position[c]]) for c in missing]
                todo += [(memo, c) for c in missing]
            found.append((memo, keys, inverse))
        if requests:
            for (memo, c), outcome in zip(todo, self.resolve(requests)):
                memo[c] = outcome
        return [([memo[c] for c in keys], inverse) for memo, keys, inverse in found]

    def _check_invalid(self, kind: str, outcomes: list[Outcome]) -> int:
        """How many ``outcomes`` are invalid; under ``on_invalid: error`` any one raises."""
        bad = [o for o in outcomes if o.value is None]
        if bad and self.config.on_invalid == "error":
            # only a cache written before invalid outcomes got keys of their own holds one here
            where = (f" (replayed from the response cache {self.config.cache_path}: delete it, or set another "
                     "parent.llm.cache_path, to ask again)" if bad[0].cached else " (not cached: a rerun asks again)")
            raise LLMError(f"{self.url}: {kind} answer still invalid after {1 + self.config.max_retries} "
                           f"attempts (on_invalid: error){where}; last response: {bad[0].raw!r}")
        return len(bad)

    @staticmethod
    def _verdicts(outcomes: list[Outcome], inverse: torch.Tensor) -> torch.Tensor:
        return torch.tensor([-1 if o.value is None else int(o.value) for o in outcomes], dtype=torch.long)[inverse]

    def reward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.step(states, actions)[0]

    def transition(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.step(states, actions)[1]

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reward FloatTensor (n,), next_states LongTensor (n, num_slots))``; reward and
        transition questions of the batch are sent together."""
        rule_reward, nxt = self.rules.step(states, actions)
        codes = self._row_codes(states, actions)
        plans = [("reward", codes, lambda i: self.reward_request(states[i], int(actions[i])))]
        if self.config.roles != "reward":
            plans.append(("transition", codes, lambda i: self.transition_request(states[i], int(actions[i]))))
        answers = self._lookup(plans)
        outcomes, inverse = answers[0]
        verdicts = self._verdicts(outcomes, inverse)
        if self._check_invalid("reward", outcomes):
            invalid = verdicts < 0
            self.counts["fallbacks"] += int(invalid.sum())
            fallback = rule_reward if self.config.on_invalid == "deterministic" else torch.zeros_like(rule_reward)
            reward = torch.where(invalid, fallback, verdicts.float())
        else:
            reward = verdicts.float()
        if len(answers) > 1:
            P = self.task.num_problem_slots
            nxt[:, :P] = self._problems("transition", *answers[1], nxt[:, :P])
        nxt[:, -1] = verdict_feedback(reward)
        return reward, nxt

    def _problems(self, kind: str, outcomes: list[Outcome], inverse: torch.Tensor,
                  rules: torch.Tensor) -> torch.Tensor:
        """Problem slots ``(n, num_problem_slots)`` from ``outcomes``; the ``rules``' rows where
        invalid (under either fallback policy)."""
        self._check_invalid(kind, outcomes)
        P = rules.shape[1]
        table = torch.tensor([o.value if o.value is not None else (-1,) * P for o in outcomes],
                             dtype=torch.long).reshape(-1, P)[inverse]
        invalid = table[:, 0] < 0
        self.counts["fallbacks"] += int(invalid.sum())
        return torch.where(invalid.unsqueeze(1), rules, table)

    def generate(self, level: int | torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """The rules draw each problem (keeping the random stream of every parent); under
        ``roles: all`` the LLM is then asked for problem number ``k`` of the level, where ``k`` is
        the drawn problem's index in the level's table, and the drawn one stands in if invalid."""
        states = super().generate(level, n, generator)
        if self.config.roles != "all":
            return states
        P = self.task.num_problem_slots
        levels = torch.full((n,), level) if isinstance(level, int) else level
        index = torch.tensor([self._problem_index[lv][c] for lv, c in
                              zip(levels.tolist(), (states[:, :P] * self._weights[:P]).sum(1).tolist())])
        codes = levels * 1_000_000_000 + index  # tables are far smaller than 1e9 rows
        [(outcomes, inverse)] = self._lookup(
            [("generate", codes, lambda i: self.generate_request(int(levels[i]), int(index[i])))])
        states[:, :P] = self._problems("generate", outcomes, inverse, states[:, :P])
        return states

    def action_distribution(self, states: torch.Tensor) -> torch.Tensor:
        return self.rules.action_distribution(states)

    # ---- accounting -----------------------------------------------------------------------------
    def stats(self) -> dict[str, float | int | None]:
        """Counters since construction: ``answers`` (rows and problems answered by the LLM path),
        memo and persistent-cache hits/misses, ``requests`` sent (retries included), ``retries``,
        ``transport_errors``, ``invalid_responses``, ``fallbacks`` (rows answered by the
        ``on_invalid`` policy), tokens, and ``latency_p50_s``/``latency_p95_s`` of the requests
        sent (None when none was, never NaN: the trainer writes these to JSON)."""
        out: dict[str, float | int | None] = dict(self.counts)
        lat = np.array(self.latencies)
        out["latency_p50_s"] = float(np.percentile(lat, 50)) if len(lat) else None
        out["latency_p95_s"] = float(np.percentile(lat, 95)) if len(lat) else None
        return out
