"""The code a job runs, and its hash: a checkpoint written by other code is not resumed, and
Snakemake reruns a job when (and only when) the code it runs changed.

A job's code is the static import closure of its entry modules inside the package: every ``wmil``
import, those inside functions included (a lazy import runs when called), less ``if __name__ ==
"__main__":`` blocks (entry points) and ``if TYPE_CHECKING:`` blocks (never run). Each module counts
by its syntax tree without docstrings and positions, so that a comment, a docstring or a moved line
changes no hash. A registry offers alternatives of which a run uses one (an algorithm, a parent):
the modules of the choices it does not make are cut from its closure (:data:`COMPONENT_CODE`;
tests check it against the registries, and that only a registry imports them)."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).parent
#: Loaded by name from the task registry (``"module:Class"`` strings), which no import shows:
#: always part of a closure that reaches the registry.
LOADED_BY_NAME = ("tasks/",)
#: The modules that only one choice of a component runs: ``(component, choice) -> paths`` inside the
#: package (a folder: every module in it). A run's code leaves out those of the choices it does not
#: make. Every choice of the registries is listed (tests check it), also those without modules of
#: their own.
COMPONENT_CODE: dict[tuple[str, str], tuple[str, ...]] = {
    ("algorithm", "reinforce"): ("training/reinforce.py",),
    ("algorithm", "ppo"): ("training/ppo.py",),
    ("algorithm", "random"): ("training/random_policy.py",),
    ("parent", "deterministic"): (),
    ("parent", "llm"): ("parents/llm/",),
}
#: The entry module of a training run (its held-out evaluation is apart: a change to it re-evaluates
#: finished runs, it never retrains them).
TRAINING_ENTRY = "training/trainer.py"
#: The entry module of held-out evaluation (the rule parent judges it: never the LLM parent's code).
EVALUATION_ENTRY = "evaluation/held_out.py"
#: The stages whose modules compute results (the code a report was made with).
RESULT_STAGES = ("training/", "evaluation/", "reporting/")


def module_file(name: str) -> str:
    """``wmil.a.b`` -> the path of its module inside the package (``a/b.py`` or ``a/b/__init__.py``)."""
    parts = name.split(".")[1:]
    if not parts:
        return "__init__.py"
    path = "/".join(parts)
    return f"{path}/__init__.py" if (PACKAGE / path).is_dir() else f"{path}.py"


def _is_main_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":``: an entry point, not a dependency."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _is_type_checking_block(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:``: read by type checkers, never run."""
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def wmil_imports(path: Path, type_checking: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a wmil module in ``path`` (``from wmil.a import b``
    names ``wmil.a.b`` where ``b`` is a module), ``__main__`` blocks left out, and ``if
    TYPE_CHECKING:`` blocks unless ``type_checking``."""
    tree = ast.parse(path.read_text(), str(path))
    skipped = {id(n) for block in ast.walk(tree)
               if _is_main_block(block) or (not type_checking and _is_type_checking_block(block))
               for n in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "wmil":
            folder = PACKAGE / module_file(node.module).removesuffix("__init__.py")
            found += [(node.lineno, f"{node.module}.{a.name}" if (folder / f"{a.name}.py").exists()
                       or (folder / a.name).is_dir() else node.module) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "wmil"]
    return found


def _with_packages(module: str) -> list[str]:
    """``module`` and the ``__init__.py`` of every package above it (importing it runs them)."""
    parts = module.split("/")
    return [*(f"{'/'.join(parts[:i])}/__init__.py".lstrip("/") for i in range(len(parts))), module]


def _matches(module: str, paths: Iterable[str]) -> bool:
    return any(module == p or (p.endswith("/") and module.startswith(p)) for p in paths)


@cache
def closure(entries: tuple[str, ...], excluded: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every module (path inside the package) that importing ``entries`` may run, never following
    an import into ``excluded`` (paths; a folder: its modules), sorted."""
    seen: set[str] = set()
    todo = [m for e in entries for m in _with_packages(e)]
    while todo:
        module = todo.pop()
        if module in seen or _matches(module, excluded):
            continue
        seen.add(module)
        todo += [m for _, name in wmil_imports(PACKAGE / module) for m in _with_packages(module_file(name))]
        if _matches(module, LOADED_BY_NAME):
            todo += [p.relative_to(PACKAGE).as_posix() for folder in LOADED_BY_NAME for p in (PACKAGE / folder).glob("*.py")]
    return tuple(sorted(seen))


def _code_of(module: str) -> str:
    """The syntax tree of a module without its docstrings, positions or comments."""
    tree = ast.parse((PACKAGE / module).read_text(), module)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


@cache
def code_hash(entries: tuple[str, ...], excluded: tuple[str, ...] = ()) -> str:
    """Hash of the code :func:`closure` finds: each module's path and syntax tree."""
    digest = hashlib.sha256()
    for module in closure(entries, excluded):
        digest.update(module.encode() + b"\0" + _code_of(module).encode() + b"\0")
    return digest.hexdigest()[:16]


def unused_components(**choices: str) -> tuple[str, ...]:
    """The modules of the choices of :data:`COMPONENT_CODE` not made in ``choices`` (component ->
    choice, e.g. ``algorithm="ppo", parent="deterministic"``); a component not named keeps all."""
    unknown = set(choices.items()) - set(COMPONENT_CODE)
    if unknown:
        raise ValueError(f"no code listed for {sorted(unknown)} in provenance.COMPONENT_CODE")
    return tuple(sorted({path for (component, name), paths in COMPONENT_CODE.items()
                         if component in choices and choices[component] != name for path in paths}))


def training_code_hash(algorithm: str, parent: str) -> str:
    """Hash of the code a training run with this ``algorithm`` and ``parent`` runs."""
    return code_hash((TRAINING_ENTRY,), unused_components(algorithm=algorithm, parent=parent))


def evaluation_code_hash() -> str:
    """Hash of the code held-out evaluation runs."""
    return code_hash((EVALUATION_ENTRY,), unused_components(parent="deterministic"))


def results_code_hash() -> str:
    """Hash of every module that computes a result: the training, evaluation and reporting stages
    and what they import (the code the report names)."""
    entries = tuple(sorted(p.relative_to(PACKAGE).as_posix() for stage in RESULT_STAGES
                           for p in (PACKAGE / stage).glob("*.py")))
    return code_hash(entries)


def machine() -> dict[str, str]:
    """Where results were made: the CPU (model name, and family and model numbers: "AMD EPYC" alone
    names several generations), the vector instructions torch's kernels use, the BLAS kernels
    NumPy's OpenBLAS picked for this CPU (what k-means, the probes and t-SNE compute with), Python
    and the versions of the libraries that compute them (float kernels differ between CPUs, so RL
    trajectories diverge between machines: ``wmil verify`` then checks statistical equivalence)."""
    import importlib.metadata
    import platform

    import numpy  # noqa: F401  (loads the OpenBLAS that threadpoolctl describes)
    import threadpoolctl
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        cpu = f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
    except (OSError, KeyError):
        pass
    blas = next((f"{lib['internal_api']} {lib.get('architecture')}" for lib in threadpoolctl.threadpool_info()
                 if lib["user_api"] == "blas"), "unknown")
    versions = {}
    for name in ("torch", "numpy", "scipy", "scikit-learn", "rliable", "llama_cpp_python", "openai"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"cpu": cpu, "architecture": platform.machine(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "blas": blas, "python": platform.python_version(), **versions}
