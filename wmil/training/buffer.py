"""Preallocated on-policy rollout storage of shape ``(T, N)`` and the return estimators.

Time-limit semantics: an episode ends after exactly ``T`` steps and that horizon is the end of the
task (the state carries the step count), so ``done`` is terminal: no value is bootstrapped across
it. Rollouts hold whole episodes, so nothing is bootstrapped past the rollout either; ``gae``
still takes ``last_value`` for rollouts that stop mid-episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class RolloutBatch:
    """One rollout of whole episodes, what an algorithm learns from: every field ``(T, N, ...)``,
    views of the buffer (no copies), valid until the next rollout."""

    states: torch.Tensor       # (T, N, num_slots) long
    next_states: torch.Tensor  # (T, N, num_slots) long: the consequence of actions[t] in states[t]
    actions: torch.Tensor      # (T, N) long
    log_probs: torch.Tensor    # (T, N) log pi(a|s) of the action taken, at collection time
    values: torch.Tensor       # (T, N) V(s) at collection time (zeros without a value head)
    rewards: torch.Tensor      # (T, N) the weighted scalar reward the algorithms optimise
    dones: torch.Tensor        # (T, N) bool: the episode ended after this step
    parent_probs: torch.Tensor | None  # (T, N, A) the parent's action distribution (distillation only)


class RolloutBuffer:
    """``T`` steps of ``N`` environments: states ``(T, N, num_slots)``, every field ``(T, N)``.
    ``next_states[t]`` is the consequence of ``actions[t]`` in ``states[t]``, never a reset state,
    so no world-model target crosses an episode boundary. ``parent_probs`` ``(T, N, A)`` is kept
    only for distillation."""

    def __init__(self, num_steps: int, num_envs: int, num_slots: int, num_actions: int, parent_probs: bool = False):
        self.num_steps, self.num_envs = num_steps, num_envs
        self.states = torch.zeros(num_steps, num_envs, num_slots, dtype=torch.long)
        self.next_states = torch.zeros(num_steps, num_envs, num_slots, dtype=torch.long)
        self.parent_probs = torch.zeros(num_steps, num_envs, num_actions) if parent_probs else None

        def per_step(dtype: torch.dtype) -> torch.Tensor:
            return torch.zeros(num_steps, num_envs, dtype=dtype)

        self.actions = per_step(torch.long)
        self.log_probs = per_step(torch.float32)  # of the action taken, at collection time
        self.values = per_step(torch.float32)
        # the reward components and the world model's error, kept for the learning curve
        self.goal, self.pred, self.cons = per_step(torch.float32), per_step(torch.float32), per_step(torch.float32)
        self.world_model_mse = per_step(torch.float32)
        self.rewards = per_step(torch.float32)  # the weighted scalar the algorithms optimise
        self.dones = per_step(torch.bool)
        self.success = per_step(torch.bool)  # the answer was right

    def batch(self) -> RolloutBatch:
        return RolloutBatch(self.states, self.next_states, self.actions, self.log_probs, self.values, self.rewards,
                            self.dones, self.parent_probs)

    def episode_successes(self) -> torch.Tensor:
        """``BoolTensor (N,)``: an episode succeeds when every one of its answers is right."""
        return self.success.all(0)


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
