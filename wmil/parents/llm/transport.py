"""Sending requests to an OpenAI-compatible chat endpoint.

:class:`OpenAITransport` sends one request. A request asks either for JSON matching a schema
(``response_format``) or, with ``top_logprobs``, for the log-probabilities of the first answer
token. The schema goes out as OpenAI's ``{"type": "json_schema", ...}``, or as
``{"type": "json_object", "schema": ...}`` for the bundled llama.cpp server (``local``), which
knows only that form; a remote endpoint that refuses the first form (a llama.cpp server started by
``wmil llm-serve``) is switched to the second once.

:class:`Endpoint` is what a parent talks to: it reads the API key (from ``api_key_env``; never
logged, cached or written), makes the transport (starting the bundled server when there is no
``base_url``) and sends batches of requests concurrently, each retried until its answer is valid.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import openai

from wmil.config import LLMConfig
from wmil.errors import LLMError
from wmil.parents.llm.prompts import InvalidAnswer
from wmil.parents.llm.request import Ask, Completion, Request
from wmil.parents.llm.server import LocalLLMServer

log = logging.getLogger("wmil.llm")
logging.getLogger("httpx2").setLevel(logging.WARNING)  # its one INFO line per request would flood a run's log

#: Endpoint failures worth another try: the connection, a timeout, rate limits, server errors.
RETRYABLE = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError, openai.ConflictError)
BACKOFF_S = 0.5  # first retry's wait; doubles with each further retry

T = TypeVar("T")


class Transport(Protocol):
    """Sends one request; ``url`` names the endpoint in messages."""

    url: str

    async def complete(self, ask: Ask) -> Completion: ...

    async def aclose(self) -> None: ...


class NotACompletion(LLMError):
    """The endpoint answered, but not with a chat completion (e.g. a proxy's HTML error page)."""


class OpenAITransport:
    """``AsyncOpenAI`` chat completions, the client's own retries off."""

    def __init__(self, url: str, api_key: str, config: LLMConfig, local: bool = False):
        self.url = url
        self.config = config
        self.json_schema = not local
        self._client = openai.AsyncOpenAI(base_url=url, api_key=api_key, timeout=config.timeout_s, max_retries=0)

    async def complete(self, ask: Ask) -> Completion:
        try:
            return await self._create(ask)
        except openai.APIStatusError as exc:
            if not (ask.schema is not None and self.json_schema and "response_format" in str(exc)):
                raise
            log.info("%s refused response_format json_schema; sending json_object with a schema", self.url)
            self.json_schema = False
            return await self._create(ask)

    async def _create(self, ask: Ask) -> Completion:
        c = self.config
        extra: dict[str, Any] = {}
        if ask.schema is not None:
            extra["response_format"] = (
                {"type": "json_schema", "json_schema": {"name": "answer", "schema": ask.schema, "strict": True}}
                if self.json_schema else {"type": "json_object", "schema": ask.schema})
        if ask.top_logprobs:
            extra.update(logprobs=True, top_logprobs=ask.top_logprobs)
        response = await self._client.chat.completions.create(
            model=c.model, messages=ask.messages, temperature=c.temperature, max_tokens=ask.max_tokens, **extra)
        choices = getattr(response, "choices", None)
        if not choices:
            body = response if isinstance(response, str) else repr(response)
            raise NotACompletion(f"{self.url}: answered with something that is not a chat completion (is base_url "
                                 f"an OpenAI-compatible API root, ending in /v1?): {body[:200]!r}")
        choice = choices[0]
        usage = response.usage
        top = None
        if ask.top_logprobs:
            content = getattr(getattr(choice, "logprobs", None), "content", None) or []
            top = [(t.token, float(t.logprob)) for t in content[0].top_logprobs] if content else []
        return Completion(choice.message.content or "", usage.prompt_tokens if usage else 0,
                          usage.completion_tokens if usage else 0, top)

    async def aclose(self) -> None:
        await self._client.close()


class Endpoint:
    """Where a parent's requests go: ``transport`` if given (tests), else an
    :class:`OpenAITransport` to ``config.base_url``, or with ``base_url == ""`` to ``server``
    (which its owner stops) or to a bundled local server of its own (``own_server``, stopped in
    :meth:`close`), started at the first request sent, so a run with a warm cache needs no server.
    ``counts`` and ``latencies`` (seconds of each answered request) say what was sent."""

    def __init__(self, config: LLMConfig, server: LocalLLMServer | None = None, transport: Transport | None = None,
                 backoff_s: float = BACKOFF_S):
        self.config = config
        self.server = server
        self.own_server: LocalLLMServer | None = None
        self.transport = transport
        self.backoff_s = backoff_s
        # before anything that needs closing: a missing key leaves nothing open
        self._api_key = self._read_api_key()
        if self.transport is None and config.base_url:
            self.transport = OpenAITransport(config.base_url, self._api_key, config)
        self.counts = dict.fromkeys(("requests", "retries", "transport_errors", "invalid_responses",
                                     "prompt_tokens", "completion_tokens"), 0)
        self.latencies: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._semaphore = asyncio.Semaphore(config.concurrency)  # bound to the loop at its first wait

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
        return self.server.base_url if self.server is not None else "the local LLM server (not started)"

    def _connect(self) -> Transport:
        """The transport, made first if there is none yet (starting the local server first if this
        endpoint must own one)."""
        if self.transport is None:
            if self.server is None:
                self.server = self.own_server = LocalLLMServer(model=self.config.model)
            self.server.start()  # a server given but not started is started now
            self.transport = OpenAITransport(self.server.base_url, self._api_key, self.config, local=True)
        return self.transport

    def close(self) -> None:
        """Close the client and stop the server this endpoint started; idempotent."""
        if self._loop.is_closed():
            return
        try:
            if self.transport is not None:
                self._loop.run_until_complete(self.transport.aclose())
        finally:
            self._loop.close()
            if self.own_server is not None:
                self.own_server.stop()

    def send(self, requests: Sequence[Request], answered: Callable[[Request, Any, Completion, float], T]) -> list[T]:
        """``answered(request, value, completion, latency_s)`` of each request, at most
        ``concurrency`` in flight: ``value`` is the validated answer, or None when it stayed
        invalid after the retries (``completion`` is then the last response). ``answered`` runs as
        each request is answered, so what came back before a failure is kept. Raises
        :class:`LLMError` when the endpoint fails after the retries, and at once when it refuses
        a request or the local server died."""
        transport = self._connect()
        return self._loop.run_until_complete(self._send_all(transport, requests, answered))

    async def _send_all(self, transport: Transport, requests: Sequence[Request], answered: Callable[..., T]) -> list[T]:
        try:
            async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
                tasks = [group.create_task(self._ask(transport, r, answered)) for r in requests]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [t.result() for t in tasks]

    async def _ask(self, transport: Transport, request: Request, answered: Callable[..., T]) -> T:
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
                    completion = await transport.complete(request.ask)
                except RETRYABLE as exc:
                    self.counts["transport_errors"] += 1
                    if self.server is not None and transport.url == self.server.base_url:
                        # a dead local server will not come back: say so now, not after the retries
                        self.server.check_alive(f"during a {request.kind} request", grace_s=1.0)
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
                if not request.retry_invalid:
                    attempts = attempt + 1
                    break
                continue
            return answered(request, value, completion, latency)
        if failure is not None:
            raise LLMError(f"{self.url}: {request.kind} request failed after {attempts} attempt"
                           f"{'s' if attempts > 1 else ''}: {self._describe(failure)}")
        log.warning("%s: %s answer still invalid after %d attempts (%s): %r", self.url, request.kind,
                    attempts, reason, completion.raw)
        return answered(request, None, completion, latency)

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
