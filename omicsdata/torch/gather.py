"""Cutting one batch out of a read buffer: vectorised row gathers straight into the batch's tensors.

Every function allocates the batch's tensors once (in shared memory inside a
DataLoader worker, so the main process maps them without a copy; pinned when
a CUDA device is the target, so the host-to-device copy needs no staging
buffer) and fills them with one ``np.take`` per array -- no per-row Python,
no intermediate scipy matrix.
"""
from __future__ import annotations

import numpy as np
import torch

from ..storage import CSRBlock


def empty(shape, dtype, *, shared: bool = False, pin: bool = False) -> torch.Tensor:
    """An uninitialised tensor: in shared memory (``shared``), pinned (``pin``) or plain."""
    t = torch.empty(shape, dtype=dtype, pin_memory=pin)
    return t.share_memory_() if shared else t


_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64}


def dense_rows(block: np.ndarray, pos: np.ndarray, *, shared: bool = False, pin: bool = False) -> torch.Tensor:
    """Rows ``pos`` of a dense block as a float32 ``(len(pos), p)`` tensor (one gather, no second copy)."""
    if block.dtype != np.float32:
        return torch.from_numpy(block[pos].astype(np.float32))
    if not (shared or pin):
        return torch.from_numpy(block[pos])  # numpy's allocator (huge pages) beats a fresh torch.empty
    t = empty((len(pos), block.shape[1]), torch.float32, shared=shared, pin=pin)
    np.take(block, pos, axis=0, out=t.numpy(), mode="clip")  # "clip": unbuffered (pos is in range)
    return t


def csr_rows(block: CSRBlock, pos: np.ndarray, *, shared: bool = False, pin: bool = False) -> dict:
    """Rows ``pos`` of a CSR block as the parts of a torch CSR tensor: ``crow``, ``col``, ``values``, ``shape``.

    ``col`` and ``crow`` share one index dtype (int32 when the block's
    indices fit, as torch requires); ``values`` are float32.
    """
    ptr = block.indptr
    starts = ptr[pos]
    lens = ptr[pos + 1] - starts
    nnz = int(lens.sum())
    narrow = block.indices.dtype.itemsize <= 4 and nnz < np.iinfo(np.int32).max and block.n_features < 2**31
    idx = np.dtype(np.int32) if narrow else np.dtype(np.int64)
    crow = empty((len(pos) + 1,), _TORCH[idx], shared=shared, pin=pin)
    c = crow.numpy()
    c[0] = 0
    np.cumsum(lens, out=c[1:])
    col = empty((nnz,), _TORCH[idx], shared=shared, pin=pin)
    values = empty((nnz,), torch.float32, shared=shared, pin=pin)
    if not _row_index(block, pos, idx, col.numpy(), values.numpy()):
        # the source position of every output non-zero: its row's start plus its rank inside the row
        src = np.arange(nnz, dtype=np.int64)
        src += np.repeat(starts - c[:-1], lens)
        col.numpy()[:] = block.indices[src]
        values.numpy()[:] = block.data[src]
    return {"crow": crow, "col": col, "values": values, "shape": (len(pos), block.n_features)}


def _row_index(block: CSRBlock, pos: np.ndarray, idx: np.dtype, col: np.ndarray, values: np.ndarray) -> bool:
    """Fill ``col``/``values`` with scipy's C row gather (one pass, no index array); False where it does not apply."""
    try:
        from scipy.sparse._sparsetools import csr_row_index
    except ImportError:  # pragma: no cover - a scipy without it: the numpy path
        return False
    csr = block.to_scipy()  # built once per block; indptr narrowed to the indices' dtype where it fits
    if not (csr.indices.dtype == csr.indptr.dtype == idx and block.data.dtype == np.float32):
        return False
    csr_row_index(len(pos), pos.astype(idx, copy=False), csr.indptr, csr.indices, block.data, col, values)
    return True
