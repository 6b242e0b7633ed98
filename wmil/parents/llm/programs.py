"""The ``program`` protocol: the LLM writes the task's rule once, as code, and the parent applies it.

Asked per state, a small offline LLM names the right action on a tenth of the states; asked once to
write the rule as a function, the same model's code is exact on whole levels (the idea of
Text2Reward and Eureka, an LLM writing the reward function as code, here for the whole world):

* ``answer(<problem slots>)`` -> the correct action: the verdict on every action (``reward``) and,
  under ``reward+transition``, the answer the problem moves on by (:meth:`Task.next_problem`);
* ``in_level(<problem slots>)`` -> whether a problem belongs to a level, from the level's card in
  words (:meth:`Task.level_card`), one program per level (``all``): the level's problems are the
  slot grid's rows it accepts.

Each program is a :class:`~wmil.parents.llm.request.Request` like any answer (cached; at
temperature 0 a rerun is offline and identical): its value is the checked source
(:func:`~wmil.parents.llm.sandbox.check`), run once in the sandbox over the whole grid of problem
slots into a table that the parent indexes with tensors, so no step ever runs LLM code. A refused
program is asked for once more, with the refusal in the prompt (a request, and a cache key, of its
own); refused again, ``on_invalid`` decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from wmil.errors import LLMError
from wmil.parents.llm import sandbox
from wmil.parents.llm.answers import INVALID, Answers, Outcome
from wmil.parents.llm.cache import export_path
from wmil.parents.llm.prompts import InvalidAnswer
from wmil.tasks.rules import Task

if TYPE_CHECKING:
    from wmil.parents.llm.request import Request, RequestBuilder

ANSWER, IN_LEVEL = "answer", "in_level"
PROGRAM_MAX_TOKENS = 512  # a rule as code takes 60-200 tokens; room for a short explanation around it
WHITELIST = ("Use only if/elif/else, assignments, return, integer arithmetic (+ - * // %), comparisons, and/or/not "
             "and the functions abs, min and max: no imports, loops, strings, lists or other calls.")


class SlotGrid:
    """Every combination of a task's problem slots, ``LongTensor (G, num_problem_slots)``, in the
    order of their mixed-radix code (the first slot varies fastest); :meth:`index` maps problems
    to their rows."""

    def __init__(self, task: Task):
        cards = [s.cardinality for s in task.problem_slots]
        self.weights = torch.from_numpy(np.cumprod([1] + cards[:-1], dtype=np.int64))
        codes = torch.arange(int(np.prod(cards)))
        self.rows = torch.stack([(codes // w) % c for w, c in zip(self.weights.tolist(), cards)], dim=1)

    def index(self, problems: torch.Tensor) -> torch.Tensor:
        """Each problem ``(n, num_problem_slots)``'s row in the grid, ``LongTensor (n,)``."""
        return (problems * self.weights).sum(1)


def _signature(task: Task, name: str) -> str:
    return f"def {name}({', '.join(s.name for s in task.problem_slots)}):"


# The first question is the rule in words and the function's signature, nothing more: measured with
# Qwen2.5-Coder-1.5B at A = 16, adding the sandbox's whitelist to it turned PatternEcho's exact
# `return target` into a wrong table of 16 cases, and spelling out the slots' ranges broke
# SequenceNext's level 2 (70/70 without). The whitelist is enforced by the sandbox and told only
# with a refusal.
def answer_prompt(task: Task) -> str:
    """Ask for the rule as ``answer(<slots>)``, from the rule in words alone."""
    return (f"The actions are the numbers 0 to {task.num_actions - 1}. {task.rule()}\n"
            f"Write a Python function `{_signature(task, ANSWER)}` that returns the correct action. "
            "Reply with one ```python code block.")


def level_prompt(task: Task, level: int) -> str:
    """Ask for ``in_level(<slots>)``, true exactly on the problems of ``level`` as its card says."""
    return (f"{task.rule()}\nThe problems of this level: {task.level_card(level)}\n"
            f"Write a Python function `{_signature(task, IN_LEVEL)}` that returns True for exactly the problems "
            "of this level and False for every other. Reply with one ```python code block.")


def refused_prompt(prompt: str, response: str, reason: str) -> str:
    """The same question again, with the refused answer, why it was refused and what is allowed."""
    return (f"{prompt}\n\nYour previous answer was refused ({reason}):\n{response.strip()}\n"
            f"Write the function again. {WHITELIST}")


