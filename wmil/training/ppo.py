"""PPO with GAE, clipped surrogate, value loss, entropy bonus and the world-model loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from wmil.config import AlgorithmConfig
from wmil.envs.tasks import Task
from wmil.models.baby import BabyModel
from wmil.training.buffer import gae
from wmil.training.distill import kl_to_parent
from wmil.training.rewards import prediction_mse
from wmil.training.schedule import scheduled


class PPO:
    """Clipped-surrogate PPO over ``epochs`` x ``minibatches`` of one rollout of whole episodes;
    with ``distill_coef > 0`` the loss adds ``distill_coef * KL(parent || policy)``.

    Logged: policy/value/world-model/total loss, entropy, approx-KL (``E[(r - 1) - log r]``),
    clip fraction, explained variance of the value targets, gradient norm."""

    needs_value = True

    def __init__(self, model: BabyModel, config: AlgorithmConfig, task: Task, generator: torch.Generator):
        self.model, self.config, self.task = model, config, task
        self.generator = generator  # minibatch shuffling
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-5, fused=True)

    def update(self, batch: dict[str, torch.Tensor], progress: float = 0.0) -> dict[str, float]:
        """``batch`` holds ``(T, N)`` rollout tensors of whole episodes (see ``RolloutBuffer``);
        ``progress`` (env steps / budget) sets the scheduled learning rate and entropy bonus."""
        cfg = self.config
        lr = scheduled(cfg.lr, cfg.lr_schedule, progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        entropy_coef = scheduled(cfg.entropy_coef, cfg.entropy_schedule, progress)
        advantages, returns = gae(batch["rewards"], batch["values"], batch["dones"],
                                  torch.zeros_like(batch["values"][0]), cfg.gamma, cfg.gae_lambda)
        states, next_states = batch["states"].flatten(0, 1), batch["next_states"].flatten(0, 1)
        actions, old_log_probs = batch["actions"].flatten(), batch["log_probs"].flatten()
        advantages, returns, old_values = advantages.flatten(), returns.flatten(), batch["values"].flatten()
        parent_probs = batch["parent_probs"].flatten(0, 1) if cfg.distill_coef > 0 else None
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
                policy_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_eps, 1 + cfg.clip_eps)).mean()
                value_loss = 0.5 * ((values - returns[idx]) ** 2).mean()
                entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
                loss = policy_loss + cfg.value_coef * value_loss - entropy_coef * entropy
                world_model_loss = torch.zeros(())
                if self.model.world_model is not None:
                    predicted = self.model.predict_next_state(h, actions[idx])
                    world_model_loss = prediction_mse(self.task, predicted, next_states[idx]).mean()
                    loss = loss + cfg.world_model_coef * world_model_loss
                distill_loss = torch.zeros(())
                if parent_probs is not None:
                    distill_loss = kl_to_parent(parent_probs[idx], log_probs)
                    loss = loss + cfg.distill_coef * distill_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    stats = {"policy_loss": policy_loss, "value_loss": value_loss, "world_model_loss": world_model_loss,
                             "loss": loss, "entropy": entropy, "grad_norm": grad_norm, "distill_loss": distill_loss,
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
