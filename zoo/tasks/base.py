"""The :class:`Task` interface and the task registry."""
from __future__ import annotations

import numpy as np
import torch

from omicsdata.errors import SchemaMismatchError

_TASKS: dict[str, "Task"] = {}


def register_task(name: str):
    """Class decorator: register a :class:`Task` subclass (one instance) under ``name``."""
    def deco(cls):
        cls.name = name
        _TASKS[name] = cls()
        return cls
    return deco


def get_task(name: str) -> "Task":
    """The registered task ``name``."""
    try:
        return _TASKS[name]
    except KeyError:
        raise SchemaMismatchError(f"unknown task '{name}' (known: {', '.join(sorted(_TASKS))})") from None


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return sorted(_TASKS)


class Task:
    """One learning target. Every method gets the fitted ``spec`` (``schema_["tasks"][name]``).

    Targets are a flat dict of numpy arrays over all rows of the data; keys
    must not clash between tasks (survival: ``time``, ``event``, ``surv_ok``;
    classification: ``label``, ``label_raw``).
    """

    name = "task"
    #: torch dtypes of the target arrays moved to the device (others: float32; ``*_raw`` stay on the host)
    target_dtypes: dict = {}
    #: whether :meth:`summarize` keeps fitted state after training (it then needs a pass over train rows)
    has_summary = False

    def requested(self, est) -> dict | None:
        """The task's spec from the estimator's parameters (its obs columns), or None when disabled."""
        raise NotImplementedError

    def columns(self, spec: dict) -> list[str]:
        """The obs columns the task reads."""
        return [v for k, v in spec.items() if k.endswith("_col")]

    def fit(self, spec: dict, obs, train_rows: np.ndarray) -> dict:
        """Complete ``spec`` from the training rows (e.g. the class list); returns it."""
        return spec

    def targets(self, spec: dict, obs) -> dict[str, np.ndarray]:
        """Target arrays for every row of ``obs``."""
        raise NotImplementedError

    def loss(self, est, outputs: dict, targets: dict) -> torch.Tensor | None:
        """This task's loss on one batch (None when the batch has no usable target)."""
        return None

    def validation_score(self, est, outputs: dict, targets: dict) -> float | None:
        """Higher is better; None when undefined on these rows."""
        return None

    def summarize(self, est, outputs: dict, targets: dict) -> dict | None:
        """Aggregate fitted state kept in ``schema_[name]`` after training (never per-sample arrays)."""
        return None

    def metrics(self, est, outputs: dict, targets: dict) -> dict:
        """Evaluation metrics on held-out rows."""
        return {}


def resolve_tasks(est, obs) -> dict:
    """``{name: spec}`` of the estimator's ``task_names`` whose obs columns the data has.

    A requested task whose column is missing is skipped with a warning; none
    left is a :class:`~omicsdata.errors.SchemaMismatchError`.
    """
    import warnings

    tasks, skipped = {}, []
    for name in est.task_names:
        spec = get_task(name).requested(est)
        if spec is None:
            continue
        if all(c in obs.columns for c in get_task(name).columns(spec)):
            tasks[name] = spec
        else:
            skipped.append(name)
    if not tasks:
        raise SchemaMismatchError(
            f"no target found: obs has none of time/event columns ({getattr(est, 'time_col', None)!r}, "
            f"{getattr(est, 'event_col', None)!r}) or label column {getattr(est, 'label_col', None)!r}; "
            f"obs columns are {list(obs.columns)[:12]}")
    for t in skipped:
        warnings.warn(f"{type(est).__name__}: target '{t}' skipped (its obs column is not in the data)", stacklevel=4)
    return tasks
