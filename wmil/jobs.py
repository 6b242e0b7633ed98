"""Pipeline jobs that may fail without stopping the paper.

A *guarded* job (``wmil guard ... -- COMMAND``) runs ``COMMAND`` with its output in the job's log.
If the command fails, the guard writes a **failure record** in place of each declared output and
exits 0, so that Snakemake goes on to build every other result, the figures and the report, which
show the record as a missing result. The last rule of the DAG (``wmil status``) then lists every
failed job with its log, removes the records (so that the next invocation redoes exactly those
jobs and what reads them) and exits non-zero. A failed output that git tracks (a committed metric,
figure or table) is restored to its committed bytes, dated one second after 1970 so that the next
invocation still redoes its job: a failure never deletes the committed result from the working tree.

A record is a small JSON object under the single key :data:`FAILURE_KEY`, whatever the output's
suffix: no reader can take it for a result (a checkpoint loader refuses it, and so do the JSON
results' readers, ``wmil.results``; a CSV reader must check first: :func:`failure_of`). A guard
that is itself interrupted (Snakemake cancelling its jobs, Ctrl-C) writes nothing, so that an
interrupted job is rerun as incomplete, never recorded as failed.

Standard library only (and :mod:`wmil.atomic`'s writer, which is too): the guard adds no
start-up cost to the job it runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from wmil import atomic
from wmil.errors import MissingResult

FAILURE_KEY = "wmil_failed_job"
_PREFIX = ('{"' + FAILURE_KEY + '"').encode()
LOG_TAIL_LINES = 15


def failure_of(path: str | os.PathLike) -> dict[str, Any] | None:
    """The failure record at ``path``, or None when it is anything else (or absent)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_PREFIX)) != _PREFIX:
                return None
            f.seek(0)
            return record_in(f.read())
    except (FileNotFoundError, IsADirectoryError):
        return None


def record_in(data: bytes) -> dict[str, Any] | None:
    """The failure record that a file's bytes ``data`` are, or None when they are anything else."""
    if not data.startswith(_PREFIX):
        return None
    try:
        return json.loads(data)[FAILURE_KEY]
    except (ValueError, KeyError):
        return None


def check_result(path: str | os.PathLike) -> Path:
    """``path``, or :class:`MissingResult` if it holds a failure record."""
    record = failure_of(path)
    if record is not None:
        raise MissingResult(Path(path), record)
    return Path(path)


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def guard(job: str, log: Path, outputs: list[Path], command: list[str]) -> int:
    """Run ``command`` (stdout and stderr to ``log``); on failure write the records. Returns the
    guard's exit code: 0 when the command succeeded or failed (recorded), 128 + signal when the
    guard itself was interrupted."""
    if not command:
        raise SystemExit("wmil guard: no command after --")
    log.parent.mkdir(parents=True, exist_ok=True)
    interrupted: list[int] = []
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

        def forward(signum, _frame):
            interrupted.append(signum)
            if signum != signal.SIGINT:  # Ctrl-C reaches the whole process group, the command too
                process.send_signal(signum)

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, forward)
        code = process.wait()
    if interrupted:
        return 128 + interrupted[0]
    if code == 0:
        return 0
    record = {"job": job, "reason": describe_exit(code), "log": str(log), "outputs": [str(p) for p in outputs],
              "command": command, "log_tail": _log_tail(log)}
    text = json.dumps({FAILURE_KEY: record}) + "\n"  # one line: the prefix identifies a record
    for path in outputs:
        atomic.write_text(path, text)
    with open(log, "a") as f:
        f.write(f"\nwmil guard: {job} failed ({record['reason']}); failure records written to "
                f"{', '.join(map(str, outputs))}\n")
    return 0


def status(roots: list[Path], out: Path) -> int:
    """The pipeline's last step: every failed job whose records lie under ``roots`` (files or
    folders, searched recursively), with its log, on stderr and in ``out`` (JSON); the records
    removed; 1 if any job failed, else 0."""
    failed: dict[str, dict[str, Any]] = {}
    paths = [p for root in map(Path, roots) for p in ([root] if root.is_file() else sorted(root.rglob("*")))]
    for path in paths:
        record = failure_of(path)
        if record is not None:
            failed.setdefault(record["job"], record)
    report = {"failed": sorted(failed.values(), key=lambda r: r["job"])}
    if not failed:
        atomic.write_text(out, json.dumps(report, indent=2) + "\n")
        return 0
    lines = [f"wmil status: {len(failed)} job(s) failed; every other result, the figures and the report were "
             "built, with these marked missing:"]
    for record in report["failed"]:
        lines.append(f"  - {record['job']}: {record['reason']}; log: {record['log']}")
        lines += [f"      | {line}" for line in record["log_tail"].splitlines()[-5:]]
    lines.append("Their failure records are removed: fix the cause and rerun the same command to redo just "
                 "these jobs and what reads them.")
    print("\n".join(lines), file=sys.stderr)
    for record in report["failed"]:
        for path in record["outputs"]:
            if failure_of(path) is not None:
                Path(path).unlink()
                _restore_committed(Path(path))
    return 1


def _restore_committed(path: Path) -> None:
    """Put back ``path``'s bytes as committed at git's HEAD, if git tracks it, dated 1970-01-01
    00:00:01: Snakemake then finds it older than its job's inputs and redoes the job, while the
    working tree keeps the committed result meanwhile. (Not 0: Snakemake skips its age check for
    an output time of 0.)"""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent,  # the record was there
                             capture_output=True, text=True, check=True).stdout.strip()
        relative = path.resolve().relative_to(Path(top).resolve())
        committed = subprocess.run(["git", "show", f"HEAD:{relative.as_posix()}"], cwd=top, capture_output=True,
                                   check=True).stdout
    except (OSError, ValueError, subprocess.CalledProcessError):
        return  # not in a git checkout, or not committed there: nothing to restore
    atomic.write_bytes(path, committed)
    os.utime(path, (1, 1))
