"""The source files that shape a training run, and their hash: a checkpoint written by other code
is not resumed, and Snakemake reruns the runs when these files change."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).parent
#: Modules and packages (ending in /) that never change what a run computes: commands, the stages
#: after training, benchmarks, other views of the env.
NOT_TRAINING = ("__main__.py", "cli.py", "errors.py", "jobs.py", "provenance.py", "layout.py", "envs/gym.py",
                "evaluation/", "reporting/", "bench/")
#: Modules that shape only the runs whose parent is the LLM.
LLM_ONLY = frozenset(p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "parents" / "llm").glob("*.py"))


def training_sources(llm: bool = True) -> list[Path]:
    """The modules a training run executes; ``llm``: including the LLM parent's."""
    def skipped(name: str) -> bool:
        return name.startswith(NOT_TRAINING) or (not llm and name in LLM_ONLY)

    return sorted(p for p in PACKAGE.rglob("*.py") if not skipped(p.relative_to(PACKAGE).as_posix()))


def package_source(name: str) -> Path:
    """A module file of the package by its path inside it, e.g. ``"evaluation/sanity.py"``."""
    return PACKAGE / name


@lru_cache(maxsize=2)
def code_hash(llm: bool = True) -> str:
    """Hash of :func:`training_sources`: a checkpoint written by other code is never resumed."""
    digest = hashlib.sha256()
    for path in training_sources(llm):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


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
