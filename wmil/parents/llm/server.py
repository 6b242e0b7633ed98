"""The bundled local LLM: a GGUF model of :mod:`~wmil.parents.llm.models` (its sha256 checked
before every start) served by ``llama_cpp.server`` (OpenAI-compatible API) on 127.0.0.1 only, one
CPU thread.

:class:`LocalLLMServer` runs the server as a child process in its own process group and always
stops it: on :meth:`~LocalLLMServer.stop`, on leaving its ``with`` block, at interpreter exit, and
(Linux) when the process that started it dies, so no server outlives its run.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from wmil.errors import LLMError
from wmil.parents.llm.models import bundled

DEFAULT_MODEL = "smollm2-135m-instruct"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
N_CTX = 2048  # tokens; a prompt and its answer take a few hundred
LOG_TAIL_CHARS = 3000
LOG_TAIL_LINES = 12
READY_COMPLETION_TIMEOUT_S = 30.0  # the first completion also loads the weights into memory
#: What to do when the server crashed (what a llama.cpp built for another CPU does on its first request).
CRASH_HINT = ("A crash on the first request usually means llama.cpp was compiled for another CPU (e.g. with "
              "AMX or AVX-512 code this machine refuses): rebuild it portably with `rm -f .venv/.wmil-installed "
              "&& make setup` (scripts/setup-env.sh), or set parent.llm.base_url to an OpenAI-compatible endpoint.")


class LLMServerError(LLMError):
    """The local server could not be found or started."""


class LLMServerDied(LLMServerError):
    """The local server process ended: its exit code or signal and the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the starting thread dies (Linux), so that a
    killed run (SIGKILL skips atexit) leaves no orphan server."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: stop() and atexit still apply
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


class LocalLLMServer:
    """``llama_cpp.server`` on ``127.0.0.1:port`` (a free port by default); ``base_url`` is its
    OpenAI API root. ``model`` is a bundled model's name (its file's sha256 is checked at every
    start) or a GGUF path used as it is. ``log`` receives the server's output (default: a
    temporary file whose tail goes into start-up errors)."""

    def __init__(self, port: int | None = None, model: str | Path = DEFAULT_MODEL, n_ctx: int = N_CTX,
                 start_timeout_s: float = START_TIMEOUT_S, log: IO[bytes] | None = None):
        self.port = port or free_port()
        self.model = model
        self.model_file: Path | None = model if isinstance(model, Path) else None
        self.n_ctx = n_ctx
        self.start_timeout_s = start_timeout_s
        self._log = log
        self._own_log: IO[bytes] | None = None
        self.process: subprocess.Popen | None = None
        # Served as the model's name, so that readiness proves the answer came from this server and
        # not from another process that took the free port first (requests may name any model: the
        # server answers them all with its only one).
        self.alias = f"wmil-{secrets.token_hex(8)}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_file or self.model),
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", "1", "--n_threads_batch", "1", "--model_alias", self.alias]

    def start(self) -> LocalLLMServer:
        """Start the server and wait until it has answered a real completion (at most
        ``start_timeout_s``). On a server that runs already, check that it is still alive."""
        if self.process is not None:
            self.check_alive()
            return self
        if not isinstance(self.model, Path):
            self.model_file = bundled(self.model).path()  # raises before anything is loaded
        if self._log is None:
            self._own_log = tempfile.TemporaryFile()  # noqa: SIM115  # kept while the server runs; stop() closes it
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log or self._own_log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Ready means: this server (it knows the alias) answered a one-token completion. A
        server can list its models and still crash on its first completion (a llama.cpp built
        for another CPU dies in its matrix kernels), so ``/models`` alone proves nothing."""
        deadline = time.monotonic() + self.start_timeout_s
        last = "no answer yet"
        while True:
            answered = self._answers()
            if answered:
                last = "it listed its model but did not complete a request"
                completed, why = self._completes()
                if completed:
                    return
                last = why or last
            self.check_alive("while starting", grace_s=0.5 if answered else 0.0)
            if time.monotonic() > deadline:
                raise LLMServerError(f"the local LLM server at {self.base_url} was not ready within "
                                     f"{self.start_timeout_s:g} s ({last}); its log ends:\n{self.log_tail()}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        """Whether this server answers ``/models``: anything else on the port cannot know the alias."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2.0) as response:
                return self.alias.encode() in response.read()
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
            return False  # not up yet, or not speaking HTTP

    def _completes(self) -> tuple[bool, str]:
        """Whether a one-token chat completion comes back as a completion; else why not."""
        body = json.dumps({"model": self.alias, "max_tokens": 1, "temperature": 0.0,
                           "messages": [{"role": "user", "content": "Say OK."}]}).encode()
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=READY_COMPLETION_TIMEOUT_S) as response:
                answer = json.loads(response.read())
            return isinstance(answer, dict) and bool(answer.get("choices")), "its completion had no choices"
        except urllib.error.HTTPError as exc:
            return False, f"a completion failed with HTTP {exc.code}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ValueError) as exc:
            return False, f"a completion failed: {type(exc).__name__}: {exc}"

    def exit_description(self) -> str | None:
        """How the server process ended (``None`` while it runs)."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            return None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name} (exit status {128 - code})"
        return f"exited with code {code}"

    def check_alive(self, when: str = "", grace_s: float = 0.0) -> None:
        """Raise :class:`LLMServerDied` if the server process has ended, waiting up to
        ``grace_s`` for one that is going down (a crash resets the connection a moment before
        the process is gone)."""
        if self.process is None:
            return
        if grace_s > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace_s)
        ended = self.exit_description()
        if ended is None:
            return
        crashed = self.process.returncode in (-signal.SIGSEGV, -signal.SIGILL, -signal.SIGBUS)
        hint = (CRASH_HINT if crashed else
                "Check its log above; or set parent.llm.base_url to an OpenAI-compatible endpoint.")
        raise LLMServerDied(f"the local LLM server ({' '.join(self.command())}) {ended}"
                            f"{' ' + when if when else ''}; its log ends:\n{self.log_tail()}\n{hint}")

    def log_tail(self) -> str:
        """The last lines of the server's output (only when this object owns the log)."""
        if self._own_log is None:
            return "(log not captured)"
        self._own_log.seek(0, os.SEEK_END)
        size = self._own_log.tell()
        self._own_log.seek(max(0, size - LOG_TAIL_CHARS))
        lines = self._own_log.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def stop(self) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL); safe to call twice."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):  # the group ended after the timeout
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        elif process is not None:
            process.wait()
        if self._own_log is not None:
            self._own_log.close()
            self._own_log = None

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        if self.process is None:
            raise LLMServerError("the local LLM server is not running")
        return self.process.wait()

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(port: int, model: str = DEFAULT_MODEL) -> int:
    """``wmil llm-serve``: run the bundled ``model`` in the foreground on ``127.0.0.1:port``, its
    output on this process's stderr, until interrupted; the exit code."""
    server = LocalLLMServer(port=port, model=model, log=sys.stderr.buffer)
    try:
        with server:  # leaving it, also by Ctrl-C while starting, stops the server
            print(f"serving {model} ({server.model_file}) at {server.base_url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
            return server.wait()
    except KeyboardInterrupt:
        return 0
