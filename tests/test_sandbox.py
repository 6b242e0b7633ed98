"""The sandbox of LLM-written programs: a whitelist of the syntax tree, static size bounds, and a
child process with builtins reduced to abs/min/max. A hostile battery (nothing it holds may run:
a canary file any escape would create must not exist afterwards) and 10,000 generated programs."""

from __future__ import annotations

import ast
import random
import re
import time

import pytest

from wmil.parents.llm import sandbox
from wmil.parents.llm.sandbox import ALLOWED_CALLS, MAX_BITS, RefusedProgram, check, extract_code, run

PARAMS, BITS = ("x", "y"), (4, 4)


def accepted(source: str) -> sandbox.Program:
    return check(source, "answer", PARAMS, BITS)


def test_a_plain_program_is_accepted_and_runs_on_every_input():
    program = accepted("def answer(x, y):\n    \"\"\"Docstrings are dropped.\"\"\"\n"
                       "    if x > y:\n        d = x - y\n    else:\n        d = y - x\n"
                       "    d += 1\n    return max(d, abs(x - 3), min(x, y)) % 16 if not x == 7 and y != 2 else -1\n")
    assert '"""' not in program.source
    inputs = [(x, y) for x in range(16) for y in range(16)]
    expected = [(-1 if x == 7 or y == 2 else max(abs(x - y) + 1, abs(x - 3), min(x, y)) % 16) for x, y in inputs]
    assert run(program, inputs) == expected


def test_results_that_raise_or_are_not_numbers_are_none():
    program = accepted("def answer(x, y):\n    if x == 0:\n        return y // x\n    if x == 1:\n        return x > y\n"
                       "    if x == 2:\n        pass\n    else:\n        return x\n")
    assert run(program, [(0, 3), (1, 0), (2, 5), (3, 5)]) == [None, True, None, 3]


def test_extract_code_takes_the_first_fenced_block():
    assert extract_code("Here:\n```python\ndef answer(x, y):\n    return x\n```\nDone.") == "def answer(x, y):\n    return x\n"
    assert extract_code("def answer(x, y):\n    return y") == "def answer(x, y):\n    return y"


CANARY = "/tmp/wmil-sandbox-canary"

