"""Shared test setup: one torch thread (the machine is small and the model is tiny)."""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS_PATH = REPO_ROOT / "params.yaml"


@pytest.fixture(scope="session")
def params():
    """``params.yaml`` of the repository, loaded and validated once."""
    from wmil.config import load_params

    return load_params(PARAMS_PATH)
