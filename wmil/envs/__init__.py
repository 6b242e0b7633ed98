"""The batched environment the baby acts in (a parent's judgements and transitions), and its
single-episode and Gymnasium views."""

from wmil.envs.env import StepResult, SymbolicEnv, VectorEnv

__all__ = ["StepResult", "SymbolicEnv", "VectorEnv"]
