"""Preallocated on-policy rollout storage of shape ``(T, N)`` and the return estimators.

Time-limit semantics: an episode ends after exactly ``T`` steps and that horizon is the end of the
task (the state carries the step count), so ``done`` is terminal: no value is bootstrapped across
it. Rollouts hold whole episodes, so nothing is bootstrapped past the rollout either; ``gae``
still takes ``last_value`` for rollouts that stop mid-episode.
"""

from __future__ import annotations

import torch

FIELDS = {
    "actions": torch.long,
    "log_probs": torch.float32,  # log pi(a|s) of the action taken, at collection time
    "values": torch.float32,     # V(s) at collection time (zeros without a value head)
    "goal": torch.float32, "pred": torch.float32, "cons": torch.float32,  # reward components
    "rewards": torch.float32,    # the weighted scalar the algorithms optimise
    "world_model_mse": torch.float32,
    "dones": torch.bool,
    "success": torch.bool,
}


class RolloutBuffer:
    """``T`` steps of ``N`` environments: states ``(T, N, num_slots)``, every field ``(T, N)``.
    ``next_states[t]`` is the consequence of ``actions[t]`` in ``states[t]``, never a reset state,
    so no world-model target crosses an episode boundary."""

    def __init__(self, num_steps: int, num_envs: int, num_slots: int, num_actions: int):
        self.num_steps, self.num_envs = num_steps, num_envs
        self.states = torch.zeros(num_steps, num_envs, num_slots, dtype=torch.long)
        self.next_states = torch.zeros(num_steps, num_envs, num_slots, dtype=torch.long)
        # the parent's action distribution (T, N, A), filled only for distillation
        self.parent_probs = torch.zeros(num_steps, num_envs, num_actions)
        for name, dtype in FIELDS.items():
            setattr(self, name, torch.zeros(num_steps, num_envs, dtype=dtype))

    def batch(self) -> dict[str, torch.Tensor]:
        """Every field by name, still ``(T, N, ...)``: algorithms compute their own targets."""
        return {"states": self.states, "next_states": self.next_states, "parent_probs": self.parent_probs,
                **{name: getattr(self, name) for name in FIELDS}}


def discounted_returns(rewards: torch.Tensor, dones: torch.Tensor, gamma: float) -> torch.Tensor:
    """Monte-Carlo return-to-go ``(T, N)``; the sum restarts after every ``done``."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running * (~dones[t]).float()
        returns[t] = running
    return returns


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, last_value: torch.Tensor,
        gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, computed backwards. Returns ``(advantages, returns)``,
    both ``(T, N)``; ``last_value (N,)`` is V of the state after the rollout's last step."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    next_value = last_value
    for t in reversed(range(len(rewards))):
        live = (~dones[t]).float()
        delta = rewards[t] + gamma * next_value * live - values[t]
        running = delta + gamma * lam * live * running
        advantages[t] = running
        next_value = values[t]
    return advantages, advantages + values
