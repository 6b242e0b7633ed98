"""Where the LLM parent's answers come from, and what stands in for an invalid one.

Speed: a batch is reduced to its distinct requests (by an exact integer code of the state, or of
the state and action, :mod:`~wmil.parents.llm.codes`), which are looked up in an in-memory memo
(so a warm run builds no prompt), then in the persistent
:class:`~wmil.parents.llm.cache.ResponseCache`; only what remains is sent
(:class:`~wmil.parents.llm.transport.Endpoint`).

An answer still invalid after ``max_retries``: ``on_invalid`` decides. ``error`` raises
:class:`LLMError`, ``deterministic`` uses the rules' answer, ``zero`` gives reward 0 (and the
rules' state).

Caching of invalid outcomes: under ``error`` one is never cached, so a rerun asks again instead of
replaying the same failure; under the fallback policies it is, so a warm rerun reproduces the same
fallbacks, but under a key of its own that adds ``on_invalid`` and ``max_retries`` to the request's
key: an outcome after fewer attempts is not reused by a run that allows more, and valid answers
stay shared by every policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from wmil.config import LLMConfig
from wmil.errors import LLMError
from wmil.parents.llm.cache import CachedResponse, ResponseCache, export_path
from wmil.parents.llm.request import Completion, Request
from wmil.parents.llm.transport import Endpoint

#: A verdict on an action, as the judge protocols and programs give it (``LongTensor`` values):
#: right, wrong, or no valid answer after the retries (``on_invalid`` decides, :meth:`Answers.reward`).
RIGHT, WRONG, INVALID = 1, 0, -1

#: ``(kind, codes LongTensor (n,), make)``: rows of equal code share one answer of ``kind``, asked
#: by ``make(row)``, the request of that row.
Plan = tuple[str, torch.Tensor, Callable[[int], Request]]


@dataclass(frozen=True)
class Outcome:
    """The answer to one request after its retries."""

    value: Any          # the validated answer; None when still invalid
    raw: str            # the (last) response as the cache keeps it
    latency_s: float    # seconds of the request that answered (as recorded in the cache)
    cached: bool        # answered by the persistent cache, without a request
    prompt_tokens: int = 0      # of the request that answered (as recorded in the cache)
    completion_tokens: int = 0

    @classmethod
    def of_row(cls, row: CachedResponse, cached: bool) -> Outcome:
        # JSON has no tuples: a problem's slots come back from the cache as a list
        value = tuple(row.value) if isinstance(row.value, list) else row.value
        return cls(value, row.raw, row.latency_s, cached, row.prompt_tokens, row.completion_tokens)


class Answers:
    """The memo, the response cache (``config.cache_path``; none when empty) and the ``on_invalid``
    policy in front of ``endpoint``; ``counts`` says where the answers came from."""

    def __init__(self, config: LLMConfig, endpoint: Endpoint):
        self.config = config
        self.endpoint = endpoint
        self.counts = dict.fromkeys(("answers", "memo_hits", "memo_misses", "cache_hits", "cache_misses",
                                     "fallbacks"), 0)
        self._memo: dict[str, dict[int, Outcome]] = {}  # kind -> code -> outcome
        self.cache = ResponseCache(config.cache_path) if config.cache_path else None
        self.closed = False

    def close(self) -> None:
        """Close the cache; idempotent. No answer is given afterwards."""
        self.closed = True
        if self.cache is not None:
            self.cache.close()

    # ---- lookups --------------------------------------------------------------------------------
    def lookup(self, plans: list[Plan]) -> list[tuple[list[Outcome], torch.Tensor]]:
        """For each plan: the outcomes of its distinct codes and each row's index into them,
        ``LongTensor (n,)``. The codes not memoized yet, of all plans together, are resolved in
        one go, so that a batch's questions of every kind are sent at once."""
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
                # each missing code is asked by its first row
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

    def resolve(self, requests: list[Request]) -> list[Outcome]:
        """One outcome per request, past the memo: distinct keys are looked up in the cache and
        the rest sent. Raises :class:`LLMError` when the endpoint fails after the retries; invalid
        answers come back with ``value=None``."""
        if self.closed:
            raise LLMError("the LLM parent is closed")
        distinct: dict[str, Request] = {}
        for r in requests:
            distinct.setdefault(r.key, r)
        found: dict[str, Outcome] = {}
        pending = []
        for key, r in distinct.items():
            hit = self.cache.get(*r.cache_keys) if self.cache is not None else None
            if hit is not None:
                found[key] = Outcome.of_row(hit, cached=True)
            else:
                pending.append(r)
        if self.cache is not None:
            self.counts["cache_hits"], self.counts["cache_misses"] = self.cache.hits, self.cache.misses
        if pending:
            found.update(zip((r.key for r in pending), self.endpoint.send(pending, self._store)))
        return [found[r.key] for r in requests]

    def _store(self, request: Request, value: Any, completion: Completion, latency_s: float) -> Outcome:
        """The answer cached, and the outcome the cache holds returned: a parallel run may have
        stored another answer first, and then that one is used here too."""
        outcome = Outcome(value, completion.raw, latency_s, False, completion.prompt_tokens,
                          completion.completion_tokens)
        key = request.key if value is not None else request.invalid_key
        if self.cache is None or key is None:
            return outcome
        row = self.cache.put(key, self.config.model, outcome.raw, list(value) if isinstance(value, tuple) else value,
                             latency_s, request.cache_keys, (outcome.prompt_tokens, outcome.completion_tokens))
        return Outcome.of_row(row, cached=False)

    # ---- the on_invalid policy ------------------------------------------------------------------
    def check_invalid(self, kind: str, outcomes: list[Outcome]) -> int:
        """How many ``outcomes`` are invalid; under ``on_invalid: error`` any one raises."""
        bad = [o for o in outcomes if o.value is None]
        if bad and self.config.on_invalid == "error":
            # only a cache written before invalid outcomes got keys of their own holds one here
            where = (f" (replayed from the response cache {self.config.cache_path}: delete it and its export "
                     f"{export_path(self.config.cache_path)}, or set another parent.llm.cache_path, to ask again)"
                     if bad[0].cached else " (not cached: a rerun asks again)")
            raise LLMError(f"{self.endpoint.url}: {kind} answer still invalid after {1 + self.config.max_retries} "
                           f"attempts (on_invalid: error){where}; last response: {bad[0].raw!r}")
        return len(bad)

    def reward(self, kind: str, outcomes: list[Outcome], verdicts: torch.Tensor, rules: torch.Tensor) -> torch.Tensor:
        """Reward ``FloatTensor (n,)`` from ``verdicts`` ``LongTensor (n,)`` (by the judge protocol
        ``kind``, from ``outcomes``); where :data:`INVALID`, the ``rules``' reward or 0."""
        self.check_invalid(kind, outcomes)
        invalid = verdicts == INVALID  # from an invalid outcome, or a program with no answer in that state
        if not bool(invalid.any()):
            return verdicts.float()
        self.counts["fallbacks"] += int(invalid.sum())
        fallback = rules if self.config.on_invalid == "deterministic" else torch.zeros_like(rules)
        return torch.where(invalid, fallback, verdicts.float())

    def problems(self, kind: str, outcomes: list[Outcome], inverse: torch.Tensor, rules: torch.Tensor) -> torch.Tensor:
        """Problem slots ``(n, num_problem_slots)`` from ``outcomes`` (``inverse``: each row's
        index into them); the ``rules``' rows where invalid (under either fallback policy)."""
        self.check_invalid(kind, outcomes)
        P = rules.shape[1]
        table = torch.tensor([o.value if o.value is not None else (-1,) * P for o in outcomes],
                             dtype=torch.long).reshape(-1, P)[inverse]
        invalid = table[:, 0] < 0
        self.counts["fallbacks"] += int(invalid.sum())
        return torch.where(invalid.unsqueeze(1), rules, table)
