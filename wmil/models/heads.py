"""Policy, world-model and value heads over the pooled state embedding ``h (n, hidden_dim)``."""

from __future__ import annotations

import torch
from torch import nn


class ActionHead(nn.Module):
    """Action logits ``(n, num_actions)``; small initial weights make the first policy near uniform."""

    def __init__(self, hidden_dim: int, num_actions: int):
        super().__init__()
        self.fc = nn.Linear(hidden_dim, num_actions)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


class WorldModelHead(nn.Module):
    """Predicts the raw next state (its one-hot encoding, ``(n, state_dim)``) from ``h`` and the
    action taken (Fix 2: a fixed target, not the drifting embedding). Without ``action_input`` it
    sees ``h`` alone (the answer-head control: a label, no dynamics); ``actions`` are then ignored."""

    def __init__(self, hidden_dim: int, num_actions: int, state_dim: int, action_input: bool = True):
        super().__init__()
        self.action_embed = nn.Embedding(num_actions, hidden_dim) if action_input else None
        width = 2 * hidden_dim if action_input else hidden_dim
        self.predictor = nn.Sequential(nn.Linear(width, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, state_dim))

    def forward(self, h: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.action_embed is None:
            return self.predictor(h)
        return self.predictor(torch.cat([h, self.action_embed(actions)], dim=-1))


class ValueHead(nn.Module):
    """State value ``(n,)``."""

    def __init__(self, hidden_dim: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(hidden_dim, hidden_dim // 2), nn.ReLU(), nn.Linear(hidden_dim // 2, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h).squeeze(-1)
