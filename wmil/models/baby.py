"""The baby: encoder -> transformer -> action / world-model / value heads."""

from __future__ import annotations

import torch
from torch import nn

from wmil.config import ModelConfig
from wmil.envs.tasks import Task
from wmil.models.core import TransformerCore
from wmil.models.encoder import StateEncoder
from wmil.models.heads import ActionHead, ValueHead, WorldModelHead


class BabyModel(nn.Module):
    """A randomly initialised transformer for one task. The world-model head is switched by
    ``config.world_model`` (the RL-only baseline has none); the value head exists when the
    algorithm needs one."""

    def __init__(self, task: Task, config: ModelConfig, value_head: bool = False):
        super().__init__()
        d = config.hidden_dim
        self.encoder = StateEncoder(task.cardinalities, task.slot_offsets, d)
        self.transformer = TransformerCore(d, config.num_layers, config.num_heads, config.ff_dim)
        self.action_head = ActionHead(d, task.num_actions)
        self.value_head = ValueHead(d) if value_head else None
        # built last, so that with the same seed a model without it (the RL-only ablation) starts
        # with exactly the same encoder, core, policy and value weights
        self.world_model = WorldModelHead(d, task.num_actions, task.one_hot_dim) if config.world_model else None

    def get_state_embedding(self, states: torch.Tensor) -> torch.Tensor:
        """``(n, num_slots)`` long -> ``(n, hidden_dim)``."""
        return self.transformer(self.encoder(states))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Returns ``(h (n, d), action logits (n, A), value (n,) or None)``."""
        h = self.get_state_embedding(states)
        value = self.value_head(h) if self.value_head is not None else None
        return h, self.action_head(h), value

    def predict_next_state(self, h: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Predicted raw next state ``(n, one_hot_dim)`` from embeddings ``h`` and ``actions``."""
        if self.world_model is None:
            raise RuntimeError("this model has no world-model head (model.world_model: false)")
        return self.world_model(h, actions)

    def predict_next_state_raw(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.predict_next_state(self.get_state_embedding(states), actions)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
