"""The estimators' data path: resolve inputs, fit preprocessing on train, yield aligned batches.

One batch is a dict of tensors on the target device::

    {"<modality>": float32 (B, p_schema)   # preprocessed, aligned to schema.json order
     "<modality>_mask": bool (B,)          # the store's presence mask (has_<modality>)
     "index": int64 (B,)}                  # row of the sample in the MuData given

Training and prediction read through :func:`omicsdata.torch.stream` when it
is available (``use_stream=True``), else through :class:`InMemoryBatches`, a
plain loop over in-memory tensors (also the baseline of
``scripts/bench_train.py``). Both yield the same raw batches; the
:class:`Preprocessor` then aligns features by name, applies the fitted
transform (``log1p`` for count data, then standardisation with train-split
mean/scale) and zeroes the rows of absent modalities.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from omicsdata.errors import SchemaMismatchError, StoreError

# --- resolving inputs: all through omicsdata.storage (the one owner of the store) -----------

def store_of(data):
    """The :class:`omicsdata.storage.Store` of ``data`` (MuData, AnnData, catalog name, store path, Store)."""
    from omicsdata import storage

    try:
        return storage.open(data)
    except StoreError as e:
        raise SchemaMismatchError(f"expected a MuData, AnnData, catalog name or store path: {e}") from None


def resolve(data):
    """A MuData from a MuData, an AnnData (one modality ``X``), a catalog name, a store path, or an
    ``X`` array/DataFrame (one modality ``X``, see :mod:`zoo.arrays`)."""
    from . import arrays

    if arrays.is_arraylike(data):
        return arrays.to_mudata(data)
    return store_of(data).mudata


def select_rows(mdata, split) -> np.ndarray:
    """Row positions of ``split`` (a name, a list of names, or None for all rows); never empty."""
    rows = store_of(mdata).rows(split)
    if rows.size == 0:
        raise SchemaMismatchError(f"split {split!r} selects no rows")
    return rows


def presence(mdata, modality: str) -> np.ndarray:
    """Which rows of ``mdata`` have ``modality`` (the store's presence mask)."""
    return store_of(mdata).presence(modality)


def take_rows(mdata, modality: str, rows: np.ndarray) -> np.ndarray:
    """Rows of ``modality`` as a dense float32 array (read through the store's row readers)."""
    return store_of(mdata).read_rows(modality, np.asarray(rows))


@dataclass
class RowPlan:
    """Training and validation rows of one fit.

    ``train``: the rows trained on; ``all_train``: the ``split`` rows before a
    validation fraction was carved out; ``val``: the carved validation rows
    (None when the data's own ``val_split`` is used or there is none);
    ``has_val``: the data has ``val_split`` rows distinct from ``split``.
    """

    train: np.ndarray
    all_train: np.ndarray
    val: np.ndarray | None
    has_val: bool

    @property
    def explicit_train(self) -> np.ndarray | None:
        """Row positions to train on when they differ from the split's (a fraction was carved)."""
        return self.train if self.val is not None else None


def plan_rows(mdata, split, val_split, val_fraction: float, seed: int) -> RowPlan:
    """The :class:`RowPlan` of ``split``: validation on ``val_split`` rows when the data has them,
    else a seeded ``val_fraction`` of the training rows."""
    train = select_rows(mdata, split)
    has_val = (val_split is not None and "split" in mdata.obs.columns
               and bool((mdata.obs["split"].astype(str) == val_split).any()) and split is not None
               and val_split not in ([split] if isinstance(split, str) else list(split)))
    if has_val or not val_fraction or val_fraction <= 0:
        return RowPlan(train, train, None, has_val)
    perm = np.random.default_rng(seed).permutation(train)
    n_val = max(1, int(round(len(perm) * val_fraction)))
    return RowPlan(np.sort(perm[n_val:]), train, np.sort(perm[:n_val]), False)


# --- raw batch sources ------------------------------------------------------------------

class InMemoryBatches:
    """Raw batches from tensors held in memory (rows of ``mdata`` materialised once)."""

    def __init__(self, mdata, rows: np.ndarray, modalities: Sequence[str], batch_size: int,
                 shuffle: bool = False, seed: int = 0, device="cpu", drop_last: bool = False):
        self.rows = np.asarray(rows)
        self.modalities = list(modalities)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.epoch = shuffle, int(seed), 0
        self.device = torch.device(device)
        self.drop_last = drop_last
        st = store_of(mdata)
        self.X = {m: torch.from_numpy(st.read_rows(m, self.rows)) for m in self.modalities}
        self.mask = {m: torch.from_numpy(st.presence(m)[self.rows]) for m in self.modalities}
        self.index = torch.from_numpy(self.rows.astype(np.int64))
        if self.device.type == "cuda":
            self.X = {m: x.pin_memory() for m, x in self.X.items()}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        n = len(self.rows)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(n, generator=g)
        else:
            perm = torch.arange(n)
        nb = len(self)
        nb_dev = self.device.type == "cuda"
        for b in range(nb):
            idx = perm[b * self.batch_size:(b + 1) * self.batch_size]
            out = {}
            for m in self.modalities:
                out[m] = self.X[m].index_select(0, idx).to(self.device, non_blocking=nb_dev)
                out[f"{m}_mask"] = self.mask[m].index_select(0, idx).to(self.device, non_blocking=nb_dev)
            out["index"] = self.index.index_select(0, idx).to(self.device, non_blocking=nb_dev)
            yield out


def stream_available() -> bool:
    """Whether :func:`omicsdata.torch.stream` exists in this install."""
    try:
        import omicsdata.torch as odt
    except Exception:  # pragma: no cover - import error in a sibling module
        return False
    return hasattr(odt, "stream")


class StreamBatches:
    """Raw batches from :func:`omicsdata.torch.stream` (block-shuffled, prefetched)."""

    def __init__(self, mdata, split, rows: np.ndarray, modalities: Sequence[str], batch_size: int,
                 shuffle: bool = False, seed: int = 0, device="cpu", drop_last: bool = False, **kw):
        import omicsdata.torch as odt

        self.modalities = list(modalities)
        self.rows = np.asarray(rows)
        self.n = len(self.rows)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.stream = odt.stream(mdata, split=split, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 modalities=self.modalities, targets=(), device=str(self.device), densify=True,
                                 drop_last=drop_last, **kw)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def __len__(self) -> int:
        try:
            return len(self.stream)
        except TypeError:
            return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        for batch in self.stream:
            out = {}
            for m in self.modalities:
                x = batch[m]
                if x.is_sparse or getattr(x, "layout", torch.strided) != torch.strided:
                    x = x.to_dense()
                out[m] = x.to(self.device, torch.float32)
                mk = batch.get(f"{m}_mask")
                out[f"{m}_mask"] = (mk.to(self.device).bool() if mk is not None
                                    else torch.ones(x.shape[0], dtype=torch.bool, device=self.device))
            out["index"] = batch["index"].to(self.device).long()
            yield out


def batches(mdata, split, modalities, batch_size, shuffle=False, seed=0, device="cpu",
            use_stream: bool = True, drop_last: bool = False, rows: np.ndarray | None = None):
    """The raw batch source for ``split`` of ``mdata``: the stream when available, else in memory.

    ``rows`` (explicit row positions) forces the in-memory path (used for a
    validation fraction carved out of the training rows).
    """
    if rows is None:
        rows = select_rows(mdata, split)
        if use_stream and stream_available():
            return StreamBatches(mdata, split, rows, modalities, batch_size, shuffle, seed, device, drop_last)
    return InMemoryBatches(mdata, rows, modalities, batch_size, shuffle, seed, device, drop_last)
