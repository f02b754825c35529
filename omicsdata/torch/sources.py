"""Resolve what a user passes (name, store path/URL, opened store, in-memory MuData/AnnData)
into a :class:`Source`: the sample table plus one row-range reader per modality.

Readers are the hot path. They take row *ranges* (whole chunk runs) and
return one numpy block (dense) or one CSR block (sparse); the stream then
gathers the rows it wants with one vectorised take. Store-backed readers
open the Zarr arrays directly (zarr v3, local or any fsspec URL) and reopen
them lazily in every process, so a Source pickles cheaply for DataLoader
workers started with fork or spawn.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import SchemaMismatchError, StoreError
from ..store import presence_column


@dataclasses.dataclass
class CSRBlock:
    """Rows of a CSR matrix: ``indptr`` starts at 0; ``shape = (len(indptr) - 1, n_features)``."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_features: int
    _csr: sp.csr_matrix | None = dataclasses.field(default=None, repr=False, compare=False)

    def to_scipy(self) -> sp.csr_matrix:
        """The block as a scipy CSR matrix, built once (the stream cuts many batches from one block).

        ``indptr`` takes the dtype of ``indices`` where it fits, so scipy does
        not up-cast (copy) all of ``indices`` to a common index dtype.
        """
        if self._csr is None:
            ptr = self.indptr
            if self.indices.dtype == np.int32 and (len(ptr) == 0 or ptr[-1] < np.iinfo(np.int32).max):
                ptr = ptr.astype(np.int32)
            self._csr = sp.csr_matrix((self.data, self.indices, ptr), shape=(len(self.indptr) - 1, self.n_features))
        return self._csr


def _merge(starts: np.ndarray, stops: np.ndarray):
    """Merge touching ranges (already in read order) so adjacent chunks are read in one call."""
    if len(starts) <= 1:
        return starts, stops
    brk = np.flatnonzero(starts[1:] != stops[:-1]) + 1
    return starts[np.r_[0, brk]], stops[np.r_[brk - 1, len(stops) - 1]]


def _run_concurrently(jobs):
    """Await ``jobs`` (coroutines) together on zarr's event loop; return their results in order.

    Zarr decodes each chunk in a worker thread (``asyncio.to_thread``), so
    issuing all the chunk ranges of a buffer at once decodes them in
    parallel, where one blocking call per range would decode them one by one.
    ``zarr.core.sync.sync`` is the loop zarr's own synchronous API runs on
    (fsspec stores bind their sessions to it).
    """
    import asyncio

    from zarr.core.sync import sync

    async def _all():
        return await asyncio.gather(*jobs)

    return sync(_all())


def _scratch(slots: dict, key, n: int, tail: tuple, dtype, reuse: bool | int) -> np.ndarray:
    """An array of ``n`` rows (shape ``(n, *tail)``) to read into.

    ``reuse=False``: a fresh array. Otherwise (True or a slot number) a view
    of the reader's scratch array for ``(slot, key)``, grown with 25% headroom
    when too small; the next read into the same slot overwrites it. The
    stream copies rows out before it reuses a slot, and alternates two slots
    (one read ahead while the other is served); reuse spares the page faults
    of a new ~100 MB allocation per buffer.
    """
    if reuse is False:
        return np.empty((n, *tail), dtype=dtype)
    k = (int(reuse), key)
    have = slots.get(k)
    if have is None or have.shape[0] < n or have.dtype != dtype:
        have = slots[k] = np.empty((int(n * 1.25) + 1, *tail), dtype=dtype)
    return have[:n]


def _into(out: np.ndarray):
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype().nd_buffer.from_numpy_array(out)


