"""The rules of the world: each task's problems, answers and transitions, and the state layout."""

from wmil.tasks.rules import TASKS, ConditionalTask, PatternEchoTask, SequenceNextTask, Task, make_task
from wmil.tasks.state import ActionSpace, State

__all__ = ["ActionSpace", "ConditionalTask", "PatternEchoTask", "SequenceNextTask", "State", "TASKS", "Task",
           "make_task"]
