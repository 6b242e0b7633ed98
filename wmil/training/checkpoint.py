"""Checkpoints: atomic writes, safe loads (``weights_only=True``) and clear errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from wmil import atomic
from wmil.errors import CheckpointError

FORMAT_VERSION = 1


def canonical(obj: Any) -> Any:
    """``obj`` with every dict, list and tuple rebuilt and every string interned. Pickle writes a
    back-reference where it meets an object a second time, so the bytes of a checkpoint depend on
    which equal objects are one object: a resumed run's (whose strings came from unpickling) would
    differ from an uninterrupted run's, and DVC hashes the file. Rebuilt, equal states pickle alike."""
    if isinstance(obj, dict):
        return {canonical(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(canonical(v) for v in obj)
    if isinstance(obj, str):
        return sys.intern(obj)
    return obj


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically, as the same bytes whenever the state is equal (:func:`canonical`)."""
    atomic.save_torch(path, canonical({"format_version": FORMAT_VERSION, **state}))


def load_checkpoint(path: Path, fingerprint: str | None = None, code: str | None = None) -> dict[str, Any]:
    """Load ``path``; a given ``fingerprint`` (config) and ``code`` (training sources) hash must
    match the checkpoint's."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on damaged bytes; all mean "corrupt"
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a WMIL checkpoint of format version {FORMAT_VERSION}")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path}: checkpoint was written for a different configuration "
            f"(fingerprint {state.get('fingerprint')} != {fingerprint}); "
            "delete it or pass the run directory of the matching configuration"
        )
    if code is not None and state.get("code") != code:
        raise CheckpointError(
            f"{path}: checkpoint was written by different training code "
            f"(code hash {state.get('code')} != {code}); resuming would mix two versions"
        )
    return state
