"""The baby: encoder -> transformer -> action / world-model / value heads."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from wmil.config import ModelConfig
from wmil.models.core import TransformerCore
from wmil.models.encoder import StateEncoder
from wmil.models.heads import ActionHead, ValueHead, WorldModelHead
from wmil.tasks.rules import Task


class BabyModel(nn.Module):
    """A randomly initialised transformer for one task. The world-model head is switched by
    ``config.world_model`` (the RL-only baseline has none); the value head exists when the
    algorithm needs one.

    With ``config.world_model_target == "embedding"`` it also holds the self-predictive set-up of
    SPR/BYOL: a predictor of the next state's embedding and a target copy of the encoder and core,
    updated only as an exponential moving average of the online weights (``update_target``), never
    by gradients. ``embedding_target_on`` (a buffer, so it is saved with the weights) says whether
    the switch from the raw target has happened."""

    embedding_target_on: torch.Tensor  # a 0-d bool buffer, registered only with the embedding target

    def __init__(self, task: Task, config: ModelConfig, value_head: bool = False):
        super().__init__()
        d = config.hidden_dim
        self.encoder = StateEncoder(task.cardinalities, task.slot_offsets, d)
        self.transformer = TransformerCore(d, config.num_layers, config.num_heads, config.ff_dim)
        self.action_head = ActionHead(d, task.num_actions)
        self.value_head = ValueHead(d) if value_head else None
        # built last, so that with the same seed a model without it (the RL-only ablation) starts
        # with exactly the same encoder, core, policy and value weights
        self.world_model = None
        if config.world_model:
            # the answer head predicts only the problem slots, the first of the one-hot encoding
            answer = config.world_model_head == "answer"
            width = int(task.slot_offsets[task.num_problem_slots]) if answer else task.one_hot_dim
            self.world_model = WorldModelHead(d, task.num_actions, width, action_input=not answer)
        self.world_model_detached = config.world_model_detached
        self.embedding_predictor = None
        if config.world_model_target == "embedding":  # built after the rest, so it shifts no other initial weight
            self.embedding_predictor = WorldModelHead(d, task.num_actions, d)
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
            self.target_transformer = copy.deepcopy(self.transformer).requires_grad_(False)
            self.register_buffer("embedding_target_on", torch.tensor(False))

    def get_state_embedding(self, states: torch.Tensor) -> torch.Tensor:
        """``(n, num_slots)`` long -> ``(n, hidden_dim)``."""
        return self.transformer(self.encoder(states))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Returns ``(h (n, d), action logits (n, A), value (n,) or None)``."""
        h = self.get_state_embedding(states)
        value = self.value_head(h) if self.value_head is not None else None
        return h, self.action_head(h), value

    def predict_next_state(self, h: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Predicted raw next state ``(n, one_hot_dim)`` from embeddings ``h`` and ``actions`` (the
        answer head: its problem slots alone, the first columns of the encoding)."""
        if self.world_model is None:
            raise RuntimeError("this model has no world-model head (model.world_model: false)")
        return self.world_model(h, actions)

    @property
    def predicts_embeddings(self) -> bool:
        """Whether the world-model loss now targets the next state's embedding (after the switch)."""
        return self.embedding_predictor is not None and bool(self.embedding_target_on)

    def embedding_prediction_error(self, h: torch.Tensor, actions: torch.Tensor,
                                   next_states: torch.Tensor) -> torch.Tensor:
        """Per-sample ``(n,)`` squared error, averaged over the ``hidden_dim`` dimensions, between the
        L2-normalised predicted and target embeddings of the next states ``(n, num_slots)``:
        ``(2 - 2 cos) / hidden_dim``, so one ``world_model_coef`` weighs it like the raw target's
        per-dimension MSE. No gradient reaches the target."""
        if self.embedding_predictor is None:
            raise RuntimeError("this model has no embedding target (model.world_model_target: raw)")
        predicted = F.normalize(self.embedding_predictor(h, actions), dim=-1)
        with torch.no_grad():
            target = F.normalize(self.target_transformer(self.target_encoder(next_states)), dim=-1)
        return ((predicted - target) ** 2).mean(-1)

    @torch.no_grad()
    def update_target(self, ema: float) -> None:
        """``target <- ema * target + (1 - ema) * online`` for the encoder and core; a no-op without
        an embedding target."""
        if self.embedding_predictor is None:
            return
        for target, online in ((self.target_encoder, self.encoder), (self.target_transformer, self.transformer)):
            torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - ema)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimizer updates: every parameter but the target copy's."""
        return [p for p in self.parameters() if p.requires_grad]

    def num_parameters(self) -> int:
        """The model's size, the target copy (a moving average, not a learned part) left out."""
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("target_"))
