"""Preallocated on-policy rollout storage of shape ``(T, N)``."""

from __future__ import annotations

import torch

FIELDS_LONG = ("actions",)
FIELDS_FLOAT = ("log_probs", "goal", "pred", "cons", "rewards", "world_model_mse")
FIELDS_BOOL = ("dones", "success")


class RolloutBuffer:
    """``T`` steps of ``N`` environments. States are ``(T, N, num_slots)``; the rest ``(T, N)``.
    ``next_states`` hold each action's consequence, so no world-model target crosses an
    episode boundary (the env's reset states are never stored as targets)."""

    def __init__(self, num_steps: int, num_envs: int, num_slots: int):
        T, N = num_steps, num_envs
        self.num_steps, self.num_envs = T, N
        self.states = torch.zeros(T, N, num_slots, dtype=torch.long)
        self.next_states = torch.zeros(T, N, num_slots, dtype=torch.long)
        for name in FIELDS_LONG:
            setattr(self, name, torch.zeros(T, N, dtype=torch.long))
        for name in FIELDS_FLOAT:
            setattr(self, name, torch.zeros(T, N))
        for name in FIELDS_BOOL:
            setattr(self, name, torch.zeros(T, N, dtype=torch.bool))

    def discounted_returns(self, gamma: float) -> torch.Tensor:
        """Return-to-go ``(T, N)`` within each episode; the sum restarts after every ``done``.

        The rollout must end on an episode boundary (REINFORCE collects whole episodes)."""
        returns = torch.zeros_like(self.rewards)
        running = torch.zeros(self.num_envs)
        for t in reversed(range(self.num_steps)):
            running = self.rewards[t] + gamma * running * (~self.dones[t]).float()
            returns[t] = running
        return returns

    def flat(self, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every field flattened to ``(T * N, ...)``, plus ``extra`` tensors of shape ``(T, N)``."""
        out = {"states": self.states.flatten(0, 1), "next_states": self.next_states.flatten(0, 1)}
        for name in FIELDS_LONG + FIELDS_FLOAT + FIELDS_BOOL:
            out[name] = getattr(self, name).flatten()
        out.update({k: v.flatten() for k, v in extra.items()})
        return out
