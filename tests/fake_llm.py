"""A scripted OpenAI-compatible endpoint on 127.0.0.1 that answers the LLM parent's prompts by the
task's rules: it reads the task from the rule card, the state and action from the prompt, and
answers every protocol like a strong model (``oracle``), or with a fixed bias (``yes``: every
verdict "correct", and a score that prefers Yes everywhere but more so for the right action).

Used as ``with FakeEndpoint() as url: ...`` with ``parent.llm.base_url = url``.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time

import pytest
import torch

from wmil.tasks.rules import FEEDBACK_NONE, FEEDBACK_RIGHT, FEEDBACK_WRONG, TASKS, make_task

_FEEDBACK = {"none yet": FEEDBACK_NONE, "wrong": FEEDBACK_WRONG, "right": FEEDBACK_RIGHT}


def read_prompt(prompt: str):
    """``(task, state LongTensor (num_slots,) or None, action int or None)`` of a parent's prompt."""
    A = int(re.search(r"numbers 0 to (\d+)\.", prompt).group(1)) + 1
    T = int(m.group(1)) if (m := re.search(r"step=\d+ of (\d+)", prompt)) else 1
    name = next(n for n, cls in TASKS.items() if cls(A).rule() in prompt)
    task = make_task(name, A, T)
    line = re.search(r"^State: (.*)$", prompt, re.M).group(1)
    action = re.search(r"answered with action (\d+)", prompt)
    if line == "N/A":
        return task, None, None
    values = dict(part.split("=", 1) for part in line.split(", "))
    row = []
    for slot in task.slots:
        text = values[slot.name]
        if slot.name == "feedback":
            row.append(_FEEDBACK[text])
        elif text in ("blank", "none"):
            row.append(A)
        else:
            row.append(int(text.split(" of ")[0]))
    return task, torch.tensor(row), int(action.group(1)) if action else None


def exact_program(task, level: int | None) -> str | None:
    """The rule of ``task`` as the program protocol asks for it: ``answer`` (``level`` None) or
    ``in_level`` for ``level``, exact, within the sandbox's whitelist; None for a task with no
    program written here (no generic one fits: a lookup table of the slot grid outgrows the
    sandbox's size caps)."""
    A, name = task.num_actions, task.name
    if name == "pattern_echo":
        return ("def answer(target):\n    return target\n" if level is None else
                f"def in_level(target):\n    return target <= {task.level_card(level).split()[-1].rstrip('.')}\n")
    if name == "sequence_next":
        if level is None:
            return (f"def answer(seq_0, seq_1, seq_2):\n    if seq_2 == {A}:\n        return (2 * seq_1 - seq_0) % {A}\n"
                    f"    return (2 * seq_2 - seq_1) % {A}\n")
        if level == 0:
            return (f"def in_level(seq_0, seq_1, seq_2):\n"
                    f"    return seq_2 == {A} and seq_1 == seq_0 + 1 and seq_1 + 1 <= {A - 1}\n")
        if level == 1:
            return (f"def in_level(seq_0, seq_1, seq_2):\n"
                    f"    return seq_1 == seq_0 + 1 and seq_2 == seq_1 + 1 and seq_2 + 1 <= {A - 1}\n")
        steps = task._steps(2)
        return (f"def in_level(seq_0, seq_1, seq_2):\n    step = seq_1 - seq_0\n"
                f"    if seq_0 == {A} or seq_1 == {A} or seq_2 == {A} or step == 0 or seq_2 - seq_1 != step:\n"
                f"        return False\n    return {min(steps)} <= step <= {max(steps)} and 0 <= seq_2 + step <= {A - 1}\n")
    if name == "conditional":
        if level is None:
            return ("def answer(rule, shape, color, size):\n    if rule >= 2 and color == 1 and size == 1:\n"
                    "        return 7 - shape\n    if rule >= 1 and color == 1:\n        return shape + 4\n    return shape\n")
        return f"def in_level(rule, shape, color, size):\n    return rule == {level}\n"
    return None


def skip_without_exact_program(name: str) -> None:
    """Skip a test that needs the exact programs of task ``name`` when none is written here."""
    if exact_program(make_task(name, 16), None) is None:
        pytest.skip(f"tests/fake_llm.py's exact_program writes no program for {name!r}: add one to test it")