#: (program, what the refusal must name): each would escape, loop, explode or reach outside.
HOSTILE = [
    (f"def answer(x, y):\n    return __import__('os').system('touch {CANARY}')", "call of the attribute .system"),
    ("def answer(x, y):\n    return ().__class__.__bases__[0].__subclasses__()", "call of the attribute .__subclasses__"),
    # reaches os.system without a single builtin: only the check stops attribute chains
    ("def answer(x, y):\n    return [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "
     f"'BuiltinImporter'][0].load_module('posix').system('touch {CANARY}')", "call of the attribute .system"),
    (f"def answer(x, y):\n    return open('{CANARY}', 'w')", "call of 'open'"),
    ("def answer(x, y):\n    while True:\n        pass", "while loop"),
    ("def answer(x, y):\n    return 9**9**9", "operator **"),
    ("def answer(x, y):\n    return answer(x, y)", "call of 'answer'"),
    ("def answer(x, y):\n    yield x", "yield (a generator or coroutine)"),
    ("def answer(x, y):\n    return (i for i in x)", "generator expression"),
    ("def answer(x, y):\n    return f'{x}'", "f-string"),
    ("def answer(x, y):\n    return getattr(x, 'real')", "call of 'getattr'"),
    (f"def answer(x, y):\n    return eval(\"__import__('os').system('touch {CANARY}')\")", "call of 'eval'"),
    ("def answer(x, y):\n    return exec('x = 1')", "call of 'exec'"),
    ("def answer(x, y):\n    return os", "name 'os'"),
    ("def answer(x, y):\n    return 123456789012345678901234567890123", "huge literal"),
    ("@print\ndef answer(x, y):\n    return x", "decorator"),
    ("def answer(x, y=print('hi')):\n    return x", "default argument value"),
    ("def answer(x: print('hi'), y):\n    return x", "annotation of argument 'x'"),
    ("def answer(x, y) -> open:\n    return x", "return annotation"),
    ("def answer(x, y):\n    def inner():\n        return 1\n    return x", "nested function"),
    ("import os\ndef answer(x, y):\n    return x", "import outside the function"),
    ("def answer(x, y):\n    import os\n    return x", "import"),
    ("def answer(x, y):\n    return [x][0]", "subscript"),
    ("def answer(x, y):\n    return (lambda: x)()", "call of a lambda"),
    ("def answer(x, y):\n    return [i for i in range(3)]", "comprehension"),
    ("def answer(x, y):\n    return (z := x)", "walrus"),
    ("def answer(x, y):\n    global g\n    return x", "global"),
    ("def answer(x, y):\n    return 'x'", "string constant"),
    ("def answer(x, y):\n    return x.__class__", "attribute access"),
    ("def answer(x, y):\n    __builtins__ = 1\n    return x", "dunder name"),
    ("def answer(x, y):\n    for i in x:\n        pass\n    return x", "for loop"),
    ("def answer(x, y):\n    try:\n        return x\n    except Exception:\n        return y", "try"),
    ("def answer(x, y):\n    return x << 64", "operator <<"),
    ("def answer(x, y):\n    return x / y", "operator /"),
    ("def answer(x, y):\n    return x in y", "comparison In"),
    ("def answer(x, y):\n    abs = x\n    return abs", "whitelisted function"),
    ("def answer(x, y):\n    return max([x, y])", "list"),
    ("def answer(x, y):\n    return max(*x)", "starred"),
    ("def answer(x, y):\n    return abs(x, key=y)", "keyword argument"),
    ("def answer(x, y):\n    z = x * x\n    z = z * z\n    z = z * z\n    z = z * z\n    z = z * z\n    return z",
     f"more than {MAX_BITS} bits"),
    ("def answer(x, y):\n    z = x\n" + "    z *= 18446744073709551615\n" * 60 + "    return z", f"more than {MAX_BITS} bits"),
    ("def answer(*x):\n    return 1", "arguments other than the slot names"),
    ("def answer(a, b):\n    return a", "they must be (x, y)"),
    ("def solve(x, y):\n    return x", "it must be called 'answer'"),
    ("def answer(x, y):\n    return x\ndef answer2(x, y):\n    return y", "2 function definitions"),
    ("def answer(x, y)\n    return x", "syntax error"),
    ("def answer(x, y):\n    return " + "+".join(["x"] * 500), "syntax-tree nodes"),
    ("def answer(x, y):\n" + "    x = 1\n" * 1000, "characters"),
    ("class A:\n    pass", "class definition outside the function"),
    ("def answer(x, y):\n    return x if y else ...", "ellipsis constant"),
]


