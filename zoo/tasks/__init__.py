"""Task objects: what a model learns (targets, loss, validation score, fitted summary, metrics).

A task is a stateless object registered by name; its fitted state (class list,
baseline hazard...) lives in the estimator's ``schema_["tasks"][name]`` and
``schema_[name]``. An estimator lists the tasks it may train in its
``task_names`` class attribute; a new model reuses these or registers its own::

    from zoo.tasks import Task, register_task

    @register_task("regression")
    class RegressionTask(Task):
        ...
"""
from __future__ import annotations

from .base import Task, get_task, list_tasks, register_task, resolve_tasks
from .classification import ClassificationTask
from .survival import SurvivalTask

__all__ = ["Task", "SurvivalTask", "ClassificationTask", "register_task", "get_task", "list_tasks", "resolve_tasks"]
