"""Row-range readers: the hot path of every consumer of a store.

Readers take row *ranges* (whole chunk runs) and return one numpy block
(dense) or one :class:`CSRBlock` (sparse); callers gather the rows they want
with one vectorised take (:func:`read_rows` does it for rows in any order).
Store-backed readers open the Zarr arrays directly (zarr v3, local or any
fsspec URL) and reopen them lazily in every process, so they pickle cheaply
for DataLoader workers started with fork or spawn. Every reader has
``kind`` ("dense" | "csr"), ``shape``, ``dtype``, ``chunk_rows`` and
``read(starts, stops, reuse=False)``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from ..errors import CorruptStoreError, StoreError
from . import memory
from .chunk_errors import (  # noqa: F401 - corrupt_chunk is imported from here by others
    ChunkDecodeError,
    _decode_error,
    corrupt_chunk,
)
from .chunks import LocalChunks, plan
from .jobs import DEFAULT_DECODE_THREADS, run_jobs
from .layout import csr_part_key, graph_key, matrix_key


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
    stream gathers a buffer's rows out of its slot before it reads the next
    buffer into it; reuse spares the page faults
    of a new ~100 MB allocation per buffer (slots are mapped without numpy's
    huge-page advice, see :mod:`~.memory`).
    """
    if reuse is False:
        return np.empty((n, *tail), dtype=dtype)
    k = (int(reuse), key)
    have = slots.get(k)
    if have is None or have.shape[0] < n or have.dtype != dtype:
        have = slots[k] = memory.empty((int(n * 1.25) + 1, *tail), dtype)
    return have[:n]


def _into(out: np.ndarray):
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype().nd_buffer.from_numpy_array(out)


def _direct_read(reader, parts) -> None:
    """Decode ``[(LocalChunks, out, starts, stops)]`` (ranges packed one after another in each ``out``)
    on ``reader.decode_threads`` threads; a chunk that does not decode raises :class:`CorruptStoreError`."""
    try:
        run_jobs(plan(parts), reader.decode_threads)
    except ChunkDecodeError as e:
        raise corrupt_chunk(reader.url, reader.modality, reader.dataset, e.path, e) from e


