"""REINFORCE with a running baseline, entropy bonus and world-model loss (Fix 3)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from wmil.config import AlgorithmConfig
from wmil.models.baby import BabyModel
from wmil.tasks.rules import Task
from wmil.training.auxiliary import add_auxiliary_losses, distillation_targets, gradient_step
from wmil.training.buffer import RolloutBatch, discounted_returns
from wmil.training.entropy import policy_entropy
from wmil.training.schedule import AT_START, Progress, apply_schedules


class REINFORCE:
    """``loss = -log pi(a|s) (G - b) - entropy_coef * H + world_model_coef * MSE(next-state)``
    ``+ distill_coef * KL(parent || policy)``.

    ``b`` is an exponential moving average of earlier batches' mean return, bias-corrected so that
    it is meaningful from the second update on (the first uses 0). ``generator`` is unused: REINFORCE draws no
    random numbers of its own (every algorithm takes the same constructor arguments)."""

    needs_value: ClassVar[bool] = False

    def __init__(self, model: BabyModel, config: AlgorithmConfig, task: Task, generator: torch.Generator,
                 target_ema: float = 1.0):
        self.model = model
        self.config = config
        self.task = task
        self.target_ema = target_ema  # the decay of the model's target copy per gradient step
        self.optimizer = torch.optim.Adam(model.trainable_parameters(), lr=config.lr, fused=True)
        self.baseline_avg = 0.0
        self.baseline_updates = 0

    @property
    def baseline(self) -> float:
        if self.baseline_updates == 0:
            return 0.0
        return self.baseline_avg / (1.0 - self.config.baseline_decay**self.baseline_updates)

    def update(self, batch: RolloutBatch, progress: Progress = AT_START) -> dict[str, float]:
        """One gradient step on one rollout of whole episodes; ``progress`` (through the budget)
        sets the scheduled learning rate and entropy bonus."""
        cfg = self.config
        lr, entropy_coef = apply_schedules(self.optimizer, cfg, progress)
        returns = discounted_returns(batch.rewards, batch.dones, cfg.gamma).flatten()
        states, actions = batch.states.flatten(0, 1), batch.actions.flatten()
        advantages = returns - self.baseline  # the baseline of earlier batches: no bias from this one
        self.baseline_avg = cfg.baseline_decay * self.baseline_avg + (1 - cfg.baseline_decay) * float(returns.mean())
        self.baseline_updates += 1

        h, logits, _ = self.model(states)
        log_probs = F.log_softmax(logits, -1)
        # -- policy gradient with the running baseline, and the entropy bonus
        log_prob_taken = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
        policy_loss = -(log_prob_taken * advantages).mean()
        entropy = policy_entropy(log_probs)
        loss = policy_loss - entropy_coef * entropy
        # -- world model and distillation
        aux = add_auxiliary_losses(loss, self.model, cfg, self.task, h, log_probs, actions,
                                   batch.next_states.flatten(0, 1), distillation_targets(batch, cfg))
        grad_norm = gradient_step(self.model, self.optimizer, aux.loss, cfg.max_grad_norm, self.target_ema)
        return {
            "policy_loss": policy_loss.item(),
            "world_model_loss": aux.world_model.item(),
            "embedding_loss": aux.embedding.item(),
            "distill_loss": aux.distill.item(),
            "loss": aux.loss.item(),
            "entropy": entropy.item(),
            "baseline": self.baseline,
            "grad_norm": float(grad_norm),
            "learning_rate": lr,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "baseline_avg": self.baseline_avg,
                "baseline_updates": self.baseline_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline_avg = float(state["baseline_avg"])
        self.baseline_updates = int(state["baseline_updates"])


