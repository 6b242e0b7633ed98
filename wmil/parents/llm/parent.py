"""The LLM parent: an OpenAI-compatible chat endpoint judges actions by a judge protocol
(``parent.llm.protocol``, see :mod:`~wmil.parents.llm.protocols`) and, by ``roles``, moves the state
and proposes problems; the task's rules answer everything else.

What the LLM answers (``parent.llm.roles``):

* ``reward``: the verdict on each action, by the protocol;
* ``reward+transition``: also the next step's problem slots, as ``{"<slot>": int, ...}``;
* ``all``: also each new episode's problem at a level (same form, and it must be one of the
  level's problems).

Every answer is validated (:mod:`~wmil.parents.llm.prompts`). An invalid answer is asked again;
still invalid after ``max_retries``, ``on_invalid`` decides: ``error`` raises :class:`LLMError`,
``deterministic`` uses the rules' answer, ``zero`` gives reward 0 (and the rules' state). The next
state's feedback slot always agrees with the verdict that was returned as reward.

Caching of invalid outcomes: under ``error`` one is never cached, so a rerun asks again instead of
replaying the same failure; under the fallback policies it is, so a warm rerun reproduces the same
fallbacks, but under a key of its own that adds ``on_invalid`` and ``max_retries`` to the request's
key: an outcome after fewer attempts is not reused by a run that allows more, and valid answers
stay shared by every policy.

Speed: a batch is reduced to its distinct requests (by an exact integer code of the state, or of
the state and action), which are looked up in an in-memory memo (so a warm run builds no prompt),
then in the persistent :class:`~wmil.parents.llm.cache.ResponseCache`; only what remains is sent,
at most ``concurrency`` requests at once. The API key (read from ``api_key_env``) is never logged,
cached or written.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import openai
import torch

from wmil.config import LLMConfig
from wmil.tasks.rules import NUM_LEVELS, Task, verdict_feedback
from wmil.errors import LLMError
from wmil.parents.base import Parent
from wmil.parents.deterministic import DeterministicParent
from wmil.parents.llm import prompts
from wmil.parents.llm.cache import ResponseCache, request_key
from wmil.parents.llm.prompts import InvalidAnswer
from wmil.parents.llm.protocols import INVALID, PROTOCOLS, Score
from wmil.parents.llm.server import LocalLLMServer
from wmil.parents.llm.transport import RETRYABLE, Ask, Completion, OpenAITransport, Transport

log = logging.getLogger("wmil.llm")

BACKOFF_S = 0.5  # first retry's wait; doubles with each further retry


@dataclass(frozen=True)
class Request:
    kind: str                       # "verdict" | "solve" | "score" | "transition" | "generate"
    ask: Ask                        # what is sent
    parse: Callable[[Completion], Any]  # the completion -> validated value (JSON-serializable), or InvalidAnswer
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
    raw: str            # the (last) response as the cache keeps it
    latency_s: float    # seconds of the request that answered (as recorded in the cache)
    cached: bool        # answered by the persistent cache, without a request
    prompt_tokens: int = 0      # of the request that answered (as recorded in the cache)
    completion_tokens: int = 0


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _from_json(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class ParentLLM(Parent):
    """An LLM as parent, on whole batches like every parent (states ``LongTensor (n, num_slots)``,
    actions ``LongTensor (n,)``). With ``config.base_url == ""`` it uses ``server`` (which its
    owner stops) or a bundled local server of its own (stopped in :meth:`close`), started at the
    first request the cache cannot answer, so a run with a warm cache needs no server.
    ``transport`` replaces the HTTP client (tests of the invalid-answer policies)."""

    def __init__(self, task: Task, config: LLMConfig, server: LocalLLMServer | None = None,
                 transport: Transport | None = None, backoff_s: float = BACKOFF_S):
        super().__init__(task)
        self.config = config
        self.protocol = PROTOCOLS[config.protocol]
        self.rules = DeterministicParent(task)
        self.backoff_s = backoff_s
        self.counts = dict.fromkeys(
            ("answers", "memo_hits", "memo_misses", "cache_hits", "cache_misses", "requests", "retries",
             "transport_errors", "invalid_responses", "fallbacks", "prompt_tokens", "completion_tokens"), 0)
        self.latencies: list[float] = []  # seconds of each answered request sent by this parent
        self._memo: dict[str, dict[int, Outcome]] = {}
        self._threshold: float | None = None
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

    def state_codes(self, states: torch.Tensor) -> torch.Tensor:
        """Each state as one exact int64, ``LongTensor (n,)``."""
        return (states * self._weights[:-1]).sum(1)

    def row_codes(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Each (state, action) row as one exact int64, ``LongTensor (n,)``."""
        return self.state_codes(states) + actions * self._weights[-1]

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

    # ---- requests -------------------------------------------------------------------------------
    def make_request(self, kind: str, prompt: str, schema: dict[str, Any] | None,
                     parse: Callable[[Completion], Any], max_tokens: int | None = None,
                     top_logprobs: int = 0) -> Request:
        """A request of ``kind`` for ``prompt`` (a user message), keyed by everything it sends."""
        c = self.config
        ask = Ask([{"role": "user", "content": prompt}], schema, max_tokens or c.max_tokens, top_logprobs)
        params = {"temperature": c.temperature, "max_tokens": ask.max_tokens, "schema": schema,
                  **({"top_logprobs": top_logprobs} if top_logprobs else {})}
        # an invalid outcome is cached only for the fallback policies, and only for the same budget
        invalid_key = None if c.on_invalid == "error" else request_key(
            c.model, ask.messages, {**params, "on_invalid": c.on_invalid, "max_retries": c.max_retries})
        return Request(kind, ask, parse, request_key(c.model, ask.messages, params), invalid_key)

    def reward_request(self, state: torch.Tensor, action: int) -> Request:
        """The protocol's request that judges ``action`` in ``state`` (``LongTensor (num_slots,)``)."""
        return self.protocol.request(self, state, action)

    def transition_request(self, state: torch.Tensor, action: int) -> Request:
        """The problem slots of the step after ``action`` in ``state``."""
        slots = self.task.problem_slots
        return self.make_request("transition", prompts.transition_prompt(self.task, state, action),
                                 prompts.problem_schema(slots), lambda c: prompts.parse_problem(c.text, slots))

    def generate_request(self, level: int, index: int) -> Request:
        """Problem number ``index`` of ``level``; valid only if it is one of the level's problems."""
        slots, table = self.task.problem_slots, self.task.problems(level)
        allowed = [sorted(set(table[:, i].tolist())) for i in range(len(slots))]
        members = set(map(tuple, table.tolist()))

        def parse(completion: Completion) -> tuple[int, ...]:
            problem = prompts.parse_problem(completion.text, slots)
            if problem not in members:
                raise InvalidAnswer(f"{dict(zip([s.name for s in slots], problem))} is not a problem of level {level}")
            return problem

        return self.make_request("generate", prompts.generate_prompt(self.task, level, index, allowed),
                                 prompts.problem_schema(slots, allowed), parse)

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
                found[key] = Outcome(_from_json(hit.value), hit.raw, hit.latency_s, True, hit.prompt_tokens,
                                     hit.completion_tokens)
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
        completion, reason, latency, failure = Completion("", 0, 0), "", 0.0, None
        for attempt in range(attempts):
            if attempt:
                self.counts["retries"] += 1
                if failure is not None:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
            async with self._semaphore:
                self.counts["requests"] += 1
                started = time.perf_counter()
                try:
                    completion = await self.transport.complete(request.ask)
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
            try:
                value = request.parse(completion)
            except InvalidAnswer as exc:
                self.counts["invalid_responses"] += 1
                reason = str(exc)
                log.debug("invalid %s answer from %s (%s): %r", request.kind, self.url, reason, completion.raw)
                continue
            return self._store(request, Outcome(value, completion.raw, latency, False, completion.prompt_tokens,
                                                completion.completion_tokens))
        if failure is not None:
            raise LLMError(f"{self.url}: {request.kind} request failed after {attempts} attempt"
                           f"{'s' if attempts > 1 else ''}: {self._describe(failure)}")
        log.warning("%s: %s answer still invalid after %d attempts (%s): %r", self.url, request.kind,
                    attempts, reason, completion.raw)
        return self._store(request, Outcome(None, completion.raw, latency, False, completion.prompt_tokens,
                                            completion.completion_tokens))

    def _store(self, request: Request, outcome: Outcome) -> Outcome:
        """``outcome`` cached, and the outcome the cache holds returned: a parallel run may have
        stored another answer first, and then that one is used here too."""
        key = request.key if outcome.value is not None else request.invalid_key
        if self.cache is None or key is None:
            return outcome
        row = self.cache.put(key, self.config.model, outcome.raw, _json_value(outcome.value), outcome.latency_s,
                             request.cache_keys, (outcome.prompt_tokens, outcome.completion_tokens))
        return Outcome(_from_json(row.value), row.raw, row.latency_s, False, row.prompt_tokens, row.completion_tokens)

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
    def _lookup(self, plans: list[tuple[str, torch.Tensor, Callable[[int], Request]]]
                ) -> list[tuple[list[Outcome], torch.Tensor]]:
        """For each ``(kind, codes, make)``: the outcomes of the distinct ``codes``
        (``LongTensor (n,)``) and each row's index into them. The codes not memoized yet, of all
        plans together, are resolved in one go; ``make(row)`` builds the request of a row."""
        found, requests, todo = [], [], []
        for kind, codes, make in plans:
            memo = self._memo.setdefault(kind, {})
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

    def _judge_plan(self, states: torch.Tensor, actions: torch.Tensor):
        p = self.protocol
        return (p.name, p.codes(self, states, actions), lambda i: p.request(self, states[i], int(actions[i])))

    def _verdicts(self, outcomes: list[Outcome], inverse: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.protocol.verdicts(self, [o.value for o in outcomes], inverse, actions)

    def judge(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, list[Outcome], torch.Tensor]:
        """The LLM's verdict on each (state, action), no fallback applied: ``LongTensor (n,)`` of
        1 (right), 0 (wrong) or -1 (no valid answer after the retries), with the distinct
        outcomes behind them and each row's index into those (what ``wmil llm-audit`` reads)."""
        [(outcomes, inverse)] = self._lookup([self._judge_plan(states, actions)])
        return self._verdicts(outcomes, inverse, actions), outcomes, inverse

    def score_threshold(self) -> float:
        """The calibrated log-odds threshold of the ``score`` protocol, asked for once."""
        if self._threshold is None:
            if not isinstance(self.protocol, Score):
                raise LLMError(f"protocol {self.protocol.name!r} has no score threshold")
            self._threshold = self.protocol.threshold(self)
        return self._threshold

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

    def reward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.step(states, actions)[0]

    def transition(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.step(states, actions)[1]

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reward FloatTensor (n,), next_states LongTensor (n, num_slots))``; the judge's and
        the transition's questions of the batch are sent together."""
        rule_reward, nxt = self.rules.step(states, actions)
        plans = [self._judge_plan(states, actions)]
        if self.config.roles != "reward":
            codes = self.row_codes(states, actions)
            plans.append(("transition", codes, lambda i: self.transition_request(states[i], int(actions[i]))))
        answers = self._lookup(plans)
        outcomes, inverse = answers[0]
        verdicts = self._verdicts(outcomes, inverse, actions)
        if self._check_invalid(self.protocol.name, outcomes):
            invalid = verdicts == INVALID
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