class DenseZarrReader:
    """Whole-row ranges of a dense Zarr v3 matrix (:func:`~omicsdata.storage.layout.matrix_key`)."""

    kind = "dense"
    scatters = True  # read(..., into=(out, dest)) places rows as it decodes them

    def __init__(self, url: str, modality: str, shape, dtype, chunk_rows: int, dataset: str | None = None,
                 key: str | None = None, zarr_format: int | None = 3):
        self.url, self.modality, self.dataset = url, modality, dataset
        self.shape, self.dtype, self.chunk_rows = tuple(shape), np.dtype(dtype), int(chunk_rows)
        self.key, self.zarr_format = key or matrix_key(modality), zarr_format
        self.decode_threads = DEFAULT_DECODE_THREADS
        self._arr = self._direct = None
        self._scratch: dict = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_arr"], d["_direct"], d["_scratch"] = None, None, {}
        return d

    @property
    def arr(self):
        if self._arr is None:
            import zarr

            self._arr = zarr.open_group(self.url, mode="r", zarr_format=self.zarr_format)[self.key]
            self._direct = LocalChunks.of(self.url, self.key, self._arr) or False
        return self._arr

    def read(self, starts: np.ndarray, stops: np.ndarray, reuse: bool | int = False,
             into: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Rows ``[starts[i], stops[i])`` concatenated, as one ``(rows, n_features)`` array.

        All ranges are fetched concurrently and zarr decodes straight into
        the result (no intermediate copy). ``reuse`` (True or a slot number)
        returns a view of that slot's scratch buffer, which the next read
        into the same slot overwrites (the stream copies rows out first).
        ``into=(out, dest)``: row ``i`` of the read goes to ``out[dest[i]]``
        instead (``dest[i] == -1``: dropped), and ``out`` is returned: local
        chunk files are decoded chunk by chunk into a cache-sized array and
        scattered (:class:`~.memory.Scatter`; the stream's shuffled buffer
        in one pass), other stores read into scratch first.
        """
        starts, stops = _merge(np.asarray(starts), np.asarray(stops))
        if into is not None:
            return self._read_into(starts, stops, *into)
        n = int((stops - starts).sum())
        out = _scratch(self._scratch, "X", n, (self.shape[1],), self.dtype, reuse)
        arr = self.arr
        if self._direct and self._direct.dtype == self.dtype:  # whole chunk files, decoded in parallel
            _direct_read(self, [(self._direct, out, starts, stops)])
            return out[:n]
        aa = arr._async_array
        jobs, o = [], 0
        for a, b in zip(starts.tolist(), stops.tolist()):
            jobs.append(aa.get_orthogonal_selection((slice(a, b), slice(None)), out=_into(out[o:o + b - a])))
            o += b - a
        try:
            _run_concurrently(jobs)
        except Exception as e:  # noqa: BLE001 - a chunk that does not decode: name it
            raise _decode_error(self.url, self.modality, self.dataset, [(self.key, self.arr)],
                                lambda _k: zip(starts.tolist(), stops.tolist()), e) from e
        return out[:n]

    def _read_into(self, starts, stops, out: np.ndarray, dest: np.ndarray) -> np.ndarray:
        if len(dest) != int((stops - starts).sum()):
            raise ValueError(f"dest has {len(dest)} entries for a read of {int((stops - starts).sum())} rows")
        self.arr  # noqa: B018 - opens the array (and the direct reader)
        if self._direct and self._direct.dtype == self.dtype:
            _direct_read(self, [(self._direct, memory.Scatter(out, dest), starts, stops)])
        else:
            memory.Scatter(out, dest).put(self.read(starts, stops, reuse=True))
        return out


class CSRZarrReader:
    """Row ranges of an anndata CSR group (``data``/``indices``/``indptr``) in a Zarr v3 store."""

    kind = "csr"

    def __init__(self, url: str, modality: str, shape, dtype, chunk_rows: int, dataset: str | None = None,
                 key: str | None = None, zarr_format: int | None = 3):
        self.url, self.modality, self.dataset = url, modality, dataset
        self.shape, self.dtype, self.chunk_rows = tuple(shape), np.dtype(dtype), int(chunk_rows)
        self.key, self.zarr_format = key or matrix_key(modality), zarr_format
        self.decode_threads = DEFAULT_DECODE_THREADS
        self._g = self._direct = None
        self._scratch: dict = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_g"], d["_direct"], d["_scratch"] = None, None, {}
        return d

    @property
    def g(self):
        if self._g is None:
            import zarr

            g = zarr.open_group(self.url, mode="r", zarr_format=self.zarr_format)[self.key]
            self._g = (g["data"], g["indices"], g["indptr"])
            direct = [LocalChunks.of(self.url, f"{self.key}/{p}", a) for p, a in zip(("data", "indices", "indptr"), self._g)]
            self._direct = tuple(direct) if all(direct) else False
        return self._g

    def read(self, starts: np.ndarray, stops: np.ndarray, reuse: bool | int = False) -> CSRBlock:
        """Rows ``[starts[i], stops[i])`` as one CSR block: the ``indptr`` slices first, then every
        ``data``/``indices`` range at once, decoded straight into the block's arrays. A chunk that
        does not decode raises :class:`CorruptStoreError` naming its file."""
        try:
            return self._read(starts, stops, reuse)
        except CorruptStoreError:
            raise
        except Exception as e:  # noqa: BLE001 - find and name the bad chunk
            starts, stops = _merge(np.asarray(starts), np.asarray(stops))
            data_a, ind_a, ptr_a = self.g
            base = matrix_key(self.modality)
            ptr = np.asarray(ptr_a[...], dtype=np.int64) if _decodes(ptr_a) else None
            parts = [(f"{base}/indptr", ptr_a)] + ([(f"{base}/data", data_a), (f"{base}/indices", ind_a)]
                                                    if ptr is not None else [])

            def ranges(key):
                if key.endswith("indptr"):
                    return [(0, int(ptr_a.shape[0]))]
                return [(int(ptr[a]), int(ptr[b])) for a, b in zip(starts.tolist(), stops.tolist())]
            raise _decode_error(self.url, self.modality, self.dataset, parts, ranges, e) from e

    def _read(self, starts, stops, reuse):
        starts, stops = _merge(np.asarray(starts), np.asarray(stops))
        if self.g and self._direct:
            return self._read_direct(starts, stops, reuse)
        data_a, ind_a, ptr_a = (x._async_array for x in self.g)
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

    def _read_direct(self, starts, stops, reuse):
        """The chunk files themselves: ``indptr`` of every range, then all ``data``/``indices`` in parallel."""
        d_data, d_ind, d_ptr = self._direct
        ptr = np.empty(int((stops - starts).sum()) + len(starts), dtype=d_ptr.dtype)
        _direct_read(self, [(d_ptr, ptr, starts, stops + 1)])
        ends = np.cumsum(stops - starts + 1)
        lo, hi = ptr[ends - (stops - starts + 1)].astype(np.int64), ptr[ends - 1].astype(np.int64)
        nnz = int((hi - lo).sum())
        data = _scratch(self._scratch, "data", nnz, (), d_data.dtype, reuse)
        indices = _scratch(self._scratch, "indices", nnz, (), d_ind.dtype, reuse)
        _direct_read(self, [(d_data, data, lo, hi), (d_ind, indices, lo, hi)])
        # rebase each range's indptr to where its non-zeros sit in the block (one vectorised pass)
        shift = np.repeat(np.r_[0, np.cumsum(hi - lo)[:-1]] - lo, stops - starts + 1)
        keep = np.ones(len(ptr), dtype=bool)
        keep[(ends - (stops - starts + 1))[1:]] = False  # each range's first entry repeats the previous end
        indptr = (ptr.astype(np.int64) + shift)[keep]
        return CSRBlock(data.astype(self.dtype, copy=False), indices, indptr, self.shape[1])


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
        """Rows ``[starts[i], stops[i])`` concatenated (dense array or :class:`CSRBlock`)."""
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


CSR_BLOCK_CHUNKS = 2


def csr_block_rows(meta: dict, url: str, modality: str) -> int:
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

        nnz = int(zarr.open_group(url, mode="r", zarr_format=3)[csr_part_key(modality, "data")].shape[0])
    except Exception:  # noqa: BLE001 - only a sizing hint
        nnz = n * max(1, p // 20)
    per_row = max(1.0, nnz / max(1, n))
    return max(1, min(n, int(CSR_BLOCK_CHUNKS * elems / per_row)))


def _decodes(arr) -> bool:
    try:
        arr[...]
        return True
    except Exception:  # noqa: BLE001
        return False


def zarr_reader(url: str, modality: str, meta: dict, dataset: str | None = None):
    """The reader of one modality of a store, from its manifest entry ``meta`` (``dataset`` names it in errors)."""
    if meta["storage"] == "dense":
        return DenseZarrReader(url, modality, meta["shape"], meta["dtype"], meta["chunks"][0], dataset)
    return CSRZarrReader(url, modality, meta["shape"], meta["dtype"], csr_block_rows(meta, url, modality), dataset)


def row_runs(rows: np.ndarray):
    """For ``rows`` (any order, repeats allowed): the ranges ``starts, stops`` covering their sorted
    distinct values in runs of consecutive rows, and each row's position in the concatenated read."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if not len(rows):
        return rows, rows, rows
    uniq, inverse = np.unique(rows, return_inverse=True)
    brk = np.flatnonzero(np.diff(uniq) != 1) + 1
    starts = uniq[np.r_[0, brk]]
    stops = uniq[np.r_[brk - 1, len(uniq) - 1]] + 1
    run_of = np.searchsorted(starts, uniq, side="right") - 1
    run_off = np.r_[0, np.cumsum(stops - starts)][:-1]
    return starts, stops, (run_off[run_of] + (uniq - starts[run_of]))[inverse.reshape(-1)]


def read_rows(reader, rows) -> np.ndarray:
    """Rows (any order, repeats allowed) of ``reader`` as a dense float32 ``(len(rows), p)`` array,
    read with one range per run of consecutive rows."""
    starts, stops, pos = row_runs(rows)
    if not len(pos):
        return np.zeros((0, reader.shape[1]), dtype=np.float32)
    block = reader.read(starts, stops)
    if isinstance(block, CSRBlock):
        return np.ascontiguousarray(block.to_scipy()[pos].toarray(), dtype=np.float32)
    return np.ascontiguousarray(block[pos], dtype=np.float32)


def read_graph_arrays(url: str, modality: str) -> dict[str, np.ndarray]:
    """The stored topology of ``modality``: ``edge_index`` int64 ``[2, E]``, ``edge_type`` uint8, ``n_nodes``."""
    import zarr

    key = graph_key(modality)
    try:
        g = zarr.open_group(url, mode="r", zarr_format=3)[key]
    except KeyError:
        raise StoreError(f"{url}: no graph stored for modality '{modality}' (expected {key}/edge_index)") from None
    out = {}
    for part, dtype in (("edge_index", np.int64), ("edge_type", np.uint8), ("n_nodes", None)):
        try:
            arr = g[part]
            v = np.asarray(arr[...])
        except KeyError:
            raise StoreError(f"{url}: graph of modality '{modality}' has no '{part}' ({key}/{part})") from None
        except Exception as e:  # noqa: BLE001 - a chunk that does not decode
            raise corrupt_chunk(url, modality, None, f"{url.rstrip('/')}/{key}/{part}", e) from e
        out[part] = int(v) if dtype is None else np.asarray(v, dtype=dtype)
    return out
