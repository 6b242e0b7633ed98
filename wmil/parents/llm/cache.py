"""A persistent cache of LLM responses in SQLite, shared safely by several processes.

One row per distinct request: ``key`` is the SHA-256 of the model name, the messages and every
sampling parameter (response schema included), so any change to what is asked misses the cache.
A row holds the raw response text, the parsed value as JSON (``null`` when the answer stayed
invalid after its retries; the caller decides under which key such an outcome is kept), the
request's latency in seconds, its prompt and completion tokens and its creation time (Unix
seconds): what a cold run would cost stays known on a warm one. The endpoint's URL and its API
key are never part of a key or a row.

A row, once written, is final: parallel runs (each with its own server) may get different answers
to one request, and every run must use the one kept, or its rerun would not be identical. So
:meth:`ResponseCache.put` returns the row that the cache holds, not the one it was given, and a
request that several keys can answer (a valid answer, or an invalid outcome under one retry
policy) is answered by whichever of them was stored first.

The database runs in WAL mode with a busy timeout, so readers never block a writer and concurrent
writers (parallel training runs) queue instead of failing. Each row is written in one transaction:
a process killed mid-write leaves the previous content, never a partial row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    raw TEXT NOT NULL,
    value TEXT NOT NULL,
    latency_s REAL NOT NULL,
    created REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0
)
"""
#: Columns added since the first version of the table, added to older caches when opened.
_ADDED_COLUMNS = ("prompt_tokens", "completion_tokens")


def request_key(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """Hex SHA-256 of one request: the model, its messages and its sampling ``params``."""
    body = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    raw: str           # the response text as the endpoint sent it
    value: Any         # the validated answer; None when it was invalid
    latency_s: float   # seconds the original request took
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ResponseCache:
    """``get``/``put`` by :func:`request_key`; counts hits and misses of ``get``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: every transaction below is explicit
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        self._set_wal()
        self._db.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL; a crash loses at most the last rows
        self._db.execute(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(responses)")}
        for column in _ADDED_COLUMNS:
            if column not in present:
                try:
                    self._db.execute(f"ALTER TABLE responses ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
        self.hits = 0
        self.misses = 0

    def _set_wal(self) -> None:
        # Switching to WAL needs a moment of exclusive access, and SQLite may answer a concurrent
        # opener "locked" without waiting; once set, the mode persists in the file.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path}: could not switch to WAL mode (got {mode!r})")

    def _first(self, keys: Sequence[str]) -> CachedResponse | None:
        # Rows are never deleted, so SQLite's rowid (max + 1 at each insert) is the order of writing.
        row = self._db.execute(
            f"SELECT raw, value, latency_s, prompt_tokens, completion_tokens FROM responses WHERE key IN "
            f"({', '.join('?' * len(keys))}) ORDER BY rowid LIMIT 1", tuple(keys)).fetchone()
        return None if row is None else CachedResponse(row[0], json.loads(row[1]), *row[2:])

    def get(self, *keys: str) -> CachedResponse | None:
        """The first row stored under any of ``keys``; None (a miss) when there is none."""
        found = self._first(keys)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, model: str, raw: str, value: Any, latency_s: float,
            alternatives: Sequence[str] = (), tokens: tuple[int, int] = (0, 0)) -> CachedResponse:
        """Store one response under ``key`` unless a row is there already, and return the row the
        cache holds for the request: the first stored under ``key`` or ``alternatives`` (the other
        keys that answer it), read in the same transaction, so that a concurrent writer that won
        the race decides the answer of every run."""
        with self._db:  # one transaction: BEGIN ... COMMIT, or ROLLBACK on error
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO responses (key, model, raw, value, latency_s, created, prompt_tokens, "
                "completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, raw, json.dumps(value), latency_s, time.time(), *tokens))
            stored = self._first((key, *alternatives))
        assert stored is not None  # the row under key exists now
        return stored

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
