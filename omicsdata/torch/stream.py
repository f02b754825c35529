"""The block-shuffled stream: ``od.torch.stream(...)``.

How one epoch is served (see :mod:`omicsdata.torch.sharding` for the rule):

* The split's rows are grouped into *blocks* of ``block_rows`` store rows,
  aligned to the Zarr chunks of the modality with the most bytes per row
  (so a block is one whole-chunk read). Blocks are the sharding items.
* The block order is permuted with ``(seed, epoch)``; ranks and DataLoader
  workers take contiguous runs of that order (exact-once, equal batches
  per rank).
* A worker reads ``buffer_size`` samples' worth of blocks at a time (set by
  the ``buffer_bytes`` budget; whole chunk ranges, local chunk files decoded
  in parallel, see :mod:`omicsdata.storage.chunks`), shuffles the rows of
  that buffer with a seeded permutation and gathers every array of it in
  that order at once, row parts on two threads (:mod:`omicsdata.torch.gather`)
  -- no per-sample Python. A dense matrix of a local store is gathered as it
  is read: each chunk decodes into a cache-sized array whose rows go
  straight to their shuffled places (:class:`omicsdata.storage.memory.Scatter`).
  A read-ahead thread does this for the next buffer while the current one is served;
  batches are slices (views) of the gathered buffer, so the consumer's
  thread only cuts them.
* Batches travel to the main process as torch tensors in shared memory
  (CSR modalities as their three arrays); the main process turns them into
  the final dict on ``device`` through :class:`~omicsdata.torch.prefetch.Prefetcher`
  (pinned buffers + a side CUDA stream when ``device`` is CUDA).

A batch is a dict: ``batch[m]`` (float32, ``(B, n_features)``; a
``torch.sparse_csr_tensor`` for CSR modalities unless densified),
``batch[f"{m}_mask"]`` (bool, True where the sample has modality ``m``;
absent samples have zero rows), one tensor per target, and ``batch["index"]``
(int64 store rows of the samples).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from .. import storage
from ..errors import SchemaMismatchError
from ..storage import CSRBlock, Store
from . import gather, sharding
from .device import resolve_device
from .sources import check_modalities, decode_codes, encode_targets

DEFAULT_BUFFER_BYTES = 192 << 20  # decoded rows one stream holds at once (read scratch + gathered buffers), a budget
DEFAULT_BUFFER_BLOCKS = 16
# one read scratch + two gathered buffers (the one served, the next prepared), each with 25% growth headroom
_SLOTS = 3.75


def _passthrough(x):
    return x


def row_bytes(reader) -> float:
    """Decoded bytes per row of ``reader``: dense width x itemsize; CSR non-zeros per row x (value + index) + indptr."""
    if reader.kind == "dense":
        return float(reader.shape[1] * reader.dtype.itemsize)
    g = getattr(reader, "g", None)
    if g is not None:  # a store's CSR group: (data, indices, indptr)
        nnz, idx = int(g[0].shape[0]), np.dtype(g[1].dtype).itemsize
    else:  # in memory
        nnz, idx = int(getattr(reader.X, "nnz", 0)), 4
    return nnz / max(1, reader.shape[0]) * (reader.dtype.itemsize + idx) + 8


def default_buffer_size(source: Store, modalities: Sequence[str], block_rows: int, batch_size: int,
                        buffer_bytes: int | None = None) -> int:
    """Samples per shuffle buffer so that the read scratch and two gathered buffers stay within ``buffer_bytes``.

    Default budget :data:`DEFAULT_BUFFER_BYTES`; at most 16 blocks; at least
    one batch (a budget below one batch's rows cannot hold).
    """
    per_row = sum(row_bytes(source.readers[m]) for m in modalities)
    budget = DEFAULT_BUFFER_BYTES if buffer_bytes is None else int(buffer_bytes)
    # a buffer reads up to (buffer_size + batch_size - 1) rows: cuts end on batch boundaries
    cap = int(budget / _SLOTS / max(1.0, per_row)) - batch_size + 1
    want = max(DEFAULT_BUFFER_BLOCKS * block_rows, 4 * batch_size)
    return int(max(batch_size, min(want, cap)))


class ShardStream(IterableDataset):
    """The IterableDataset each DataLoader worker runs; yields host batches (tensors).

    Most users call :func:`stream`, which wraps this in a DataLoader and a
    device prefetcher. ``rank``/``world_size``/``worker``/``num_workers``
    override what torch reports (tests use them to play a whole job in one
    process).
    """

    def __init__(self, data, split="train", modalities=None, targets=(), batch_size=256, shuffle=True,
                 seed=0, buffer_size=None, block_rows=None, drop_last=False, rank=None, world_size=None,
                 buffer_bytes=None, decode_threads=None):
        source = storage.open(data)
        self.source = source
        self.modalities = check_modalities(source, modalities)
        self.targets = list(targets or [])
        self.target_arrays, self.target_classes = encode_targets(source, self.targets, source.origin)
        self.rows = source.rows(split)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise SchemaMismatchError(f"batch_size must be >= 1, got {batch_size}")
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.block_rows = int(block_rows or source.block_rows())
        self.buffer_size = int(buffer_size or default_buffer_size(source, self.modalities, self.block_rows,
                                                                  self.batch_size, buffer_bytes))
        if decode_threads is not None:
            for m in self.modalities:
                if hasattr(source.readers[m], "decode_threads"):
                    source.readers[m].decode_threads = max(1, int(decode_threads))
        self.pin = False  # set by Stream when batches go to a CUDA device
        self.peak_bytes = 0  # the most bytes of read scratch and gathered buffers held at once (the budget's measure)
        self.outputs = gather.OutputPool()  # gathered buffers, reused once their batches are gone
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        # blocks: store row ranges of block_rows; items = blocks holding split rows
        blk = self.rows // self.block_rows
        self.block_ids, first = np.unique(blk, return_index=True)
        self.item_offsets = np.r_[first, len(self.rows)].astype(np.int64)
        self.item_sizes = np.diff(self.item_offsets)
        self.presence = {m: source.presence(m) for m in self.modalities}

    # -- epoch plan ---------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Re-seed the block order and buffer shuffles for ``epoch``."""
        self.epoch = int(epoch)

    def _rank_world(self):
        r, w = sharding.get_rank_world()
        return (r if self.rank is None else self.rank), (w if self.world_size is None else self.world_size)

    def __len__(self) -> int:
        """Batches this rank yields per epoch (the same on every rank)."""
        _, w = self._rank_world()
        return sharding.batches_per_rank(len(self.rows), w, self.batch_size, self.drop_last)

    def plan(self, worker: int | None = None, num_workers: int | None = None) -> sharding.WorkerShard:
        r, w = self._rank_world()
        return sharding.plan(self.item_sizes, batch_size=self.batch_size, epoch=self.epoch, seed=self.seed,
                             shuffle=self.shuffle, rank=r, world_size=w, worker=worker,
                             num_workers=num_workers, drop_last=self.drop_last)

    # -- hot path -----------------------------------------------------------
    def __iter__(self):
        return self.iter_worker()

    def iter_worker(self, worker: int | None = None, num_workers: int | None = None):
        """Yield this worker's batches (host tensors) for the current epoch."""
        shard = self.plan(worker, num_workers)
        in_worker = torch.utils.data.get_worker_info() is not None
        segs, bsz = shard.segments, shard.batch_sizes
        if not len(bsz):
            return
        seg_len = segs[:, 2] - segs[:, 1]
        seg_end = np.cumsum(seg_len)
        batch_end = np.cumsum(bsz)
        # buffers end on batch boundaries, each >= buffer_size samples (a block may be split between two)
        cuts = [0]
        while cuts[-1] < len(bsz):
            start = int(batch_end[cuts[-1] - 1]) if cuts[-1] else 0
            j = int(np.searchsorted(batch_end, start + self.buffer_size, side="left"))
            cuts.append(min(len(bsz), max(j + 1, cuts[-1] + 1)))
        buffers = []
        for k in range(len(cuts) - 1):
            lo = int(batch_end[cuts[k] - 1]) if cuts[k] else 0
            hi = int(batch_end[cuts[k + 1] - 1])
            buffers.append(self._buffer_rows(segs, seg_end, lo, hi))

        def prepare(k):  # buffer k: read, shuffled, every array gathered in batch order (read-ahead thread)
            rows, starts, stops, pos = buffers[k]
            if self.shuffle:
                rng = sharding.epoch_rng(self.seed, self.epoch, 1 + shard.rank, shard.first_batch + cuts[k])
                order = rng.permutation(len(rows))
            else:
                order = np.arange(len(rows))
            return self._gather(rows[order], pos[order], starts, stops, in_worker)

        # buffer k+1 is read (chunks decoded on the decode threads) and gathered in batch order (row parts on
        # two threads) by a read-ahead thread while buffer k's batches -- slices (views) of its gathered
        # arrays -- are served; this thread only cuts them
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omicsdata-read") as pool:
            ahead, held = pool.submit(prepare, 0), 0
            for k in range(len(buffers)):
                ready = ahead.result()
                # held at once: the read scratch, this buffer and the one before (pooled or, when shared or
                # pinned, plain)
                live = max(self.outputs.nbytes, held + _nbytes(ready))
                self.peak_bytes = max(self.peak_bytes, self._scratch_bytes() + live)
                held = _nbytes(ready)
                o = 0
                for i, bs in enumerate(bsz[cuts[k]:cuts[k + 1]].tolist()):
                    yield self._cut(ready, o, o + bs)
                    o += bs
                    if i == 0 and k + 1 < len(buffers):
                        # read ahead once the consumer has taken this buffer's first batch (in a plain loop it
                        # has let go of the previous buffer's last one): two gathered buffers live at most
                        ahead = pool.submit(prepare, k + 1)

    def _buffer_rows(self, segs, seg_end, lo, hi):
        """Store rows of buffer positions [lo, hi), the chunk ranges to read, and each row's offset in the read block."""
        i0 = int(np.searchsorted(seg_end, lo, side="right"))
        i1 = int(np.searchsorted(seg_end, hi, side="left")) + 1
        seg_start = seg_end - (segs[:, 2] - segs[:, 1])
        parts, starts, stops, offs = [], [], [], []
        read_off = 0
        for i in range(i0, min(i1, len(segs))):
            item, a, b = (int(v) for v in segs[i])
            a2 = a + max(0, lo - int(seg_start[i]))
            b2 = b - max(0, int(seg_end[i]) - hi)
            if b2 <= a2:
                continue
            r = self.rows[self.item_offsets[item] + a2: self.item_offsets[item] + b2]
            r0, r1 = int(r[0]), int(r[-1]) + 1
            parts.append(r)
            offs.append(r - r0 + read_off)
            starts.append(r0)
            stops.append(r1)
            read_off += r1 - r0
        return (np.concatenate(parts), np.asarray(starts, np.int64), np.asarray(stops, np.int64),
                np.concatenate(offs))

    def _gather(self, rows: np.ndarray, pos: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                in_worker: bool) -> dict:
        """Every array of one buffer, its rows in batch order: the store row ranges ``[starts, stops)``
        read, row ``pos[j]`` of that read becoming row ``j``. Dense store matrices are scattered into
        place as their chunks decode; the others are read whole, then gathered."""
        out = {"index": torch.from_numpy(rows.astype(np.int64))}
        pin = self.pin and not in_worker  # workers hand over shared memory; the main process pins
        for m in self.modalities:
            reader = self.source.readers[m]
            kw = {"shared": in_worker, "pin": pin, "pool": self.outputs, "key": m}
            if getattr(reader, "scatters", False):
                out[m] = gather.dense_scatter(reader, starts, stops, pos, **kw)
            else:
                b = reader.read(starts, stops, reuse=True)
                out[m] = (gather.csr_buffer if isinstance(b, CSRBlock) else gather.dense_buffer)(
                    b, pos, threads=getattr(reader, "decode_threads", 1), **kw)
            out[f"{m}_mask"] = torch.from_numpy(self.presence[m][rows])
        for t in self.targets:
            out[t] = torch.from_numpy(self.target_arrays[t][rows])
        return out

    @staticmethod
    def _cut(ready: dict, a: int, b: int) -> dict:
        """Batch ``[a, b)`` of a gathered buffer: views of its arrays (CSR: a new small ``crow``)."""
        return {k: v.rows(a, b) if isinstance(v, gather.CSRBuffer) else v[a:b] for k, v in ready.items()}

    def _scratch_bytes(self) -> int:
        return sum(v.nbytes for m in self.modalities for v in getattr(self.source.readers[m], "_scratch", {}).values())


def _nbytes(ready: dict) -> int:
    """Bytes of a gathered buffer's arrays."""
    return sum(sum(p.nbytes for p in (v.ptr, v.col, v.values)) if isinstance(v, gather.CSRBuffer) else v.nbytes
               for v in ready.values())


class Stream(IterableDataset):
    """What :func:`stream` returns: a ``torch.utils.data.IterableDataset`` of ready batches.

    Each new ``iter(stream)`` starts the next epoch (0, 1, 2, ...: a new
    block order and buffer shuffle from the same seed), so a plain
    ``for epoch ...: for batch in stream`` loop, ``DataLoader(stream,
    batch_size=None)`` and Lightning all reshuffle (an iterator that never
    yields a batch does not count). ``set_epoch(n)`` makes
    the *next* iteration epoch ``n`` (then ``n + 1``, ...); ``epoch`` is the
    epoch of the latest iteration. Parallel reads come from the stream's own
    ``num_workers``: wrap it in a DataLoader with ``batch_size=None`` and no
    workers of its own.

    ``classes`` maps each categorical target to its class names (index =
    the code in the batch); :meth:`decode` turns codes back into names.
    """

    def __init__(self, dataset: ShardStream, num_workers=0, device=None, densify=False, prefetch=None,
                 multiprocessing_context=None, prefetch_factor=None):
        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.device = resolve_device(device)
        dataset.pin = torch.device(self.device).type == "cuda" and not self.num_workers  # gather into pinned memory
        mods = dataset.modalities
        if densify is True:
            self.densify = set(mods)
        else:
            self.densify = set(densify or ())
        # batches finished ahead on a background thread: worth it where a host-to-device copy overlaps
        # compute (CUDA); on a CPU device the thread hop only cost throughput (see Prefetcher)
        self.prefetch = (2 if torch.device(self.device).type == "cuda" else 0) if prefetch is None else int(prefetch)
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor
        self.epoch = int(dataset.epoch)  # epoch of the latest (or, before any, the first) iteration
        self._next_epoch = self.epoch

    @property
    def classes(self) -> dict[str, list[str]]:
        """Class names of each categorical target: ``classes[t][code]`` is the name of code ``code``."""
        return self.dataset.target_classes

    @property
    def target_classes(self) -> dict[str, list]:
        """Alias of :attr:`classes` (the earlier name)."""
        return self.dataset.target_classes

    def decode(self, target: str, codes) -> list:
        """Class names for the codes of categorical ``target`` (a tensor, array or list; -1 -> None)."""
        return decode_codes(self.classes, target, codes, self.dataset.source.origin)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (later iterations continue from it)."""
        self._next_epoch = int(epoch)
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def loader(self) -> DataLoader:
        kw = {}
        if self.num_workers:
            kw["multiprocessing_context"] = self.multiprocessing_context
            if self.prefetch_factor:
                kw["prefetch_factor"] = self.prefetch_factor
        return DataLoader(self.dataset, batch_size=None, num_workers=self.num_workers,
                          collate_fn=_passthrough, persistent_workers=False, **kw)

    def __iter__(self):
        # a generator: the epoch advances (and workers start) at the first batch asked for, so an
        # iter() that is never consumed (Lightning checks iterability with one) costs nothing
        from .prefetch import Prefetcher

        self.epoch = self._next_epoch
        self._next_epoch = self.epoch + 1
        self.dataset.set_epoch(self.epoch)
        # without workers a DataLoader only wraps the dataset's own iterator: iterate that directly
        source = self.loader() if self.num_workers else self.dataset
        yield from Prefetcher(source, self.device, densify=self.densify, depth=self.prefetch)


def stream(data, split="train", batch_size=256, shuffle=True, seed=0, device=None, *, modalities=None,
           targets=(), num_workers=0, buffer_size=None, block_rows=None, densify=False, drop_last=False,
           prefetch=None, multiprocessing_context=None, rank=None, world_size=None, buffer_bytes=None,
           decode_threads=None) -> Stream:
    """A block-shuffled, sharded stream of batches from ``data``.

    ``data``: dataset name, store path/URL, opened store, or in-memory
    MuData/AnnData. ``split``: a value of ``obs["split"]`` (or a list, or
    None for all). ``buffer_bytes``: the budget of decoded rows one stream
    (each worker) holds at once: the read scratch and two gathered buffers,
    the one served and the next (default 192 MiB); it sets how many samples
    are shuffled together (at most 16 blocks, at least one batch). ``buffer_size``: that sample count, given
    directly instead. ``decode_threads``: threads decoding the chunks of one
    read (default: up to 4, the CPU count). ``data`` may also be an AnnData
    or MuData Zarr store written by anndata/mudata or an annbatch
    collection, read in place (:mod:`omicsdata.storage.foreign`). ``device``: where batches
    land (``"cuda"`` uses pinned buffers and a side stream). ``prefetch``: batches finished ahead
    on a background thread (default: 2 on CUDA, 0 on a CPU device -- there each batch is
    finished when asked for, while the next buffer is still read and decoded ahead). ``densify``:
    True or a list of CSR modalities to densify on ``device``. Each epoch
    serves every sample of the split once across all workers and DDP ranks
    (see :mod:`omicsdata.torch.sharding`). Every new iteration is the next
    epoch (re-shuffled); ``set_epoch(n)`` picks the next one explicitly.
    ``stream(...).classes`` holds the class names of categorical targets.

    Raises :class:`~omicsdata.torch.device.DeviceError` (an ``OmicsDataError``)
    when ``device`` names a device this machine lacks (e.g. ``"cuda"``
    without CUDA).
    """
    ds = ShardStream(data, split=split, modalities=modalities, targets=targets, batch_size=batch_size,
                     shuffle=shuffle, seed=seed, buffer_size=buffer_size, block_rows=block_rows,
                     drop_last=drop_last, rank=rank, world_size=world_size, buffer_bytes=buffer_bytes,
                     decode_threads=decode_threads)
    return Stream(ds, num_workers=num_workers, device=device, densify=densify, prefetch=prefetch,
                  multiprocessing_context=multiprocessing_context)
