"""A torch IterableDataset over the Parquet row groups of a store table.

The unit of work is a Parquet **row group** (the store writes them at about
1 MiB each, :data:`omicsdata.storage.write.TABLE_ROW_GROUP_BYTES`). Which rows each
DataLoader worker and DDP rank serves is decided by
:func:`omicsdata.torch.sharding.plan` -- the same rule as the matrix stream:
every selected row exactly once per epoch across the whole job, the same
number of batches on every rank, item order shuffled by ``(seed, epoch)``.
With ``shuffle=True`` the rows inside each row group are permuted too (by
``(seed, epoch, row group)``, identical in every process), so a batch mixes
rows from across a group while reads stay whole row groups.

Iterate it directly (one process), or with workers through
:meth:`ParquetStream.loader` (``stream.loader(num_workers=2)``), which ships
Arrow tables from the workers and formats them in the consuming process;
``DataLoader(stream, batch_size=None, num_workers=n)`` works too, slower.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from ..errors import StoreError
from ..torch import sharding
from .tables import table_files

try:  # torch is a dependency; the base class only matters for DataLoader
    from torch.utils.data import IterableDataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


def _identity(x):  # module level: DataLoader pickles the collate function for spawn workers
    return x


class ParquetStream(_Base):
    """Stream a store table in batches.

    ``source``: store folder / MuData from a store / catalog name; ``table``:
    the table name. ``columns``: columns to read (default all). ``where``:
    ``{column: value or list of values}`` -- only matching rows are served
    (e.g. ``{"split": "train"}``); the matching rows of every row group are
    found once, at construction, by reading just those columns.
    ``format``: ``"torch"`` (numeric columns as tensors, others as lists),
    ``"numpy"``, ``"arrow"`` (a :class:`pyarrow.Table`) or ``"pandas"``.
    Every batch carries ``"index"``: the rows' positions in the table.
    ``transform``: applied to each batch last.
    """

    def __init__(self, source: Any, table: str, *, batch_size: int = 256, columns: Iterable[str] | None = None,
                 where: Mapping[str, Any] | None = None, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, format: str = "torch", transform: Callable | None = None,
                 rank: int | None = None, world_size: int | None = None):
        import pyarrow.parquet as pq

        if format not in {"torch", "numpy", "arrow", "pandas"}:
            raise StoreError(f"ParquetStream: format must be torch, numpy, arrow or pandas, got {format!r}")
        self.files = [str(f) for f in table_files(source, table)]
        self.table = table
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.format, self.transform = format, transform
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        schema = pq.read_schema(self.files[0])
        self.columns = list(columns) if columns is not None else list(schema.names)
        missing = [c for c in list(self.columns) + list(where or {}) if c not in schema.names]
        if missing:
            raise StoreError(f"table '{table}' ({self.files[0]}): no column(s) {missing}; columns: {schema.names}")
        # items = row groups: (file index, row group, first table row, selected positions or None)
        self._items: list[tuple[int, int, int, np.ndarray | None]] = []
        sizes = []
        offset = 0
        for fi, f in enumerate(self.files):
            pf = pq.ParquetFile(f)
            for g in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(g).num_rows
                sel = None
                if where:
                    t = pf.read_row_group(g, columns=list(where))
                    mask = np.ones(n, dtype=bool)
                    for col, val in where.items():
                        vals = val if isinstance(val, (list, tuple, set, frozenset)) else [val]
                        import pyarrow as pa
                        import pyarrow.compute as pc

                        mask &= np.asarray(pc.is_in(t[col], value_set=pa.array(list(vals))).fill_null(False))
                    sel = np.flatnonzero(mask).astype(np.int64)
                self._items.append((fi, g, offset, sel))
                sizes.append(n if sel is None else len(sel))
                offset += n
        self.item_sizes = np.asarray(sizes, dtype=np.int64)
        self.n_rows = int(self.item_sizes.sum())

    def set_epoch(self, epoch: int) -> None:
        """Re-seed the shuffle for ``epoch`` (call on every rank before iterating)."""
        self.epoch = int(epoch)

    def _plan(self, worker=None, num_workers=None) -> sharding.WorkerShard:
        return sharding.plan(self.item_sizes, batch_size=self.batch_size, epoch=self.epoch, seed=self.seed,
                             shuffle=self.shuffle, rank=self.rank, world_size=self.world_size,
                             worker=worker, num_workers=num_workers, drop_last=self.drop_last)

    def __len__(self) -> int:
        """Batches this rank yields per epoch (all its workers together)."""
        return self._plan(worker=0, num_workers=1).n_rank_batches

    def _positions(self, item: int) -> np.ndarray:
        """Row positions (inside the row group) of item ``item``, in serving order."""
        _, _, _, sel = self._items[item]
        pos = np.arange(self.item_sizes[item], dtype=np.int64) if sel is None else sel
        if self.shuffle:
            pos = pos[sharding.epoch_rng(self.seed, self.epoch, 1, item).permutation(len(pos))]
        return pos

    def __iter__(self) -> Iterator:
        import pyarrow as pa
        import pyarrow.parquet as pq

        shard = self._plan()
        handles: dict[int, pq.ParquetFile] = {}
        pending: list = []  # pyarrow tables waiting to be cut into batches
        n_pending = 0
        sizes = list(shard.batch_sizes)
        for item, start, stop in shard.segments:
            fi, g, first_row, _ = self._items[int(item)]
            pf = handles.get(fi) or handles.setdefault(fi, pq.ParquetFile(self.files[fi]))
            pos = self._positions(int(item))[start:stop]
            t = pf.read_row_group(g, columns=self.columns).take(pa.array(pos))
            t = t.append_column("index", pa.array(pos + first_row, type=pa.int64()))
            pending.append(t)
            n_pending += t.num_rows
            while sizes and n_pending >= sizes[0]:
                whole = pa.concat_tables(pending)
                b = int(sizes.pop(0))
                yield self._format(whole.slice(0, b))
                rest = whole.slice(b)
                pending, n_pending = ([rest] if rest.num_rows else []), rest.num_rows
        if sizes:  # cannot happen when the plan's sizes add up; guard against a table changed under us
            raise StoreError(f"table '{self.table}': ran out of rows with {len(sizes)} batch(es) left; "
                             "the Parquet files changed while streaming -- run od.verify")

    def loader(self, num_workers: int = 0, **dataloader_kw) -> Iterator:
        """Iterate this stream through ``num_workers`` DataLoader workers, cheaply.

        Workers read and shuffle Arrow tables and send them as they are (one
        Arrow buffer per column crosses the process boundary); the conversion
        to this stream's ``format`` and ``transform`` runs here, in the
        consuming process. Handing the stream itself to a DataLoader also
        works, but then every numeric column of every batch becomes its own
        shared-memory tensor and every string a pickled object: measured
        ~3x slower with 2 workers in ``scripts/bench_parquet.py``.
        """
        import copy

        from torch.utils.data import DataLoader

        if not num_workers:
            return iter(self)
        raw = copy.copy(self)
        raw.format, raw.transform = "arrow", None
        dl = DataLoader(raw, batch_size=None, num_workers=int(num_workers), collate_fn=_identity, **dataloader_kw)
        return (self._format(t) for t in dl)

    def _format(self, t):
        if self.format == "arrow":
            out = t
        elif self.format == "pandas":
            out = t.to_pandas()
        else:
            out = {}
            for name in t.column_names:
                col = t[name]
                import pyarrow.types as pat

                if pat.is_integer(col.type) or pat.is_floating(col.type) or pat.is_boolean(col.type):
                    arr = col.to_numpy()
                    if self.format == "torch":
                        import torch

                        arr = torch.from_numpy(np.array(arr, copy=True))
                    out[name] = arr
                else:
                    out[name] = col.to_pylist()
        return self.transform(out) if self.transform is not None else out
