"""PPO with GAE, clipped surrogate, value loss, entropy bonus and the world-model loss."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from wmil.config import AlgorithmConfig
from wmil.models.baby import BabyModel
from wmil.tasks.rules import Task
from wmil.training.auxiliary import add_auxiliary_losses, distillation_targets, gradient_step
from wmil.training.buffer import RolloutBatch, gae
from wmil.training.entropy import policy_entropy
from wmil.training.schedule import AT_START, Progress, apply_schedules


class PPO:
    """Clipped-surrogate PPO over ``epochs`` x ``minibatches`` of one rollout of whole episodes;
    with ``distill_coef > 0`` the loss adds ``distill_coef * KL(parent || policy)``.

    Logged: policy/value/world-model/total loss, entropy, approx-KL (``E[(r - 1) - log r]``),
    clip fraction, explained variance of the value targets, gradient norm."""

    needs_value: ClassVar[bool] = True

    def __init__(self, model: BabyModel, config: AlgorithmConfig, task: Task, generator: torch.Generator,
                 target_ema: float = 1.0):
        """``target_ema``: the decay of the model's target copy per gradient step (``model.target_ema``)."""
        self.model, self.config, self.task, self.target_ema = model, config, task, target_ema
        self.generator = generator  # minibatch shuffling
        self.optimizer = torch.optim.Adam(model.trainable_parameters(), lr=config.lr, eps=1e-5, fused=True)

    def update(self, batch: RolloutBatch, progress: Progress = AT_START) -> dict[str, float]:
        """One rollout of whole episodes; ``progress`` (through the budget) sets the scheduled
        learning rate and entropy bonus."""
        cfg = self.config
        lr, entropy_coef = apply_schedules(self.optimizer, cfg, progress)
        advantages, returns = gae(batch.rewards, batch.values, batch.dones, torch.zeros_like(batch.values[0]),
                                  cfg.gamma, cfg.gae_lambda)
        states, next_states = batch.states.flatten(0, 1), batch.next_states.flatten(0, 1)
        actions, old_log_probs = batch.actions.flatten(), batch.log_probs.flatten()
        advantages, returns, old_values = advantages.flatten(), returns.flatten(), batch.values.flatten()
        parent_probs = distillation_targets(batch, cfg)
        size = len(actions)  # a multiple of minibatches (validated), so the chunks are equal
        sums: dict[str, float] = {}
        for _ in range(cfg.epochs):
            for idx in torch.randperm(size, generator=self.generator).chunk(cfg.minibatches):
                h, logits, values = self.model(states[idx])
                log_probs = F.log_softmax(logits, -1)
                log_ratio = log_probs.gather(1, actions[idx, None]).squeeze(1) - old_log_probs[idx]
                ratio = log_ratio.exp()
                adv = advantages[idx]
                if cfg.normalize_advantages and len(idx) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                # -- policy: the clipped surrogate
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_eps, 1 + cfg.clip_eps)).mean()
                # -- value: regression on the GAE returns
                value_loss = 0.5 * ((values - returns[idx]) ** 2).mean()
                # -- entropy bonus
                entropy = policy_entropy(log_probs)
                loss = policy_loss + cfg.value_coef * value_loss - entropy_coef * entropy
                # -- world model and distillation
                aux = add_auxiliary_losses(loss, self.model, cfg, self.task, h, log_probs, actions[idx],
                                           next_states[idx], None if parent_probs is None else parent_probs[idx])
                grad_norm = gradient_step(self.model, self.optimizer, aux.loss, cfg.max_grad_norm, self.target_ema)
                with torch.no_grad():
                    stats = {"policy_loss": policy_loss, "value_loss": value_loss, "world_model_loss": aux.world_model,
                             "embedding_loss": aux.embedding, "loss": aux.loss, "entropy": entropy,
                             "grad_norm": grad_norm, "distill_loss": aux.distill,
                             "approx_kl": ((ratio - 1) - log_ratio).mean(),
                             "clip_frac": ((ratio - 1).abs() > cfg.clip_eps).float().mean()}
                for key, value in stats.items():
                    sums[key] = sums.get(key, 0.0) + value.item()
        out = {key: value / (cfg.epochs * cfg.minibatches) for key, value in sums.items()}
        out["learning_rate"] = lr
        variance = returns.var()
        out["explained_variance"] = float(1 - (returns - old_values).var() / variance) if variance > 0 else float("nan")
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
