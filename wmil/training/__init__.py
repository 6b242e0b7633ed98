"""Rewards, rollouts, algorithms and the training loop."""
