"""The symbolic world: tasks, the batched environment and its single-episode and Gymnasium views."""

from wmil.envs.env import StepResult, SymbolicEnv, VectorEnv
from wmil.envs.state import ActionSpace, State
from wmil.envs.tasks import TASKS, ConditionalTask, PatternEchoTask, SequenceNextTask, Task, make_task

__all__ = ["ActionSpace", "ConditionalTask", "PatternEchoTask", "SequenceNextTask", "State",
           "StepResult", "SymbolicEnv", "TASKS", "Task", "VectorEnv", "make_task"]
