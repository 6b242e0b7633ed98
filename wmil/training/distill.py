"""Distillation towards the parent (the ``kl_distill`` baseline)."""

from __future__ import annotations

import torch


def kl_to_parent(parent_probs: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """Mean ``KL(parent || policy)`` in nats over a batch: ``parent_probs (n, A)``, the policy's
    ``log_probs (n, A)``. Actions the parent gives probability 0 contribute nothing (0 log 0 = 0)."""
    parent_log = torch.where(parent_probs > 0, parent_probs.clamp_min(1e-12).log(), torch.zeros_like(parent_probs))
    return (parent_probs * (parent_log - log_probs)).sum(-1).mean()
