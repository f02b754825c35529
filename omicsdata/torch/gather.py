"""Gathering one shuffle buffer in batch order: vectorised row gathers, then batches as slices of it.

:func:`dense_buffer` and :func:`csr_buffer` gather every row of a read
buffer, in the shuffled order, at once (one ``np.take`` / scipy C row gather
per part, parts on two threads; no per-row Python, no intermediate scipy
matrix); :func:`dense_scatter` does the same for a dense store matrix while
reading it (each decoded chunk's rows written to their places). The stream's
batches are row slices of the result (views, no second copy). The outputs
live in shared memory inside a DataLoader worker (the main process maps them
without a copy), in pinned memory when a CUDA device is the target (the
host-to-device copy needs no staging buffer), and otherwise in an
:class:`OutputPool` reused from buffer to buffer.
"""
from __future__ import annotations

import sys

import numpy as np
import torch

from ..storage import CSRBlock, memory
from ..storage.jobs import thread_pool


def empty(shape, dtype, *, shared: bool = False, pin: bool = False) -> torch.Tensor:
    """An uninitialised tensor: in shared memory (``shared``), pinned (``pin``) or plain."""
    t = torch.empty(shape, dtype=dtype, pin_memory=pin)
    return t.share_memory_() if shared else t


_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64}


def _listed_refcount() -> int:
    """What ``sys.getrefcount(lst[i])`` reports for an object nothing but list ``lst`` holds.

    2 on CPython up to 3.13 (the list and the call's argument); measured rather than assumed, since
    Python 3.14 says the call may report less (borrowed references) and a value taken for "free" that is
    one too low would hand out an array whose batches are still alive."""
    probe = [object()]
    return sys.getrefcount(probe[0])


_ONLY_LISTED = _listed_refcount()