@pytest.mark.parametrize("source, named", HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_programs_are_refused_naming_the_construct_and_nothing_runs(source, named):
    """Refused by the check, and by ``run`` itself when handed the program unchecked (as a replayed
    cache row is): the canary any escape would create never appears."""
    import os

    if os.path.exists(CANARY):
        os.remove(CANARY)
    with pytest.raises(RefusedProgram, match=re.escape(named)) as refused:
        accepted(source)
    assert "line" in str(refused.value) or "characters" in str(refused.value) or "nodes" in str(refused.value) \
        or "function definitions" in str(refused.value)
    with pytest.raises(RefusedProgram, match=re.escape(named)):
        run(sandbox.Program("answer", PARAMS, BITS, source), [(1, 2)])
    assert not os.path.exists(CANARY)


def test_the_child_has_no_builtins_but_abs_min_max():
    rogue = sandbox.Program("answer", PARAMS, BITS, "def answer(x, y):\n    return len([x])")
    assert sandbox._spawn(rogue, [(1, 2)], timeout_s=10) == [None]  # NameError: no builtin but abs/min/max


def test_a_runaway_child_is_killed_after_its_time_limit():
    # spawned unchecked (the check would refuse the loop): the hard kill is the last line of defence
    spin = sandbox.Program("answer", PARAMS, BITS, "def answer(x, y):\n    while True:\n        x = x + 1")
    started = time.monotonic()
    # the wall-clock kill, or on a loaded machine the child's own CPU limit (same seconds) first
    with pytest.raises(RefusedProgram, match="ran past 2 s"):
        sandbox._spawn(spin, [(1, 2)], timeout_s=2)
    assert time.monotonic() - started < 6


# ---- 10,000 generated programs: whatever the checker accepts reaches nothing outside the whitelist --
SAFE_EXPR = ["x", "y", "1", "0", "7", "True", "x + y", "x - 3", "x * 2", "y // 2", "x % 5", "-x", "not y",
             "x < y", "x == 3 and y != 1", "x or y", "abs(x - y)", "min(x, y)", "max(x, y, 3)", "(x if y else 2)"]
HOSTILE_EXPR = ["__import__('os')", "x.real", "open('f')", "print(x)", "[x]", "(x,)", "{x: y}", "{x}", "x[0]",
                "lambda: x", "len(x)", "type(x)", "getattr(x, 'y')", "'s'", "f'{x}'", "x ** y", "x / y",
                "x << 2", "x @ y", "~x", "x in y", "x is y", "(z := x)", "globals()", "vars()", "dir()",
                "object", "__builtins__", "abs", "max(*x)", "min(x=1)", "1.5", "None", "b'x'", "...",
                "[i for i in x]", "(i for i in x)", "sum(x)", "eval('1')", "exec('1')", "compile", "x.__class__",
                "breakpoint()", "input()", "9999999999999999999999999"]
SAFE_STMT = ["z = {e}", "z += {e}", "return {e}", "if {e}:\n        return {e}\n    else:\n        z = {e}", "pass"]
HOSTILE_STMT = ["import os", "from os import system", "while {e}:\n        pass", "for i in x:\n        pass",
                "global z", "del x", "assert {e}", "raise ValueError", "with x:\n        pass",
                "try:\n        pass\n    except Exception:\n        pass", "{e}", "def f():\n        return 1",
                "class C:\n        pass", "x[0] = 1", "x.y = 1", "a, b = x, y", "nonlocal x", "yield x"]


def generate(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 6)):
        hostile = rng.random() < 0.15
        stmt = rng.choice(HOSTILE_STMT if hostile else SAFE_STMT)
        while "{e}" in stmt:
            pool = HOSTILE_EXPR if rng.random() < 0.1 else SAFE_EXPR
            stmt = stmt.replace("{e}", rng.choice(pool), 1)
        lines.append("    " + stmt)
    lines.append("    return z" if rng.random() < 0.5 else "    return x")
    header = rng.choice(["def answer(x, y):"] * 8 + ["@dec\ndef answer(x, y):", "def answer(x, y=1):",
                                                      "def answer(x, *y):", "import os\ndef answer(x, y):"])
    return header + "\n" + "\n".join(lines) + "\n"


def reaches_outside(source: str) -> str | None:
    """What an accepted program touches outside the whitelist, read from its own tree."""
    tree = ast.parse(source)
    [fn] = tree.body
    local = set(PARAMS) | {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(fn):
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Lambda, ast.Import, ast.ImportFrom, ast.While,
                             ast.For, ast.comprehension, ast.JoinedStr, ast.NamedExpr, ast.Global, ast.Yield)):
            return type(node).__name__
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in ALLOWED_CALLS):
            return "call"
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local | set(ALLOWED_CALLS):
            return f"name {node.id}"
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, bool)):
            return "constant"
        if isinstance(node, ast.BinOp) and not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
            return "operator"
    return None


def test_ten_thousand_generated_programs_accepted_ones_reach_nothing_outside_the_whitelist():
    rng = random.Random(0)
    started = time.monotonic()
    counts = {"accepted": 0, "refused": 0}
    for _ in range(10_000):
        source = generate(rng)
        try:
            program = accepted(source)
        except RefusedProgram:
            counts["refused"] += 1
            continue
        counts["accepted"] += 1
        assert reaches_outside(program.source) is None, source
    assert counts["accepted"] > 1000 and counts["refused"] > 1000, counts  # both sides are exercised
    assert time.monotonic() - started < 60
