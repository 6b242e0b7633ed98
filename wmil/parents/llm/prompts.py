"""What the LLM parent is asked, and how its answers are read.

Every prompt starts from the task's rule card (:attr:`wmil.tasks.rules.Task.rule_card`) and the
state in words (:meth:`wmil.tasks.state.State.to_prompt`). There is no system prompt: with the
bundled SmolLM2-135M a system prompt ("you are the parent ...") made answers worse, not better.

Answers come back as JSON constrained by a schema (``verdict``, ``solve``, transitions, problems)
or as the log-probabilities of the first token (``score``), and are validated here; anything else
raises :class:`InvalidAnswer` with the reason, and the parent asks again.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from wmil.tasks.rules import NUM_LEVELS, Slot, Task
from wmil.tasks.state import State

#: The state and action of the content-free input of contextual calibration (Zhao et al. 2021).
CONTENT_FREE = "N/A"
YES, NO = "yes", "no"


class InvalidAnswer(ValueError):
    """A response that is not the answer asked for; the message says why."""


# ---- prompts ------------------------------------------------------------------------------------
def _state(task: Task, state: torch.Tensor | str) -> str:
    return state if isinstance(state, str) else State.from_tensor(task, state).to_prompt()


def verdict_prompt(task: Task, state: torch.Tensor, action: int) -> str:
    return (f"{task.rule_card}\nState: {_state(task, state)}\nThe agent answered with action {action}. Is that the "
            'correct action? Reply {"correct": true} or {"correct": false}.')


def solve_prompt(task: Task, state: torch.Tensor) -> str:
    return f'{task.rule_card}\nState: {_state(task, state)}\nWhich action is correct? Reply as JSON {{"action": <number>}}.'


def score_prompt(task: Task, state: torch.Tensor | str, action: int | str) -> str:
    """The verdict question answered by one word, whose first token's probabilities are read."""
    return (f"{task.rule_card}\nState: {_state(task, state)}\nThe agent answered with action {action}. Is that the "
            "correct action? Answer Yes or No.")


def content_free_prompt(task: Task) -> str:
    """The score question with neither a state nor an action: what the model says to nothing."""
    return score_prompt(task, CONTENT_FREE, CONTENT_FREE)


def _slot_help(task: Task, allowed: list[list[int]] | None = None) -> str:
    A = task.num_actions
    ranges = allowed or [list(range(s.cardinality)) for s in task.problem_slots]
    return ", ".join(f'"{s.name}" ({min(v)}..{max(v)}{f", {A} = blank" if s.cardinality == A + 1 and A in v else ""})'
                     for s, v in zip(task.problem_slots, ranges))


def transition_prompt(task: Task, state: torch.Tensor, action: int) -> str:
    return (f"{task.rule_card}\nState: {_state(task, state)}\nThe agent answered with action {action}. Give the "
            f"problem of the next step (the same problem unless the task's rule moves it on) as JSON with the "
            f"integer keys {_slot_help(task)}.")


def generate_prompt(task: Task, level: int, index: int, allowed: list[list[int]]) -> str:
    count = len(task.problems(level))
    return (f"{task.rule_card}\nPropose problem number {index + 1} of the {count} problems at difficulty level "
            f"{level} (levels 0..{NUM_LEVELS - 1}) as JSON with the integer keys {_slot_help(task, allowed)}.")


# ---- schemas --------------------------------------------------------------------------------------
def verdict_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"correct": {"type": "boolean"}}, "required": ["correct"],
            "additionalProperties": False}


def action_schema(num_actions: int) -> dict[str, Any]:
    return {"type": "object", "properties": {"action": {"type": "integer", "enum": list(range(num_actions))}},
            "required": ["action"], "additionalProperties": False}


def problem_schema(slots: tuple[Slot, ...], allowed: list[list[int]] | None = None) -> dict[str, Any]:
    """Integer slots, each restricted to ``allowed[i]`` (default: its whole range)."""
    values = allowed or [list(range(s.cardinality)) for s in slots]
    return {"type": "object", "properties": {s.name: {"type": "integer", "enum": v} for s, v in zip(slots, values)},
            "required": [s.name for s in slots], "additionalProperties": False}


# ---- parsing and validation ---------------------------------------------------------------------
def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; text around it (a code fence, a preamble) is ignored."""
    start = text.find("{")
    if start < 0:
        raise InvalidAnswer("no JSON object in the response")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):  # pragma: no cover - raw_decode at "{" always yields a dict
        raise InvalidAnswer("not a JSON object")
    return obj


def _check_keys(obj: dict[str, Any], keys: list[str]) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InvalidAnswer(f"missing key {missing[0]!r}; required: {keys}")
    extra = sorted(set(obj) - set(keys))
    if extra:
        raise InvalidAnswer(f"unknown key {extra[0]!r}; allowed: {keys}")


def _integer(obj: dict[str, Any], key: str, cardinality: int) -> int:
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidAnswer(f"{key!r} must be an integer, got {v!r}")
    if not 0 <= v < cardinality:
        raise InvalidAnswer(f"{key!r}={v} is out of range; allowed: 0..{cardinality - 1}")
    return v


def parse_verdict(text: str) -> bool:
    """``{"correct": true|false}`` -> the verdict."""
    obj = parse_json_object(text)
    _check_keys(obj, ["correct"])
    if not isinstance(obj["correct"], bool):
        raise InvalidAnswer(f"'correct' must be true or false, got {obj['correct']!r}")
    return obj["correct"]


def parse_action(text: str, num_actions: int) -> int:
    """``{"action": k}`` with ``k`` in ``0..num_actions-1`` -> ``k``."""
    obj = parse_json_object(text)
    _check_keys(obj, ["action"])
    return _integer(obj, "action", num_actions)


def parse_problem(text: str, slots: tuple[Slot, ...]) -> tuple[int, ...]:
    """``{"<slot>": int, ...}`` with every slot in ``0..cardinality-1`` -> the values in slot order."""
    obj = parse_json_object(text)
    _check_keys(obj, [s.name for s in slots])
    return tuple(_integer(obj, s.name, s.cardinality) for s in slots)


def parse_yes_no(top_logprobs: list[tuple[str, float]] | None) -> float:
    """Log-odds ``log P(yes) - log P(no)`` of the first answer token, from its top log-probabilities
    (``[(token, logprob), ...]``). Spellings (" Yes", "YES", ...) of a word add up; a word absent
    from the list is given the probability of the least likely token listed, an upper bound."""
    if not top_logprobs:
        raise InvalidAnswer("the endpoint returned no log-probabilities (the score protocol needs them)")
    mass = {YES: 0.0, NO: 0.0}
    for token, logprob in top_logprobs:
        word = token.strip().lower()
        if word in mass:
            mass[word] += math.exp(logprob)
    if not any(mass.values()):
        raise InvalidAnswer(f"neither Yes nor No among the top tokens {[t for t, _ in top_logprobs][:8]}")
    floor = math.exp(min(lp for _, lp in top_logprobs))
    return math.log(mass[YES] or floor) - math.log(mass[NO] or floor)
