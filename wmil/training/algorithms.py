"""Algorithm registry: each is a small class with ``update(batch) -> dict[str, float]``."""

from wmil.training.ppo import PPO
from wmil.training.random_policy import RandomPolicy
from wmil.training.reinforce import REINFORCE

ALGORITHMS = {"reinforce": REINFORCE, "ppo": PPO, "random": RandomPolicy}
