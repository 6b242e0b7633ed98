"""The policy's entropy: the bonus both algorithms add to their loss, the ``entropy`` they log and
the one evaluation reports come from this one formula."""

from __future__ import annotations

import torch


def policy_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy ``-sum_a pi(a|s) log pi(a|s)`` in nats (0-d) of a batch of the policy's
    ``log_probs (n, A)``."""
    return -(log_probs.exp() * log_probs).sum(-1).mean()
