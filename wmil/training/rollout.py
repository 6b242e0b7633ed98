"""Collecting experience: the policy plays one whole episode in every environment at once."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from wmil.envs.env import VectorEnv
from wmil.models.baby import BabyModel
from wmil.parents.base import Parent
from wmil.training.buffer import RolloutBatch, RolloutBuffer
from wmil.training.rewards import RewardComputer


class RolloutCollector:
    """Fills ``buffer`` with ``T`` steps of ``N`` episodes: states, the sampled actions and their
    log-probabilities, values, the reward components and the world model's error at collection
    time (before it trains on them), and, for distillation, the parent's action distribution.

    ``policy_generator`` draws the actions, nothing else; it is part of the checkpoint."""

    def __init__(self, env: VectorEnv, model: BabyModel, rewards: RewardComputer, parent: Parent,
                 buffer: RolloutBuffer, policy_generator: torch.Generator):
        self.env, self.model, self.rewards, self.parent = env, model, rewards, parent
        self.buffer, self.policy_generator = buffer, policy_generator

    def collect(self, levels: int | torch.Tensor) -> RolloutBatch:
        """Play one whole episode in every env, each at its level (an int for all, or ``(N,)``)."""
        buf, model = self.buffer, self.model
        states = self.env.reset(levels)
        for t in range(buf.num_steps):
            with torch.inference_mode():
                h, logits, values = model(states)
                log_probs = F.log_softmax(logits, -1)
                actions = torch.multinomial(log_probs.exp(), 1, generator=self.policy_generator).squeeze(1)
                predicted = model.predict_next_state(h, actions) if model.world_model is not None else None
            step = self.env.step(actions)
            reward, mse = self.rewards.compute(step.goal, predicted, step.next_states)
            buf.states[t], buf.next_states[t], buf.actions[t] = states, step.next_states, actions
            if buf.parent_probs is not None:
                buf.parent_probs[t] = self.parent.action_distribution(states)
            buf.log_probs[t] = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
            if values is not None:
                buf.values[t] = values
            buf.goal[t], buf.pred[t], buf.cons[t] = reward.goal, reward.pred, reward.cons
            buf.rewards[t] = self.rewards.scalar(reward)
            buf.dones[t], buf.success[t] = step.done, step.success
            if mse is not None:
                buf.world_model_mse[t] = mse
            states = step.next_states
        return buf.batch()

    def state_dict(self) -> dict[str, Any]:
        return {"policy_generator": self.policy_generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy_generator.set_state(state["policy_generator"])