HOSTILE_PROGRAM = "def answer(target):\n    import os\n    return os.getpid()\n"


def program_answer(prompt: str, mode: str) -> str:
    """A program protocol's answer: the exact program (``oracle``); first a hostile one, the exact
    one when asked again with the refusal (``refuse-first``); hostile always (``hostile``);
    exact but for an out-of-range answer on the first problem slot's value 3 (``partial``);
    exact answers with ``in_level`` programs that accept nothing (``empty-levels``); or a
    SequenceNext ``answer`` one above the next term (``step-plus-one``: each move widens the step).
    A task with no exact program gets a reply with no program in every mode."""
    for A in range(8, 33):
        for cls in TASKS.values():
            task = cls(A)
            if task.rule() not in prompt:
                continue
            if "def answer(" in prompt and f"numbers 0 to {A - 1}." in prompt:
                level = None
            else:
                level = next((lv for lv in range(3) if f"this level: {task.level_card(lv)}\n" in prompt), -1)
                if level < 0:
                    continue
            code = exact_program(task, level)
            if code is None:  # as a model that cannot write it; the parent refuses the answer
                return "I cannot write this rule as a program."
            if mode == "hostile" or (mode == "refuse-first" and "was refused" not in prompt):
                code = HOSTILE_PROGRAM
            elif mode == "partial" and level is None:
                first = task.problem_slots[0].name
                code = code.replace(":\n", f":\n    if {first} == 3:\n        return 99\n", 1)
            elif mode == "step-plus-one" and level is None:
                code = code.replace(") % ", " + 1) % ")
            elif mode == "empty-levels" and level is not None:
                code = code.replace(":\n", ":\n    return False\n", 1)
            return f"Here it is:\n```python\n{code}```\nIt returns the answer."
    raise ValueError(f"the fake endpoint knows no task in: {prompt[:120]!r}")


def answer(prompt: str, mode: str) -> tuple[str, list[tuple[str, float]] | None]:
    """The completion text and, for a Yes/No question, the first token's top log-probabilities."""
    if "Write a Python function" in prompt:
        return program_answer(prompt, mode), None
    task, state, action = read_prompt(prompt)
    right = None if state is None else int(task.answer(state.unsqueeze(0))[0])
    if '{"action"' in prompt:
        return json.dumps({"action": right}), None
    if '{"correct": true}' in prompt:
        return json.dumps({"correct": True if mode == "yes" else action == right}), None
    if "Answer Yes or No" in prompt:
        if state is None:  # the content-free question
            yes = -0.5 if mode == "yes" else -0.7
        elif mode == "yes":
            yes = -0.05 if action == right else -0.3  # "Yes" wins everywhere; calibration must undo it
        else:
            yes = -0.01 if action == right else -5.0
        no = float(torch.log1p(-torch.exp(torch.tensor(yes))))
        top = sorted([(" Yes", yes), (" No", no), ("The", -8.0)], key=lambda t: -t[1])
        return top[0][0].strip(), top
    raise ValueError(f"the fake endpoint does not answer: {prompt[-120:]!r}")


class FakeEndpoint:
    """The endpoint in a thread; ``mode`` as in :func:`answer`, ``html`` (HTTP 200 with a web page,
    as a misconfigured proxy sends) or ``hang`` (never answers). ``requests`` counts chat completions."""

    def __init__(self, mode: str = "oracle"):
        self.mode = mode
        self.requests = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests += 1
                if endpoint.mode == "hang":  # accepts the request, never answers
                    time.sleep(60)
                    return
                if endpoint.mode == "html":
                    return self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
                text, top = answer(body["messages"][-1]["content"], endpoint.mode)
                choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                if body.get("logprobs"):
                    choice["logprobs"] = {"content": [{"token": top[0][0], "logprob": top[0][1], "bytes": None,
                                                       "top_logprobs": [{"token": t, "logprob": lp, "bytes": None}
                                                                        for t, lp in top]}]}
                reply = {"id": "fake", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [choice], "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}}
                self._send(200, json.dumps(reply).encode(), "application/json")

            def _send(self, code, data, kind):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads, self._server.block_on_close = True, False  # a hung handler does not block exit

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeEndpoint:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
