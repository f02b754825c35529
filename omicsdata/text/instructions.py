"""Chat-formatted instruction samples (Biology-Instructions), filterable by task and sequence type."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..errors import OmicsDataError
from .chat import to_messages
from .tables import read_table

TABLE = "instructions"


def _as_set(x) -> list | None:
    if x is None:
        return None
    return [x] if isinstance(x, str) else list(x)


def _filter(split, tasks, sequence_types):
    import pyarrow.dataset as ds

    expr = None
    for col, vals in (("split", _as_set(split)), ("task", _as_set(tasks)), ("sequence_type", _as_set(sequence_types))):
        if vals is None:
            continue
        e = ds.field(col).isin(vals)
        expr = e if expr is None else expr & e
    return expr


try:
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


class InstructionDataset(_Base):
    """Map-style dataset of chat samples: ``{"messages": [...], "task", "sequence_type", "id"}``.

    ``source``: catalog name (default ``"biology-instructions"``), store folder
    or MuData. ``split``, ``tasks``, ``sequence_types``: a value or a list to
    keep (sequence types: ``DNA``, ``RNA``, ``protein``, ``multi-molecule``, ``unknown`` where the task name does not tell).
    ``system``: an optional system prompt put first in every sample.
    ``with_response=False`` leaves the assistant turn out (prompts for generation).
    """

    def __init__(self, source: Any = "biology-instructions", *, split: str | Iterable[str] | None = None,
                 tasks: str | Iterable[str] | None = None, sequence_types: str | Iterable[str] | None = None,
                 system: str | None = None, with_response: bool = True):
        self.table = read_table(source, TABLE, filter=_filter(split, tasks, sequence_types))
        if self.table.num_rows == 0:
            raise OmicsDataError(f"no instruction records match split={split!r}, tasks={tasks!r}, "
                                 f"sequence_types={sequence_types!r}")
        self._cols = {c: self.table[c].to_pylist() for c in ("id", "task", "sequence_type", "instruction", "response")}
        self.system, self.with_response = system, with_response

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: int) -> dict:
        c = self._cols
        resp = c["response"][i] if self.with_response else None
        return {"messages": to_messages(c["instruction"][i], resp, system=self.system),
                "task": c["task"][i], "sequence_type": c["sequence_type"][i], "id": c["id"][i]}

    @property
    def tasks(self) -> list[str]:
        return sorted(set(self._cols["task"]))


def chat_samples(source: Any = "biology-instructions", **kw) -> Iterator[dict]:
    """Iterate chat samples (see :class:`InstructionDataset` for the options)."""
    d = InstructionDataset(source, **kw)
    for i in range(len(d)):
        yield d[i]