class OutputPool:
    """Buffer-sized arrays for gathered buffers, reused once no batch cut from them is alive.

    A buffer's batches are slices (views) of a few buffer-sized arrays. Fresh
    arrays of tens of MB fault every page in again, and batch-sized ones are
    handed back to the OS by malloc between buffers (both measured: the
    stream ran ~1.5x slower); so each kind of output keeps up to ``keep``
    arrays (25% growth headroom). An array is free when nothing but the pool
    refers to it: every tensor made from it (``torch.from_numpy`` of a view)
    holds a reference to it until the last batch using it is gone. Where the
    consumer holds more buffers, the extra ones are plain allocations the
    pool does not keep. Pooled arrays are mapped without numpy's huge-page
    advice (:mod:`omicsdata.storage.memory`: its first-touch stalls).
    """

    def __init__(self, keep: int = 2):
        self.keep = int(keep)
        self.arrays: dict = {}

    def __getstate__(self):  # a DataLoader worker starts with an empty pool
        return {"keep": self.keep, "arrays": {}}

    def get(self, key, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` (a view of a pooled array when one is free)."""
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64))
        lst = self.arrays.setdefault((key, dtype), [])
        for i in range(len(lst)):
            if sys.getrefcount(lst[i]) == _ONLY_LISTED:  # nothing but the pool's list holds it
                if len(lst[i]) < n:
                    lst[i] = memory.empty(int(n * 1.25) + 1, dtype)
                return lst[i][:n].reshape(shape)
        a = memory.empty(int(n * 1.25) + 1 if len(lst) < self.keep else n, dtype)
        if len(lst) < self.keep:
            lst.append(a)
        return a[:n].reshape(shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the pool keeps."""
        return sum(a.nbytes for lst in self.arrays.values() for a in lst)


def _alloc(shape, dtype: torch.dtype, *, shared: bool, pin: bool, pool: OutputPool | None,
           key) -> tuple[torch.Tensor, np.ndarray]:
    """A buffer-sized output as (tensor, its numpy view): from ``pool`` unless shared or pinned."""
    if shared or pin or pool is None:
        t = empty(shape, dtype, shared=shared, pin=pin)
        return t, t.numpy()
    a = pool.get(key, shape, _NUMPY[dtype])
    return torch.from_numpy(a), a


_NUMPY = {v: k for k, v in _TORCH.items()}


def run_parts(jobs: list) -> None:
    """Run ``(fn, *args)`` gather jobs: the first in this thread, the others on the gather helper threads
    (not the decode threads, which may be reading meanwhile); re-raises the first error."""
    if not jobs:
        return
    futs = [thread_pool(len(jobs) - 1, "gather").submit(fn, *args) for fn, *args in jobs[1:]] if len(jobs) > 1 else []
    fn, *args = jobs[0]
    try:
        fn(*args)
    finally:
        for f in futs:
            f.result()


def _parts(bounds: np.ndarray, n: int, threads: int) -> list[tuple[int, int]]:
    """``threads`` contiguous row ranges of ``[0, n)`` holding about equal shares of ``bounds[-1]``
    (``bounds``: cumulative work per row, ``n + 1`` entries)."""
    k = max(1, min(int(threads), n // 64 or 1))
    cuts = np.searchsorted(bounds, np.linspace(0, bounds[-1], k + 1)[1:-1], side="left") if k > 1 else []
    edges = [0, *sorted({int(c) for c in cuts if 0 < c < n}), n]
    return list(zip(edges[:-1], edges[1:]))


def dense_buffer(block: np.ndarray, pos: np.ndarray, *, shared: bool = False, pin: bool = False,
                 threads: int = 1, pool: OutputPool | None = None, key="") -> torch.Tensor:
    """Rows ``pos`` of a dense block, in that order, as one float32 ``(len(pos), p)`` tensor (row slices
    gathered on ``threads`` threads; numpy's take releases the GIL). Batches are row slices of it."""
    n, p = len(pos), block.shape[1]
    t, out = _alloc((n, p), torch.float32, shared=shared, pin=pin, pool=pool, key=key)
    step = np.arange(n + 1, dtype=np.int64)
    run_parts([(_take_rows, block, pos[a:b], out[a:b]) for a, b in _parts(step, n, threads)])
    return t


def dense_scatter(reader, starts: np.ndarray, stops: np.ndarray, pos: np.ndarray, *, shared: bool = False,
                  pin: bool = False, pool: OutputPool | None = None, key="") -> torch.Tensor:
    """What :func:`dense_buffer` gives for the read of rows ``[starts, stops)`` of a dense store ``reader``,
    without that read in between: each chunk is decoded into a cache-sized array and its rows written
    straight to their places in the float32 ``(len(pos), p)`` output (``reader.read(..., into=...)``, on
    the reader's decode threads)."""
    n, p = len(pos), int(reader.shape[1])
    t, out = _alloc((n, p), torch.float32, shared=shared, pin=pin, pool=pool, key=key)
    dest = np.full(int((np.asarray(stops) - np.asarray(starts)).sum()), -1, dtype=np.int64)
    dest[pos] = np.arange(n, dtype=np.int64)  # read row pos[j] -> output row j; rows outside the split: -1
    reader.read(starts, stops, into=(out, dest))
    return t


def _take_rows(block: np.ndarray, pos: np.ndarray, out: np.ndarray) -> None:
    if block.dtype == np.float32:
        np.take(block, pos, axis=0, out=out, mode="clip")  # "clip": unbuffered (pos is in range)
    else:
        out[...] = block[pos]


class CSRBuffer:
    """Rows of a CSR block gathered in batch order: ``ptr`` (int64, rows + 1), ``col``, ``values`` tensors.

    :meth:`rows` cuts the parts of a torch CSR tensor for a run of its rows
    (``col``/``values`` are views; ``crow`` a new small array)."""

    def __init__(self, ptr: np.ndarray, col: torch.Tensor, values: torch.Tensor, n_features: int):
        self.ptr, self.col, self.values, self.n_features = ptr, col, values, n_features
        self._crow = ptr.astype(_NUMPY[col.dtype], copy=False)  # ptr in the index dtype, cut per batch

    def rows(self, a: int, b: int) -> dict:
        """Rows ``[a, b)`` as ``crow``, ``col``, ``values``, ``shape`` (one index dtype, values float32)."""
        lo, hi = int(self.ptr[a]), int(self.ptr[b])
        crow = torch.from_numpy(self._crow[a:b + 1] - self._crow[a])
        return {"crow": crow, "col": self.col[lo:hi], "values": self.values[lo:hi], "shape": (b - a, self.n_features)}


def csr_buffer(block: CSRBlock, pos: np.ndarray, *, shared: bool = False, pin: bool = False,
               threads: int = 1, pool: OutputPool | None = None, key="") -> CSRBuffer:
    """Rows ``pos`` of a CSR block, in that order, gathered at once into one :class:`CSRBuffer`.

    ``col`` and the cut ``crow`` share one index dtype (int32 when the block's
    indices fit, as torch requires); ``values`` are float32. Row ranges with
    about equal non-zeros gather on ``threads`` threads (scipy's C row gather
    releases the GIL)."""
    ptr = block.indptr
    starts = ptr[pos]
    lens = ptr[pos + 1] - starts
    cum = np.empty(len(pos) + 1, dtype=np.int64)
    cum[0] = 0
    np.cumsum(lens, out=cum[1:])
    nnz = int(cum[-1])
    narrow = block.indices.dtype.itemsize <= 4 and nnz < np.iinfo(np.int32).max and block.n_features < 2**31
    idx = np.dtype(np.int32) if narrow else np.dtype(np.int64)
    col, cn = _alloc((nnz,), _TORCH[idx], shared=shared, pin=pin, pool=pool, key=(key, "col"))
    values, vn = _alloc((nnz,), torch.float32, shared=shared, pin=pin, pool=pool, key=(key, "values"))
    mode = _scipy_mode(block, idx)
    indptr = block.indptr.astype(idx, copy=False) if mode else None
    src = None  # "swapped": the gathered indices in their stored dtype, widened into col after
    if mode == "swapped":
        src = pool.get((key, "col-stored"), (nnz,), block.indices.dtype) if pool is not None else \
            np.empty(nnz, block.indices.dtype)
    run_parts([(_gather_part, block, pos[a:b], starts[a:b], lens[a:b], idx, cn[cum[a]:cum[b]], vn[cum[a]:cum[b]],
                indptr, mode, None if src is None else src[cum[a]:cum[b]]) for a, b in _parts(cum, len(pos), threads)])
    return CSRBuffer(cum, col, values, block.n_features)


def _gather_part(block, pos, starts, lens, idx, col, values, indptr, mode, src) -> None:
    from scipy.sparse._sparsetools import csr_row_index

    if mode == "direct":  # scipy's C row gather: one pass, no index array
        csr_row_index(len(pos), pos.astype(idx, copy=False), indptr, block.indices, block.data, col, values)
        return
    if mode == "swapped":
        # scipy's gather is templated on an index type (int32 here) and a value type: the float32 values'
        # bits ride in the index slot and the narrow stored indices in the value slot; then they widen
        csr_row_index(len(pos), pos.astype(idx, copy=False), indptr, block.data.view(np.int32), block.indices,
                      values.view(np.int32), src)
        col[...] = src
        return
    # the source position of every output non-zero: its row's start plus its rank inside the row
    at = np.arange(len(col), dtype=np.int64)
    at += np.repeat(starts - (np.r_[0, np.cumsum(lens)[:-1]]), lens)
    col[:] = block.indices[at]
    values[:] = block.data[at]


#: Stored index dtypes scipy's row gather takes in its value slot (annbatch writes int16/uint16 indices).
_VALUE_SLOT = {np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.uint32)}


def _scipy_mode(block: CSRBlock, idx: np.dtype) -> str | None:
    """How scipy's C row gather applies to the block's arrays as they are (no scipy matrix: its constructor
    copies arrays that are views of a larger scratch buffer): ``"direct"`` (indices already in ``idx``,
    float32 values), ``"swapped"`` (narrower or unsigned indices, int32 output: see :func:`_gather_part`),
    or None (numpy's gather)."""
    try:
        from scipy.sparse._sparsetools import csr_row_index  # noqa: F401
    except ImportError:  # pragma: no cover - a scipy without it: the numpy path
        return None
    if block.data.dtype != np.float32:
        return None
    if block.indices.dtype == idx:
        return "direct"
    if idx == np.int32 and block.indices.dtype in _VALUE_SLOT:
        return "swapped"
    return None