class DenseZarrReader:
    """Whole-row ranges of a dense Zarr v3 array ``<store>/mod/<m>/X``."""

    kind = "dense"

    def __init__(self, url: str, modality: str, shape, dtype, chunk_rows: int):
        self.url, self.modality = url, modality
        self.shape, self.dtype, self.chunk_rows = tuple(shape), np.dtype(dtype), int(chunk_rows)
        self._arr = None
        self._scratch: dict = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_arr"], d["_scratch"] = None, {}
        return d

    @property
    def arr(self):
        if self._arr is None:
            import zarr

            self._arr = zarr.open_group(self.url, mode="r", zarr_format=3)[f"mod/{self.modality}/X"]
        return self._arr

    def read(self, starts: np.ndarray, stops: np.ndarray, reuse: bool | int = False) -> np.ndarray:
        """Rows ``[starts[i], stops[i])`` concatenated, as one ``(rows, n_features)`` array.

        All ranges are fetched concurrently and zarr decodes straight into
        the result (no intermediate copy). ``reuse`` (True or a slot number)
        returns a view of that slot's scratch buffer, which the next read
        into the same slot overwrites (the stream copies rows out first and
        alternates two slots, reading one buffer while serving the other).
        """
        starts, stops = _merge(np.asarray(starts), np.asarray(stops))
        n = int((stops - starts).sum())
        out = _scratch(self._scratch, "X", n, (self.shape[1],), self.dtype, reuse)
        aa = self.arr._async_array
        jobs, o = [], 0
        for a, b in zip(starts.tolist(), stops.tolist()):
            jobs.append(aa.get_orthogonal_selection((slice(a, b), slice(None)), out=_into(out[o:o + b - a])))
            o += b - a
        _run_concurrently(jobs)
        return out[:n]


class CSRZarrReader:
    """Row ranges of an anndata CSR group (``data``/``indices``/``indptr``) in a Zarr v3 store."""

    kind = "csr"

    def __init__(self, url: str, modality: str, shape, dtype, chunk_rows: int):
        self.url, self.modality = url, modality
        self.shape, self.dtype, self.chunk_rows = tuple(shape), np.dtype(dtype), int(chunk_rows)
        self._g = None
        self._scratch: dict = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_g"], d["_scratch"] = None, {}
        return d

    @property
    def g(self):
        if self._g is None:
            import zarr

            g = zarr.open_group(self.url, mode="r", zarr_format=3)[f"mod/{self.modality}/X"]
            self._g = (g["data"], g["indices"], g["indptr"])
        return self._g

    def read(self, starts: np.ndarray, stops: np.ndarray, reuse: bool | int = False) -> CSRBlock:
        """Rows ``[starts[i], stops[i])`` as one CSR block: the ``indptr`` slices first, then every
        ``data``/``indices`` range at once, decoded straight into the block's arrays."""
        data_a, ind_a, ptr_a = (x._async_array for x in self.g)
        starts, stops = _merge(np.asarray(starts), np.asarray(stops))
        ptrs = _run_concurrently([ptr_a.getitem(slice(a, b + 1)) for a, b in zip(starts.tolist(), stops.tolist())])
        ptrs = [np.asarray(p, dtype=np.int64) for p in ptrs]
        lens = np.array([int(p[-1] - p[0]) for p in ptrs], dtype=np.int64)
        nnz = int(lens.sum())
        data = _scratch(self._scratch, "data", nnz, (), data_a.dtype, reuse)
        indices = _scratch(self._scratch, "indices", nnz, (), ind_a.dtype, reuse)
        jobs, base = [], 0
        indptr = [np.zeros(1, dtype=np.int64)]
        for p, k in zip(ptrs, lens.tolist()):
            lo, hi = int(p[0]), int(p[-1])
            if k:
                sel = (slice(lo, hi),)
                jobs.append(data_a.get_orthogonal_selection(sel, out=_into(data[base:base + k])))
                jobs.append(ind_a.get_orthogonal_selection(sel, out=_into(indices[base:base + k])))
            indptr.append(p[1:] - lo + base)
            base += k
        _run_concurrently(jobs)
        return CSRBlock(data.astype(self.dtype, copy=False), indices, np.concatenate(indptr), self.shape[1])


