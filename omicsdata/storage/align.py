"""Modalities and the store's rows: expand a modality holding some samples to all of them (writing), and keep
only its observed samples (``od.load(..., missing="drop")``).

A store holds every sample in every modality (a zero row where absent, ``obs["has_<modality>"]`` False);
MuData lets each modality hold only its own samples. :func:`expand_modality` turns the second into the
first, :func:`drop_missing` the first into the second (lazy matrices stay lazy: dask row selection).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import StoreError
from .layout import presence_column


def _rows(M, pos: np.ndarray, n: int):
    """``M``'s rows placed at rows ``pos`` of an ``n``-row result, zeros (or NaN for frames) elsewhere."""
    if isinstance(M, pd.DataFrame):
        out = M.reset_index(drop=True)
        out.index = pos
        return out.reindex(np.arange(n))
    if sp.issparse(M):
        P = sp.csr_matrix((np.ones(len(pos), M.dtype), (pos, np.arange(len(pos)))), shape=(n, M.shape[0]))
        return (P @ M).tocsr() if not isinstance(M, sp.csr_array) else sp.csr_array(P @ M)
    if hasattr(M, "dask"):
        return _dask_rows(M, pos, n)
    M = np.asarray(M)
    out = np.zeros((n,) + M.shape[1:], dtype=M.dtype)
    out[pos] = M
    return out


def _place(sub, have: np.ndarray):
    """One output block: the rows of ``sub`` at the True positions of ``have``, zeros elsewhere."""
    k = len(have)
    if sp.issparse(sub):
        idx = np.flatnonzero(have)
        P = sp.csr_matrix((np.ones(len(idx), sub.dtype), (idx, np.arange(len(idx)))), shape=(k, sub.shape[0]))
        return (P @ sp.csr_matrix(sub)).tocsr()
    out = np.zeros((k,) + sub.shape[1:], dtype=sub.dtype)
    out[have] = np.asarray(sub)
    return out


def _take_range(block, rows: np.ndarray):
    return block[rows]


def _dask_rows(M, pos: np.ndarray, n: int):
    """:func:`_rows` for a dask array (dense or CSR blocks): one lazy block per ``M``'s row chunk size, each
    reading the row range of ``M`` it needs by plain slicing (sparse blocks do not take fancy indices)."""
    import dask
    import dask.array as da

    take = np.full(n, -1, np.int64)
    take[pos] = np.arange(len(pos))
    step = max(1, int(M.chunksize[0]))
    blocks = []
    for s in range(0, n, step):
        t = take[s:s + step]
        have = t >= 0
        src = t[have]
        if not len(src):
            blocks.append(da.zeros((len(t),) + M.shape[1:], dtype=M.dtype, chunks=(len(t),) + M.shape[1:])
                          .map_blocks(_like, M._meta, dtype=M.dtype, meta=M._meta))
            continue
        lo, hi = int(src.min()), int(src.max()) + 1
        sub = dask.delayed(_take_range)(M[lo:hi], src - lo)
        blocks.append(da.from_delayed(dask.delayed(_place)(sub, have), shape=(len(t),) + M.shape[1:],
                                      dtype=M.dtype, meta=M._meta))
    return da.concatenate(blocks)


def _like(block, meta):
    """A zero block of the kind of ``meta`` (scipy CSR for sparse dask arrays)."""
    return sp.csr_matrix(block.shape, dtype=block.dtype) if sp.issparse(meta) else block


def _pairs(M, pos: np.ndarray, n: int):
    """An ``(k, k)`` pairwise matrix placed at rows and columns ``pos`` of an ``(n, n)`` one."""
    if sp.issparse(M):
        P = sp.csr_matrix((np.ones(len(pos)), (pos, np.arange(len(pos)))), shape=(n, M.shape[0]))
        return (P @ sp.csr_matrix(M) @ P.T).tocsr().astype(M.dtype)
    M = np.asarray(M)
    out = np.zeros((n, n), dtype=M.dtype)
    out[np.ix_(pos, pos)] = M
    return out


def _expand_obs(mobs: pd.DataFrame, obs: pd.DataFrame, pos: np.ndarray) -> pd.DataFrame:
    """The modality's obs over all samples: a column copied from the global obs (equal on the modality's
    rows) is taken whole from there, so dtypes survive; any other column is NaN where absent."""
    out = pd.DataFrame(index=obs.index)
    for c in mobs.columns:
        if c in obs.columns and obs[c].iloc[pos].reset_index(drop=True).equals(mobs[c].reset_index(drop=True)):
            out[c] = obs[c]
        else:
            col = mobs[c].reset_index(drop=True)
            if col.dtype.kind in "biu":  # absent rows are NA: nullable dtypes keep the values exact
                col = col.astype("boolean" if col.dtype.kind == "b" else f"Int{8 * col.dtype.itemsize}")
            col.index = pos
            out[c] = col.reindex(np.arange(len(obs))).array
    return out


def expand_modality(name: str, a, obs: pd.DataFrame):
    """The AnnData ``a`` (some of ``obs``'s samples, any order) over every row of ``obs``, in ``obs`` order:
    X, layers, obsm, obsp and raw get zero rows where the sample is absent. Returns ``(AnnData, present)``."""
    import anndata as ad

    pos = obs.index.get_indexer(a.obs_names)
    if (pos < 0).any():
        bad = list(a.obs_names[pos < 0][:3])
        raise StoreError(f"modality '{name}': samples {bad} are not in the MuData's obs")
    n = len(obs)
    present = np.zeros(n, bool)
    present[pos] = True
    out = ad.AnnData(
        X=None if a.X is None else _rows(a.X, pos, n), obs=_expand_obs(a.obs, obs, pos), var=a.var.copy(),
        uns=dict(a.uns), varm=dict(a.varm), varp=dict(a.varp),
        layers={k: _rows(v, pos, n) for k, v in a.layers.items()},
        obsm={k: _framed(_rows(v, pos, n), obs.index) for k, v in a.obsm.items()},
        obsp={k: _pairs(v, pos, n) for k, v in a.obsp.items()})
    if a.raw is not None:
        out.raw = ad.AnnData(X=_rows(a.raw.X, pos, n), obs=pd.DataFrame(index=obs.index), var=a.raw.var.copy(),
                             varm=dict(a.raw.varm))
    return out, present


def _framed(v, index):
    if isinstance(v, pd.DataFrame):
        v.index = index
    return v


def drop_missing(mods: dict, obs: pd.DataFrame) -> dict:
    """Each modality keeping only the samples with ``obs["has_<modality>"]`` True (all when no such column)."""
    out = {}
    for name, a in mods.items():
        col = presence_column(name)
        if col not in obs.columns or bool(obs[col].all()):
            out[name] = a
            continue
        keep = obs[col].to_numpy(dtype=bool)
        out[name] = b = a[keep].copy()
        for c in b.obs.columns:  # a nullable column written for the absent rows (see _expand_obs) comes back plain
            dt = b.obs[c].dtype
            if isinstance(dt, pd.BooleanDtype | pd.core.arrays.integer.IntegerDtype) and not b.obs[c].isna().any():
                b.obs[c] = b.obs[c].to_numpy(dtype=bool if isinstance(dt, pd.BooleanDtype) else dt.numpy_dtype)
    return out