class Programs:
    """The programs of one task under one LLM config: asked through ``answers`` (memo, cache,
    ``on_invalid``), checked, run over the slot grid once and kept as tables."""

    def __init__(self, task: Task, requests: RequestBuilder, answers: Answers):
        self.task = task
        self.requests = requests
        self.answers = answers
        self.grid = SlotGrid(task)
        self.params = tuple(s.name for s in task.problem_slots)
        self.param_bits = tuple(max(1, (s.cardinality - 1).bit_length()) for s in task.problem_slots)
        self.outcomes: dict[str, list[Outcome]] = {}  # program -> its outcomes (first ask, and the refusal's)
        self._tables: dict[str, torch.Tensor | None] = {}

    # ---- asking -------------------------------------------------------------------------------------
    def checked(self, name: str, text: str) -> str:
        """The checked source of function ``name`` in an LLM's answer ``text``; it must also run
        over the whole grid within the sandbox's time and memory. Else :class:`InvalidAnswer`."""
        try:
            program = sandbox.check(sandbox.extract_code(text), name, self.params, self.param_bits)
            sandbox.run(program, self.grid.rows.tolist())
        except sandbox.RefusedProgram as refused:
            raise InvalidAnswer(f"program refused: {refused}") from None
        return program.source

    def _request(self, kind: str, name: str, prompt: str) -> Request:
        return self.requests.make(kind, prompt, None, lambda c: self.checked(name, c.text),
                                  max_tokens=PROGRAM_MAX_TOKENS, retry_invalid=False)

    def program(self, key: str, name: str, prompt: str) -> Outcome:
        """The outcome of program ``key`` (``"answer"`` or ``"in_level/<level>"``): asked with
        ``prompt``, and once more with the refusal when its answer is refused."""
        if key not in self.outcomes:
            kind = f"program {key}"
            [first] = self.answers.resolve([self._request(kind, name, prompt)])
            self.outcomes[key] = [first]
            if first.value is None:
                try:
                    self.checked(name, first.raw)
                    reason = "it was not valid"  # pragma: no cover - an invalid outcome fails its parse
                except InvalidAnswer as exc:
                    reason = str(exc)
                [second] = self.answers.resolve([self._request(kind, name, refused_prompt(prompt, first.raw, reason))])
                self.outcomes[key].append(second)
        return self.outcomes[key][-1]

    def _table(self, outcome: Outcome, name: str) -> torch.Tensor | None:
        source = outcome.value
        if source is None:
            return None
        if source not in self._tables:
            # checked again by run: a replayed cache row is data from a file, not the checked answer
            try:
                values = sandbox.run(sandbox.Program(name, self.params, self.param_bits, source), self.grid.rows.tolist())
            except sandbox.RefusedProgram as refused:
                cache = self.answers.config.cache_path
                where = (f" (replayed from the response cache {cache}: delete it and its export {export_path(cache)}, "
                         "or set another parent.llm.cache_path, to ask again)" if outcome.cached else "")
                raise LLMError(f"{self.answers.endpoint.url}: the LLM's {name} program{where} does not pass the "
                               f"sandbox: {refused}; its text:\n{source[:2000]}") from None
            if name == ANSWER:
                A = self.task.num_actions
                table = [v if type(v) is int and 0 <= v < A else INVALID for v in values]
            else:
                table = [v is True for v in values]
            self._tables[source] = torch.tensor(table, dtype=torch.long if name == ANSWER else torch.bool)
        return self._tables[source]

    # ---- the tables ---------------------------------------------------------------------------------
    def answer_table(self) -> torch.Tensor | None:
        """The LLM's answer on every grid row, ``LongTensor (G,)`` (:data:`INVALID` where its
        program gives no action in ``0..A-1``); None when no program was accepted."""
        outcome = self.program(ANSWER, ANSWER, answer_prompt(self.task))
        return self._table(outcome, ANSWER)

    def answers_for(self, states: torch.Tensor) -> torch.Tensor | None:
        """The LLM's answer in each state ``(n, >= num_problem_slots)``, ``LongTensor (n,)``."""
        table = self.answer_table()
        if table is None:
            return None
        return table[self.grid.index(states[:, : self.task.num_problem_slots])]

    def level_problems(self, level: int) -> torch.Tensor | None:
        """The problems the LLM's ``in_level`` accepts for ``level``, ``LongTensor (m,
        num_problem_slots)`` in grid order; None when no program was accepted or it accepts none."""
        outcome = self.program(f"{IN_LEVEL}/{level}", IN_LEVEL, level_prompt(self.task, level))
        table = self._table(outcome, IN_LEVEL)
        if table is None or not bool(table.any()):
            return None
        return self.grid.rows[table]