class MemoryReader:
    """Row ranges of an in-memory matrix (numpy, scipy sparse, or dask), optionally through a row map.

    ``rowmap[i]`` is the matrix row of sample ``i`` (-1: sample lacks this
    modality, read as a zero row) -- for MuData objects whose modalities
    hold different samples.
    """

    def __init__(self, X, n_obs: int, rowmap: np.ndarray | None = None, chunk_rows: int | None = None):
        if hasattr(X, "compute") and not isinstance(X, np.ndarray):  # dask: materialise once
            X = X.compute()
        self.kind = "csr" if sp.issparse(X) else "dense"
        X = sp.csr_matrix(X) if self.kind == "csr" else np.asarray(X)
        self.X, self.rowmap = X, rowmap
        self.shape = (int(n_obs), int(X.shape[1]))
        self.dtype = np.dtype(np.float32) if X.dtype.kind in "biu?" else X.dtype
        self.chunk_rows = int(chunk_rows or max(1, min(self.shape[0], 1024)))

    def read(self, starts, stops, reuse: bool | int = False):
        rows = np.concatenate([np.arange(a, b) for a, b in zip(np.asarray(starts).tolist(), np.asarray(stops).tolist())]) \
            if len(starts) else np.zeros(0, np.int64)
        if self.rowmap is None:
            sub = self.X[rows]
        else:
            src = self.rowmap[rows]
            have = src >= 0
            if self.kind == "csr":
                sel = np.where(have, src, 0)
                sub = self.X[sel].tocsr()
                sub = sp.csr_matrix(sp.diags(have.astype(self.X.dtype)) @ sub)
            else:
                sub = np.zeros((len(rows), self.shape[1]), dtype=self.X.dtype)
                sub[have] = self.X[src[have]]
        if self.kind == "csr":
            sub = sp.csr_matrix(sub)
            return CSRBlock(sub.data.astype(self.dtype, copy=False), sub.indices, sub.indptr.astype(np.int64), self.shape[1])
        return np.asarray(sub, dtype=self.dtype)


@dataclasses.dataclass
class Source:
    """A sample table plus one reader per modality, all in the same (store) row order."""

    obs: pd.DataFrame
    readers: dict[str, Any]
    presence: dict[str, np.ndarray]
    origin: str

    @property
    def n_obs(self) -> int:
        return len(self.obs)

    def block_rows(self) -> int:
        """Rows per block: the chunk rows of the modality with the most bytes per row (the dominant reads)."""
        best = max(self.readers.values(), key=lambda r: r.shape[1] * r.dtype.itemsize if r.kind == "dense" else 0)
        return int(best.chunk_rows)


CSR_BLOCK_CHUNKS = 2


