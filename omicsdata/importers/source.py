"""Reading a user's AnnData / MuData row block by row block, never whole.

An ``.h5ad`` path is opened with ``anndata.read_h5ad(path, backed="r")``: X
stays on disk as an h5py dataset (dense) or an anndata ``CSRDataset``
(sparse), and a row slice ``X[a:b]`` reads only those rows. An ``.h5mu`` path
is opened with ``mudata.read_h5mu(path, backed=True)`` the same way. In-memory
objects are sliced as they are.

:class:`Matrix` wraps one modality's X and hands out aligned row blocks: a
MuData modality may hold only some of the cells, so :meth:`Matrix.rows` takes
global positions (``-1`` = the cell has no row in this modality) and returns
zero rows there.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import FormatError

#: about this many bytes of X per block read from disk (dense: rows * genes * itemsize; CSR: by nnz)
BLOCK_BYTES = 64 << 20


def open_anndata(path_or_adata):
    """``(adata, path or None)``: an AnnData as is, or an ``.h5ad`` path opened backed (read-only)."""
    import anndata as ad

    if isinstance(path_or_adata, ad.AnnData):
        return path_or_adata, None
    path = Path(os.fspath(path_or_adata)).expanduser()
    if not path.is_file():
        raise FormatError(path, "no such .h5ad file")
    try:
        adata = ad.read_h5ad(path, backed="r")
    except Exception as e:  # h5py / anndata raise many kinds for a bad file
        raise FormatError(path, f"not a readable .h5ad (AnnData HDF5) file: {type(e).__name__}: {e}") from None
    return adata, path


def open_mudata(path_or_mdata):
    """``(mdata, path or None)``: a MuData as is, or an ``.h5mu`` path opened backed (read-only)."""
    import mudata as md

    if isinstance(path_or_mdata, md.MuData):
        return path_or_mdata, None
    path = Path(os.fspath(path_or_mdata)).expanduser()
    if not path.is_file():
        raise FormatError(path, "no such .h5mu file")
    try:
        mdata = md.read_h5mu(path, backed=True)
    except Exception as e:
        raise FormatError(path, f"not a readable .h5mu (MuData HDF5) file: {type(e).__name__}: {e}") from None
    return mdata, path


class Matrix:
    """One modality's X, read by row blocks. ``where`` names it in errors (file and field)."""

    def __init__(self, X, where: str):
        self.X = X
        self.where = where
        self.shape = tuple(int(s) for s in X.shape)
        fmt = getattr(X, "format", None)  # anndata's backed CSRDataset/CSCDataset and scipy matrices
        if sp.issparse(X):
            fmt = X.format
        self.sparse = fmt in ("csr", "csc") or sp.issparse(X)
        if self.sparse and fmt not in ("csr",):
            if fmt == "csc" and sp.issparse(X):
                self.X = X.tocsr()  # in memory already: converting costs no more than the copy
            else:
                raise FormatError(where, f"X is stored as {fmt!r} on disk; row blocks of a CSC matrix need "
                                         "the whole matrix. Convert it first (adata.X = adata.X.tocsr(); "
                                         "adata.write_h5ad(...)) and import again")
        dtype = getattr(X, "dtype", None)
        if dtype is None or not (np.issubdtype(np.dtype(dtype), np.number) or np.dtype(dtype) == bool):
            raise FormatError(where, f"X has dtype {dtype}; a numeric matrix is needed")
        self.dtype = np.dtype(np.float32) if np.dtype(dtype).itemsize <= 4 or np.dtype(dtype) == bool \
            else np.dtype(np.float64)

    def block_rows(self, target_bytes: int = BLOCK_BYTES) -> int:
        """Rows per block so one block of X is about ``target_bytes`` in memory (dense size for dense X)."""
        n, p = self.shape
        if self.sparse:
            nnz = self._nnz()
            per_row = max(1, int(nnz / max(n, 1)) * 12)  # data + int64 index, with CSR slack
        else:
            per_row = max(1, p * self.dtype.itemsize)
        return int(max(1, min(n, target_bytes // per_row)))

    def _nnz(self) -> int:
        X = self.X
        if sp.issparse(X):
            return int(X.nnz)
        group = getattr(X, "group", None)
        if group is not None and "data" in group:
            return int(group["data"].shape[0])
        return int(self.shape[0] * self.shape[1])

    def read(self, start: int, stop: int):
        """Rows ``start:stop`` as float CSR (sparse X) or a float ndarray (dense X)."""
        try:
            block = self.X[start:stop]
        except Exception as e:
            raise FormatError(self.where, f"cannot read rows {start}-{stop}: {type(e).__name__}: {e}") from None
        if hasattr(block, "compute"):
            block = block.compute()
        if self.sparse:
            block = sp.csr_matrix(block)
            if block.dtype != self.dtype:
                block = block.astype(self.dtype)
            return block
        return np.asarray(block, dtype=self.dtype)

    def rows(self, positions: np.ndarray):
        """Rows at ``positions`` (ascending where >= 0; ``-1`` gives a zero row), as CSR or ndarray."""
        positions = np.asarray(positions, dtype=np.int64)
        present = positions >= 0
        p = self.shape[1]
        if present.all() and len(positions) and (np.diff(positions) == 1).all():
            return self.read(int(positions[0]), int(positions[-1]) + 1)
        out_n = len(positions)
        if not present.any():
            return sp.csr_matrix((out_n, p), dtype=self.dtype) if self.sparse else np.zeros((out_n, p), self.dtype)
        have = positions[present]
        lo, hi = int(have.min()), int(have.max()) + 1
        span = self.read(lo, hi)[have - lo]
        if self.sparse:
            # zero rows where the cell is missing: gather rows by an indicator matrix
            sel = sp.csr_matrix((np.ones(len(have), dtype=self.dtype), (np.flatnonzero(present), np.arange(len(have)))),
                                shape=(out_n, len(have)))
            return sp.csr_matrix(sel @ span)
        out = np.zeros((out_n, p), dtype=self.dtype)
        out[present] = span
        return out
