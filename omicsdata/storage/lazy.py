"""Lazy (dask) matrices over a store's row readers, and telling whether a MuData still holds them.

``open_store(lazy=True)`` builds every matrix here, so a lazy read goes
through the same readers as the torch stream (:mod:`.readers`), and a chunk
that fails to decode raises :class:`~omicsdata.errors.CorruptStoreError`
naming the chunk file on every read path. Each array gets a fresh dask name
recorded in :data:`_OPENED`; an array that was edited (``X[:] = 0`` gives a
dask array a new name) or replaced no longer matches, so consumers read the
object from memory instead of the store (:func:`is_pristine`).
"""
from __future__ import annotations

import uuid

import numpy as np
import scipy.sparse as sp

_OPENED: set[str] = set()


class _RowSource:
    """Array-like over a reader for ``dask.array.from_array``: ``x[rows, cols]`` reads the row range."""

    def __init__(self, reader):
        self.reader = reader
        self.shape, self.dtype, self.ndim = tuple(reader.shape), np.dtype(reader.dtype), 2

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (2 - len(key))
        r0, r1, _ = key[0].indices(self.shape[0])
        block = self.reader.read(np.array([r0]), np.array([max(r0, r1)]))
        if self.reader.kind == "csr":
            return block.to_scipy().copy()[:, key[1]]
        return block[:, key[1]]


def lazy_matrix(reader, chunk_rows: int):
    """A dask array of ``reader``'s matrix in blocks of ``chunk_rows`` whole rows (scipy CSR blocks for sparse)."""
    import dask.array as da

    name = f"omicsdata-{getattr(reader, 'modality', 'X')}-{uuid.uuid4().hex}"
    _OPENED.add(name)
    n, p = reader.shape
    chunks = (max(1, min(int(chunk_rows), max(n, 1))), max(p, 1) if p else p)
    meta = sp.csr_matrix((0, 0), dtype=reader.dtype) if reader.kind == "csr" else np.empty((0, 0), reader.dtype)
    return da.from_array(_RowSource(reader), chunks=chunks, name=name, asarray=False, meta=meta,
                         fancy=False, lock=False)


def is_pristine(X) -> bool:
    """True when ``X`` is a lazy matrix made by :func:`lazy_matrix` and not edited since."""
    return getattr(X, "name", None) in _OPENED
