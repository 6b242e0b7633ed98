"""What both learning algorithms add to their own loss, and the gradient step they share.

The auxiliary losses: the world model's (raw next state, or its embedding after the switch) and
distillation towards the parent. They are added to the algorithm's loss one by one, in a fixed
order, so that a run computes exactly the same floats whichever algorithm carries it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmil.config import AlgorithmConfig
from wmil.models.baby import BabyModel
from wmil.tasks.rules import Task
from wmil.training.buffer import RolloutBatch
from wmil.training.distill import kl_to_parent
from wmil.training.rewards import prediction_mse


@dataclass
class AuxiliaryLosses:
    """The loss with the auxiliary terms added, and each term unweighted (0-d tensors)."""

    loss: torch.Tensor
    world_model: torch.Tensor  # raw next-state MSE per one-hot dimension (0 without a world model)
    embedding: torch.Tensor    # embedding-target error per dimension (NaN before the switch or without one)
    distill: torch.Tensor      # KL(parent || policy), nats (0 without distillation)


def add_auxiliary_losses(loss: torch.Tensor, model: BabyModel, config: AlgorithmConfig, task: Task,
                         h: torch.Tensor, log_probs: torch.Tensor, actions: torch.Tensor,
                         next_states: torch.Tensor, parent_probs: torch.Tensor | None) -> AuxiliaryLosses:
    """``loss + world_model_coef * (raw [+ embedding]) + distill_coef * KL``; ``h (n, d)`` and
    ``log_probs (n, A)`` from the model on the states whose ``actions (n,)`` led to
    ``next_states (n, num_slots)``; ``parent_probs (n, A)`` or None (no distillation)."""
    world_model = distill = torch.zeros(())
    embedding = torch.full((), float("nan"))
    if model.world_model is not None:
        # after the switch the raw head still learns, but as a readout of detached embeddings: its
        # error stays the prediction reward and the logged MSE, while the representation is shaped
        # by the self-predictive loss alone
        # detached (model.world_model_detached), the head learns to predict but the encoder and core
        # get no gradient from it: a better reward (the prediction bonus) without a better representation
        readout = h.detach() if model.predicts_embeddings or model.world_model_detached else h
        world_model = prediction_mse(task, model.predict_next_state(readout, actions), next_states).mean()
        loss = loss + config.world_model_coef * world_model
        if model.predicts_embeddings:
            embedding = model.embedding_prediction_error(h, actions, next_states).mean()
            loss = loss + config.world_model_coef * embedding
    if parent_probs is not None:
        distill = kl_to_parent(parent_probs, log_probs)
        loss = loss + config.distill_coef * distill
    return AuxiliaryLosses(loss, world_model, embedding, distill)


def distillation_targets(batch: RolloutBatch, config: AlgorithmConfig) -> torch.Tensor | None:
    """The parent's action distributions ``(T * N, A)`` of ``batch``, time-major like the
    algorithms' other flattened fields; None without distillation (``distill_coef`` 0)."""
    if config.distill_coef <= 0:
        return None
    if batch.parent_probs is None:
        raise ValueError("distill_coef > 0 needs a rollout that kept the parent's action distributions")
    return batch.parent_probs.flatten(0, 1)


def gradient_step(model: BabyModel, optimizer: torch.optim.Optimizer, loss: torch.Tensor, max_grad_norm: float,
                  target_ema: float) -> torch.Tensor:
    """Backpropagate ``loss``, clip the gradient norm, step, then move the target copy (if any)
    towards the new weights. Returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # the optimizer's own list: walking the module tree for it on every step costs ~4% of a PPO update
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm, foreach=True)
    optimizer.step()
    model.update_target(target_ema)
    return grad_norm
