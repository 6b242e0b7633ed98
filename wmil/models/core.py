"""The from-scratch transformer backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + ff(norm(x))``.

    Written out rather than ``nn.TransformerEncoderLayer``: on a few tokens and one CPU thread the
    library layer's Python overhead costs more than its arithmetic."""

    def __init__(self, hidden_dim: int, num_heads: int, ff_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.qkv = nn.Linear(hidden_dim, 3 * hidden_dim)
        self.proj = nn.Linear(hidden_dim, hidden_dim)
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.ff = nn.Sequential(nn.Linear(hidden_dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, hidden_dim))

    def forward(self, x: torch.Tensor, summary_only: bool = False) -> torch.Tensor:
        """``(n, t, d)`` -> ``(n, t, d)``, or ``(n, 1, d)`` for the summary token alone: the last
        block needs no other outputs, which saves about a third of the model's arithmetic."""
        n, t, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        if summary_only:
            x, q = x[:, :1], q[:, :, :1]
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, x.shape[1], d)
        x = x + self.proj(attended)
        return x + self.ff(self.norm2(x))


class TransformerCore(nn.Module):
    """Stack of pre-norm blocks, no dropout (updates must be deterministic and on-policy).
    ``(n, tokens, d)`` -> the summary token's output ``(n, d)``, layer-normed."""

    def __init__(self, hidden_dim: int, num_layers: int, num_heads: int, ff_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(Block(hidden_dim, num_heads, ff_dim) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, summary_only=i == last)
        return self.norm(tokens[:, 0])
