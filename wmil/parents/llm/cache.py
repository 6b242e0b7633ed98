"""A persistent cache of LLM responses in SQLite, shared safely by several processes, and its
canonical export, which DVC tracks.

One row per distinct request: ``key`` is the SHA-256 of the model name, the messages and every
sampling parameter (response schema included), so any change to what is asked misses the cache.
A row holds the raw response text, the parsed value as JSON (``null`` when the answer stayed
invalid after its retries; the caller decides under which key such an outcome is kept), its prompt
and completion tokens, and the request's latency in seconds and creation time (Unix seconds). The
endpoint's URL and its API key are never part of a key or a row.

A row, once written, is final: parallel runs (each with its own server) may get different answers
to one request, and every run must use the one kept, or its rerun would not be identical. So
:meth:`ResponseCache.put` returns the row that the cache holds, not the one it was given. A request
that several keys can answer (its invalid outcome under its own retry policy, or a valid answer) is
answered by the first of them, in the order given, that has a row; ``put`` stores nothing when one
of them has, so the order of the keys decides what the order of writing would, and the rows alone
(not when they were written) determine every answer.

**The export.** The SQLite file cannot be the same bytes on two runs (its pages land in the order
parallel jobs write them, and rows carry wall-clock latencies), so it is never hashed: beside it,
``<name>.jsonl`` holds every row but the wall-clock columns, sorted by key, rewritten under a file
lock when a cache that gained rows closes. That file is what DVC tracks and ``dvc pull`` brings;
opening a cache loads the export's rows that the SQLite file lacks (a fresh clone rebuilds it, with
latencies of 0: their cost was not recorded).

The database runs in WAL mode with a busy timeout, so readers never block a writer and concurrent
writers (parallel training runs) queue instead of failing. Each row is written in one transaction:
a process killed mid-write leaves the previous content, never a partial row.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmil import atomic
from wmil.errors import LLMError

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
#: The columns of the export: all but the wall-clock ones (latency_s, created); ``value`` stays JSON text.
EXPORTED = ("key", "model", "raw", "value", "prompt_tokens", "completion_tokens")


def export_path(path: str | Path) -> Path:
    """The canonical export of the cache at ``path``: ``cache.sqlite`` -> ``cache.jsonl``."""
    return Path(path).with_suffix(".jsonl")


def request_key(model: str, messages: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> str:
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
        self.closed = False
        self.export = export_path(self.path)
        self._exported = self._load_export()

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

    def _load_export(self) -> int:
        """Add the export's rows that the database lacks; returns how many rows the export holds."""
        try:
            lines = self.export.read_text().splitlines()
        except FileNotFoundError:
            return 0
        try:
            rows = [json.loads(line) for line in lines]
            values = [(r["key"], r["model"], r["raw"], r["value"], 0.0, 0.0, r["prompt_tokens"],
                       r["completion_tokens"]) for r in rows]
        except (ValueError, KeyError, TypeError) as exc:
            raise LLMError(f"{self.export}: not a response-cache export ({exc}); delete it to start afresh") from exc
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO responses (key, model, raw, value, latency_s, created, prompt_tokens, "
                "completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        return len(rows)

    def write_export(self) -> None:
        """Rewrite the export from every row, sorted by key, under an exclusive lock: the last of
        several parallel writers writes last and reads last, so the file ends up complete."""
        with open(self.export.with_name(self.export.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = self._db.execute(f"SELECT {', '.join(EXPORTED)} FROM responses ORDER BY key").fetchall()
            text = "".join(json.dumps(dict(zip(EXPORTED, row)), sort_keys=True) + "\n" for row in rows)
            atomic.write_text(self.export, text)
        self._exported = len(rows)

    def _first(self, keys: Sequence[str]) -> CachedResponse | None:
        """The row under the first of ``keys`` that has one."""
        found = {row[0]: row[1:] for row in self._db.execute(
            f"SELECT key, raw, value, latency_s, prompt_tokens, completion_tokens FROM responses WHERE key IN "
            f"({', '.join('?' * len(keys))})", tuple(keys))}
        for key in keys:
            if key in found:
                raw, value, *rest = found[key]
                return CachedResponse(raw, json.loads(value), *rest)
        return None

    def get(self, *keys: str) -> CachedResponse | None:
        """The row under the first of ``keys`` that has one; None (a miss) when none has."""
        found = self._first(keys)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, model: str, raw: str, value: Any, latency_s: float,
            alternatives: Sequence[str] = (), tokens: tuple[int, int] = (0, 0)) -> CachedResponse:
        """Store one response under ``key`` unless a row is there already under it or one of
        ``alternatives`` (every key that answers the request, in order of precedence), and return
        the row the cache then holds for the request, read in the same transaction, so that a
        concurrent writer that won the race decides the answer of every run."""
        answers = tuple(alternatives) or (key,)
        taken = tuple(dict.fromkeys((key, *answers)))
        with self._db:  # one transaction: BEGIN ... COMMIT, or ROLLBACK on error
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO responses (key, model, raw, value, latency_s, created, prompt_tokens, completion_tokens) "
                f"SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM responses WHERE key IN "
                f"({', '.join('?' * len(taken))}))",
                (key, model, raw, json.dumps(value), latency_s, time.time(), *tokens, *taken))
            stored = self._first(answers)
        assert stored is not None  # a row under one of the keys exists now
        return stored

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Close the database (once; again is a no-op), first rewriting the export if the
        database holds rows it lacks."""
        if self.closed:
            return
        try:
            if len(self) != self._exported:
                self.write_export()
        finally:
            self._db.close()
            self.closed = True
