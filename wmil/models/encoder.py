"""Slot-token state encoder."""

from __future__ import annotations

import torch
from torch import nn


class StateEncoder(nn.Module):
    """Each slot becomes one token: embedding of its value + embedding of the slot, after a
    learned summary token. ``(n, num_slots)`` long -> ``(n, num_slots + 1, hidden_dim)``."""

    offsets: torch.Tensor  # a buffer (moves with the module), declared for the type checker

    def __init__(self, cardinalities: torch.Tensor, offsets: torch.Tensor, hidden_dim: int):
        """``cardinalities`` and ``offsets`` ``(num_slots,)``: each slot's value count and the
        start of its values in the shared embedding table (``Task.slot_offsets``)."""
        super().__init__()
        self.register_buffer("offsets", offsets.clone(), persistent=False)
        self.value_embed = nn.Embedding(int(cardinalities.sum()), hidden_dim)
        self.slot_embed = nn.Parameter(torch.randn(len(cardinalities), hidden_dim) * 0.02)
        self.summary_token = nn.Parameter(torch.randn(1, 1, hidden_dim) * 0.02)
        nn.init.normal_(self.value_embed.weight, std=0.02)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        tokens = self.value_embed(states + self.offsets) + self.slot_embed
        return torch.cat([self.summary_token.expand(states.shape[0], -1, -1), tokens], dim=1)
