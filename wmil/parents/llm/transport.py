"""Sending one request to an OpenAI-compatible chat endpoint; retries are the parent's.

A request asks either for JSON matching a schema (``response_format``) or, with ``top_logprobs``,
for the log-probabilities of the first answer token. The schema goes out as OpenAI's
``{"type": "json_schema", ...}``, or as ``{"type": "json_object", "schema": ...}`` for the bundled
llama.cpp server (``local``), which knows only that form; a remote endpoint that refuses the first
form (a llama.cpp server started by ``wmil llm-serve``) is switched to the second once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from wmil.config import LLMConfig
from wmil.errors import LLMError

log = logging.getLogger("wmil.llm")
logging.getLogger("httpx2").setLevel(logging.WARNING)  # its one INFO line per request would flood a run's log

#: Endpoint failures worth another try: the connection, a timeout, rate limits, server errors.
RETRYABLE = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError, openai.ConflictError)


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

    messages: list[dict[str, str]]
    schema: dict[str, Any] | None
    max_tokens: int
    top_logprobs: int = 0


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