def _csr_block_rows(meta: dict, url: str, modality: str) -> int:
    """Rows per block for a CSR modality: about :data:`CSR_BLOCK_CHUNKS` ``data`` chunks of non-zeros.

    Row blocks do not end on chunk boundaries, so a block decodes one chunk
    more than it covers: two chunks per block halves that waste against one
    (measured: ~1.5x the shuffled samples/s on a 100k-cell store), and the
    shuffle buffer (16 blocks) stays about 16 x 2 chunks of non-zeros.
    """
    n, p = meta["shape"]
    elems = int(meta.get("chunks", [1 << 19])[0])
    try:
        import zarr

        nnz = int(zarr.open_group(url, mode="r", zarr_format=3)[f"mod/{modality}/X/data"].shape[0])
    except Exception:  # noqa: BLE001 - only a sizing hint
        nnz = n * max(1, p // 20)
    per_row = max(1.0, nnz / max(1, n))
    return max(1, min(n, int(CSR_BLOCK_CHUNKS * elems / per_row)))


def _from_store(mdata, url: str, manifest: dict) -> Source:
    readers = {}
    for m, meta in manifest["modalities"].items():
        if meta["storage"] == "dense":
            readers[m] = DenseZarrReader(url, m, meta["shape"], meta["dtype"], meta["chunks"][0])
        else:
            readers[m] = CSRZarrReader(url, m, meta["shape"], meta["dtype"], _csr_block_rows(meta, url, m))
    obs = mdata.obs
    presence = {m: (obs[presence_column(m)].to_numpy(dtype=bool) if presence_column(m) in obs
                    else np.ones(len(obs), dtype=bool)) for m in readers}
    return Source(obs=obs, readers=readers, presence=presence, origin=url)


def _from_memory(obj) -> Source:
    import anndata as ad

    if isinstance(obj, ad.AnnData):
        if obj.isbacked:
            raise SchemaMismatchError("backed AnnData: write it with od.write_store(...) and pass the store path")
        X = obj.X
        if X is None:
            raise SchemaMismatchError("AnnData has no X matrix to stream")
        reader = MemoryReader(X, obj.n_obs)
        obs = obj.obs
        presence = {"X": obs[presence_column("X")].to_numpy(dtype=bool) if presence_column("X") in obs
                    else np.ones(obj.n_obs, dtype=bool)}
        return Source(obs=obs, readers={"X": reader}, presence=presence, origin="AnnData (in memory)")
    obs = obj.obs
    readers, presence = {}, {}
    for m, a in obj.mod.items():
        if a.X is None:
            raise SchemaMismatchError(f"modality '{m}' has no X matrix to stream")
        if a.n_obs == obj.n_obs and a.obs_names.equals(obj.obs_names):
            rowmap = None
            have = np.ones(obj.n_obs, dtype=bool)
        else:  # modality holds a subset of the samples: map through obsmap (1-based, 0 = absent)
            rowmap = np.asarray(obj.obsmap[m], dtype=np.int64) - 1
            have = rowmap >= 0
        readers[m] = MemoryReader(a.X, obj.n_obs, rowmap)
        col = presence_column(m)
        presence[m] = have & (obs[col].to_numpy(dtype=bool) if col in obs else True)
    return Source(obs=obs, readers=readers, presence=presence, origin="MuData (in memory)")


def resolve(obj) -> Source:
    """A :class:`Source` for a dataset name, store path or URL, opened store, or in-memory MuData/AnnData.

    An opened store (``od.load``/``od.open_store``) is read straight from its
    Zarr arrays when it still has all the store's samples; a subset or an
    edited object is read from memory (``index`` is then the row in that
    object).
    """
    import anndata as ad
    import mudata as md

    if isinstance(obj, Source):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        from ..api import load

        obj = load(obj)
    if isinstance(obj, md.MuData):
        manifest = obj.uns.get("omicsdata") if hasattr(obj, "uns") else None
        url = obj.uns.get("omicsdata_path") if hasattr(obj, "uns") else None
        if (manifest and url and obj.n_obs == int(manifest["n_obs"]) and not obj.is_view
                and set(obj.mod) == set(manifest["modalities"])):
            url = str(url)
            if "://" not in url:
                url = str(Path(url))
            return _from_store(obj, url, manifest)
        return _from_memory(obj)
    if isinstance(obj, ad.AnnData):
        return _from_memory(obj)
    raise StoreError(f"cannot stream a {type(obj).__name__}: pass a dataset name, a store path or URL, "
                     "or a MuData/AnnData")


def select_rows(source: Source, split: str | Sequence[str] | None) -> np.ndarray:
    """Sorted store rows of ``split`` (``None``/"all": every row); names the column and values when wrong."""
    n = source.n_obs
    if split is None or split == "all":
        return np.arange(n, dtype=np.int64)
    if "split" not in source.obs.columns:
        raise SchemaMismatchError(f"{source.origin}: obs has no 'split' column; pass split=None to use all samples")
    splits = [split] if isinstance(split, str) else list(split)
    col = source.obs["split"].astype(str).to_numpy()
    known = sorted(set(col))
    bad = [s for s in splits if s not in known]
    if bad:
        raise SchemaMismatchError(f"{source.origin}: split {bad} not in obs['split'] (has {known})")
    return np.flatnonzero(np.isin(col, splits)).astype(np.int64)


def check_modalities(source: Source, modalities: Sequence[str] | None) -> list[str]:
    mods = list(source.readers) if modalities is None else list(modalities)
    bad = [m for m in mods if m not in source.readers]
    if bad:
        raise SchemaMismatchError(f"{source.origin}: modality {bad} not in the data (has {list(source.readers)})")
    return mods


def encode_targets(obs: pd.DataFrame, targets: Sequence[str], origin: str) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Target columns as arrays: floats -> float32, ints/bools -> int64, categories/strings -> int64 codes (-1 = missing)."""
    out, classes = {}, {}
    for t in targets:
        if t not in obs.columns:
            raise SchemaMismatchError(f"{origin}: target '{t}' is not an obs column (has {list(obs.columns)})")
        s = obs[t]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            cat = s.astype("category")
            out[t] = cat.cat.codes.to_numpy().astype(np.int64)
            classes[t] = [str(c) for c in cat.cat.categories]
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
            out[t] = s.to_numpy().astype(np.int64)
        elif pd.api.types.is_float_dtype(s.dtype):
            out[t] = s.to_numpy().astype(np.float32)
        else:
            raise SchemaMismatchError(f"{origin}: target '{t}' has dtype {s.dtype}, not numeric or categorical")
    return out, classes
