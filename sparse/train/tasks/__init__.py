"""The kinds of training, one class each: :data:`TASKS` maps a config's ``task`` to it.

A new kind of training is one module with a :class:`~sparse.train.tasks.base.Task` subclass
and one line in :data:`TASKS`.
"""

from __future__ import annotations

from typing import Any

from .base import DemoText, Tally, Task, TaskOutput
from .keywords import KeywordTask
from .phones import PhoneTask
from .spikes import SpikeTask

__all__ = ["TASKS", "DemoText", "Tally", "Task", "TaskOutput", "task_of"]

#: config ``task`` -> the class that trains it
TASKS: dict[str, type[Task]] = {
    "kws": KeywordTask,
    "asr": PhoneTask,
    "spikes": SpikeTask,
}


def task_of(cfg_or_name: Any) -> Task:
    """The :class:`Task` of a config (or of a task name)."""
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.task
    return TASKS[name]()
