"""Programs an LLM writes, checked and run as untrusted data.

The ``program`` protocol asks the LLM for the task's rule as one small Python function over the
problem slots (``def answer(target): ...``). Its text is never executed as such:

1. :func:`check` parses it with :mod:`ast` and accepts only a whitelist: one function definition
   whose arguments are exactly the slot names; ``if/elif/else``, ``return``, ``pass``, assignment
   (plain or augmented) to local names; int and bool constants; ``+ - * // %``, unary ``-``/``+``,
   comparisons, ``and/or/not``, conditional expressions; calls of ``abs``, ``min`` and ``max``
   only. Anything else is refused with a message naming the construct and its line. A docstring is
   dropped from the tree (it would be a string), never run.
2. Size is bounded before anything runs: the source length, the number of tree nodes and, by a
   static bound over the (loop-free) program, the bit length of every intermediate value; a
   program whose values may grow past :data:`MAX_BITS` bits is refused, so no huge multiplication
   can start.
3. :func:`run` checks the program again (whatever handed it over: a fresh answer, or a replayed
   row of the response cache, which is a file anyone can edit) and only then compiles the checked
   tree and calls it in a child process (``python -I -S``, no site-packages) that first caps its
   own memory, CPU time, file writes and processes, with globals whose builtins are exactly
   ``abs``, ``min`` and ``max``; the parent kills it after ``timeout_s``. The check is the
   boundary: reduced builtins stop names, not attribute chains such as ``().__class__``, which
   only the check refuses.

The parent then keeps the results as a table over the whole slot grid, applied by tensor indexing
(:mod:`~wmil.parents.llm.programs`): the child runs once per program, never per step.
"""

from __future__ import annotations

import ast
import json
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

ALLOWED_CALLS = ("abs", "min", "max")
MAX_SOURCE_CHARS = 4000
MAX_NODES = 400
MAX_BITS = 64
RUN_TIMEOUT_S = 20.0
CHILD_MEMORY_BYTES = 512 * 2**20

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%"}
_UNARY = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


class RefusedProgram(ValueError):
    """A program outside the whitelist or the size caps; the message names the construct and line."""


@dataclass(frozen=True)
class Program:
    """A program: function ``name`` over ``params`` (each argument's bit length ``param_bits``);
    from :func:`check`, ``source`` is the checked tree unparsed (docstring and comments gone)."""

    name: str
    params: tuple[str, ...]
    param_bits: tuple[int, ...]
    source: str


def extract_code(text: str) -> str:
    """The first fenced code block of an LLM's answer, or the whole answer when it has none."""
    found = _FENCE.search(text)
    return found.group(1) if found else text


def _describe(node: ast.AST) -> str:
    """A construct's name as a reader knows it."""
    names = {ast.Import: "import", ast.ImportFrom: "import", ast.Attribute: "attribute access",
             ast.Subscript: "subscript", ast.While: "while loop", ast.For: "for loop", ast.AsyncFor: "for loop",
             ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
             ast.DictComp: "comprehension", ast.GeneratorExp: "generator expression", ast.JoinedStr: "f-string",
             ast.FormattedValue: "f-string", ast.NamedExpr: "walrus (:=)", ast.Global: "global",
             ast.Nonlocal: "nonlocal", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Await: "await",
             ast.With: "with", ast.Try: "try", ast.Raise: "raise", ast.ClassDef: "class definition",
             ast.Delete: "del", ast.Assert: "assert", ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict",
             ast.Set: "set", ast.Starred: "starred expression", ast.Match: "match", ast.AsyncFunctionDef: "async def"}
    return names.get(type(node), type(node).__name__)


def _refuse(what: str, node: object = None) -> RefusedProgram:
    line = getattr(node, "lineno", None)
    return RefusedProgram(f"{what} (line {line})" if line else what)


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


class _Checker:
    """Walks the function body in order with each local's bit-length bound (no loops, so one pass
    in program order bounds every value; branches merge by the larger bound)."""

    def __init__(self, params: Sequence[str], param_bits: Sequence[int]):
        self.params = set(params)
        self.env: dict[str, int] = dict(zip(params, param_bits))

    # ---- statements -----------------------------------------------------------------------------
    def block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Return):
            if node.value is None:
                raise _refuse("return without a value", node)
            self.expr(node.value)
        elif isinstance(node, ast.Pass):
            pass
        elif isinstance(node, ast.If):
            self.expr(node.test)
            before = dict(self.env)
            self.block(node.body)
            then = self.env
            self.env = dict(before)
            self.block(node.orelse)
            for name, bits in then.items():
                self.env[name] = max(bits, self.env.get(name, 0))
        elif isinstance(node, ast.Assign):
            bits = self.expr(node.value)
            for target in node.targets:
                self.env[self.store(target)] = bits
        elif isinstance(node, ast.AugAssign):
            name = self.store(node.target)
            if name not in self.env:
                raise _refuse(f"name {name!r} is used before it is assigned", node)
            self.env[name] = self.bounded(self.binary(node.op, self.env[name], self.expr(node.value), node), node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Yield, ast.YieldFrom, ast.Await)):
            raise _refuse(f"{_describe(node.value)} (a generator or coroutine)", node)
        elif isinstance(node, ast.Expr):
            raise _refuse("expression statement (only if/elif/else, return, pass and assignments are allowed)", node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            raise _refuse("nested function", node)
        else:
            raise _refuse(_describe(node), node)

    def store(self, target: ast.expr) -> str:
        if not isinstance(target, ast.Name):
            raise _refuse(f"assignment to a {_describe(target)} (only to local names)", target)
        self.name_allowed(target.id, target)
        if target.id in ALLOWED_CALLS:
            raise _refuse(f"assignment to {target.id!r}, a whitelisted function", target)
        return target.id

    @staticmethod
    def name_allowed(name: str, node: ast.AST) -> None:
        if name.startswith("__") or name.endswith("__"):
            raise _refuse(f"dunder name {name!r}", node)

    # ---- expressions: each returns a bound on its value's bit length ----------------------------
    def expr(self, node: ast.expr) -> int:
        return self.bounded(self._expr(node), node)

    @staticmethod
    def bounded(bits: int, node: ast.AST) -> int:
        if bits > MAX_BITS:
            raise _refuse(f"a value that may need more than {MAX_BITS} bits ({ast.unparse(node)[:60]})", node)
        return bits

    def binary(self, op: ast.operator, a: int, b: int, node: ast.AST) -> int:
        if type(op) not in _BINARY:
            symbol = {ast.Pow: "**", ast.Div: "/", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&",
                      ast.BitOr: "|", ast.BitXor: "^", ast.MatMult: "@"}.get(type(op), type(op).__name__)
            raise _refuse(f"operator {symbol}", node)
        if isinstance(op, (ast.Add, ast.Sub)):
            return max(a, b) + 1
        if isinstance(op, ast.Mult):
            return a + b
        if isinstance(op, ast.FloorDiv):
            return a  # |a // b| <= |a| for b != 0 (b == 0 raises: that state's answer is invalid)
        return b  # |a % b| < |b|

    def _expr(self, node: ast.expr) -> int:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return 1
            if not isinstance(value, int):
                kind = "string" if isinstance(value, (str, bytes)) else type(value).__name__
                raise _refuse(f"{kind} constant {value!r:.40}", node)
            if value.bit_length() > MAX_BITS:
                raise _refuse(f"huge literal ({value.bit_length()} bits; at most {MAX_BITS})", node)
            return max(1, value.bit_length())
        if isinstance(node, ast.Name):
            self.name_allowed(node.id, node)
            if node.id not in self.env:
                what = "a call target only" if node.id in ALLOWED_CALLS else "not an argument or an assigned local"
                raise _refuse(f"name {node.id!r} ({what})", node)
            return self.env[node.id]
        if isinstance(node, ast.BinOp):
            return self.binary(node.op, self.expr(node.left), self.expr(node.right), node)
        if isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise _refuse("operator ~", node)
            bits = self.expr(node.operand)
            return 1 if isinstance(node.op, ast.Not) else bits
        if isinstance(node, ast.BoolOp):  # and/or give one of their operands
            return max(self.expr(v) for v in node.values)
        if isinstance(node, ast.Compare):
            for op in node.ops:
                if not isinstance(op, _COMPARE):
                    raise _refuse(f"comparison {type(op).__name__} (only == != < <= > >=)", node)
            for operand in (node.left, *node.comparators):
                self.expr(operand)
            return 1
        if isinstance(node, ast.IfExp):
            self.expr(node.test)
            return max(self.expr(node.body), self.expr(node.orelse))
        if isinstance(node, ast.Call):
            return self.call(node)
        raise _refuse(_describe(node), node)

    def call(self, node: ast.Call) -> int:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in ALLOWED_CALLS:
            callee = (repr(func.id) if isinstance(func, ast.Name) else f"the attribute .{func.attr}"
                      if isinstance(func, ast.Attribute) else f"a {_describe(func).lower()}")
            raise _refuse(f"call of {callee} (only {', '.join(ALLOWED_CALLS)})", node)
        if func.id in self.env:  # pragma: no cover - store() refuses assigning these names
            raise _refuse(f"{func.id!r} was reassigned", node)
        if node.keywords:
            raise _refuse(f"keyword argument in a call of {func.id!r}", node)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse(f"starred argument in a call of {func.id!r}", node)
        bits = [self.expr(a) for a in node.args]
        arity_ok = len(bits) == 1 if func.id == "abs" else len(bits) >= 2
        if not arity_ok:
            need = "exactly one argument" if func.id == "abs" else "at least two arguments"
            raise _refuse(f"{func.id}() takes {need} here", node)
        return max(bits)


def check(source: str, name: str, params: Sequence[str], param_bits: Sequence[int]) -> Program:
    """``source`` as a :class:`Program` if it is one whitelisted function ``name(*params)`` whose
    every value fits :data:`MAX_BITS` bits given each argument's bit length ``param_bits``; else
    :class:`RefusedProgram` naming the construct and line."""
    if len(source) > MAX_SOURCE_CHARS:
        raise RefusedProgram(f"program of {len(source)} characters (at most {MAX_SOURCE_CHARS})")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise _refuse(f"syntax error: {exc.msg}", exc) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        raise RefusedProgram(f"unparsable program: {type(exc).__name__}") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise RefusedProgram(f"program of {count} syntax-tree nodes (at most {MAX_NODES})")
    body = _strip_docstring(tree.body)
    functions = [n for n in body if isinstance(n, ast.FunctionDef)]
    other = [n for n in body if not isinstance(n, ast.FunctionDef)]
    if other:
        raise _refuse(f"{_describe(other[0])} outside the function (the answer must be one function definition)",
                      other[0])
    if len(functions) != 1:
        raise RefusedProgram(f"{len(functions)} function definitions (exactly one, def {name}(...), is wanted)")
    fn = functions[0]
    if fn.name != name:
        raise _refuse(f"function {fn.name!r} (it must be called {name!r})", fn)
    if fn.decorator_list:
        raise _refuse("decorator", fn.decorator_list[0])
    if fn.returns is not None:
        raise _refuse("return annotation", fn)
    a = fn.args
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.kw_defaults:
        raise _refuse("arguments other than the slot names (no *args, keyword-only or **kwargs)", fn)
    if a.defaults:
        raise _refuse("default argument value", a.defaults[0])
    annotated = [arg for arg in a.args if arg.annotation is not None]
    if annotated:
        raise _refuse(f"annotation of argument {annotated[0].arg!r}", annotated[0])
    got = tuple(arg.arg for arg in a.args)
    if got != tuple(params):
        raise _refuse(f"arguments ({', '.join(got)}); they must be ({', '.join(params)})", fn)
    fn.body = _strip_docstring(fn.body) or [ast.Pass()]
    _Checker(params, param_bits).block(fn.body)
    checked = ast.Module(body=[fn], type_ignores=[])
    return Program(name, tuple(params), tuple(param_bits), ast.unparse(ast.fix_missing_locations(checked)))


#: The child's code (trusted, ours): cap memory, CPU seconds and file writes, compile the checked
#: source with builtins reduced to abs/min/max, call it on every input, print the results as JSON
#: (``null`` where a call raised or returned something that is neither int nor bool).
_RUNNER = """
import json, resource, sys
job = json.load(sys.stdin)
resource.setrlimit(resource.RLIMIT_AS, (job["memory"], job["memory"]))
resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_s"], job["cpu_s"]))
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
scope = {"__builtins__": {"abs": abs, "min": min, "max": max}}
exec(compile(job["source"], "<llm program>", "exec"), scope)
fn = scope[job["name"]]
out = []
for args in job["inputs"]:
    try:
        value = fn(*args)
    except Exception:
        value = None
    out.append(value if type(value) in (int, bool) and -2**63 <= value < 2**63 else None)
sys.stdout.write(json.dumps(out))
"""


def run(program: Program, inputs: Sequence[Sequence[int]], timeout_s: float = RUN_TIMEOUT_S) -> list[int | bool | None]:
    """``program``, checked again, called on each argument tuple of ``inputs`` in a child process:
    its results (int or bool; None where the call raised or returned anything else). Raises
    :class:`RefusedProgram` when the check refuses it or the child runs out of time or memory."""
    checked = check(program.source, program.name, program.params, program.param_bits)
    return _spawn(checked, inputs, timeout_s)


def _spawn(program: Program, inputs: Sequence[Sequence[int]], timeout_s: float) -> list[int | bool | None]:
    """The child process of :func:`run`, for a checked ``program``."""
    args = [list(map(int, x)) for x in inputs]
    job = {"source": program.source, "name": program.name, "inputs": args,
           "memory": CHILD_MEMORY_BYTES, "cpu_s": max(1, int(timeout_s))}
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _RUNNER], input=json.dumps(job),
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child (SIGKILL)
        raise RefusedProgram(f"program {program.name!r} ran past {timeout_s:g} s on {len(args)} inputs") from None
    if done.returncode in (-signal.SIGKILL, -signal.SIGXCPU):  # its own CPU limit stopped it first
        raise RefusedProgram(f"program {program.name!r} ran past {timeout_s:g} s of CPU on {len(args)} inputs "
                             f"(stopped by signal {-done.returncode})")
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise RefusedProgram(f"program {program.name!r} failed in its sandbox: {tail[0][:200]}")
    results = json.loads(done.stdout)
    if len(results) != len(args):
        raise RefusedProgram(f"program {program.name!r}: {len(results)} results for {len(args)} inputs")
    return results
