"""Who serves what: the epoch plan shared by every DataLoader worker and DDP rank.

Pure numpy, no I/O, usable for any kind of *item* (a Zarr row block, a
Parquet row group, a file...). An item holds ``item_sizes[i]`` samples.

The rule (``plan``), for ``N = sum(item_sizes)`` samples, ``W`` ranks,
batch size ``B`` and ``nw`` workers per rank:

1. **Item order.** With ``shuffle=True`` the items are permuted by a
   generator seeded with ``(seed, epoch)`` -- the same permutation on every
   rank and worker; ``set_epoch`` re-seeds it. Without shuffle, items keep
   their order. The epoch's global sample sequence is the items' samples
   concatenated in that order.
2. **Ranks.** The sequence is cut into ``W`` contiguous pieces whose sizes
   differ by at most one sample (rank ``r`` gets ``N // W + (r < N % W)``).
   So every sample is served by exactly one rank. An item may straddle two
   ranks; each then reads only its own part.
3. **Equal batches per rank.** Every rank yields ``K = ceil(N / (W * B))``
   batches. A rank's batches hold ``B`` samples except at its end: the
   shortfall ``K * B - n_rank`` is taken from its last batches, last one
   first, each keeping at least one sample. Example: N=513, W=2, B=256
   gives K=2; rank 0 serves 257 samples as batches [256, 1], rank 1 serves
   256 as [255, 1]. This needs ``N // W >= K``, which holds
   whenever ``N >= W`` and ``B >= 2``; otherwise :class:`ShardingError`.
   With ``drop_last=True`` instead, every rank yields ``N // (W * B)`` full
   batches and the last ``N mod (W * B)`` samples of the epoch's sequence
   are not served that epoch (documented exception to exact-once).
4. **Workers.** A rank's ``K`` batches are split into ``nw`` contiguous
   runs whose lengths differ by at most one (the first ``K % nw`` workers
   get one more); a worker serves the samples of its run. So the batches of
   one rank are the same whatever ``nw`` is, only their interleaving
   differs, and every sample is served by exactly one worker of one rank.

Exact-once across the whole job follows from 2 and 4; equal batch counts
from 3. Helpers :func:`get_rank_world` and :func:`get_worker` read the
rank/world size (``torch.distributed`` when initialised, else the
``RANK``/``WORLD_SIZE`` environment variables torchrun sets, else 0/1) and
the DataLoader worker (``torch.utils.data.get_worker_info``).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..errors import OmicsDataError

__all__ = ["ShardingError", "WorkerShard", "plan", "item_order", "rank_counts", "batches_per_rank",
           "rank_batch_sizes", "get_rank_world", "get_worker", "epoch_rng"]


class ShardingError(OmicsDataError, ValueError):
    """The requested sharding cannot serve every sample once with equal batches per rank."""


def epoch_rng(seed: int, epoch: int, *key: int) -> np.random.Generator:
    """The generator for ``(seed, epoch, *key)``; identical in every process."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), *map(int, key)]))


def item_order(n_items: int, *, seed: int = 0, epoch: int = 0, shuffle: bool = True) -> np.ndarray:
    """The order in which items are served this epoch (a permutation, or ``arange``)."""
    if not shuffle:
        return np.arange(n_items, dtype=np.int64)
    return epoch_rng(seed, epoch).permutation(n_items).astype(np.int64)


def rank_counts(n_samples: int, world_size: int) -> np.ndarray:
    """Samples per rank: ``n // W`` plus one for the first ``n % W`` ranks."""
    q, r = divmod(int(n_samples), int(world_size))
    return np.array([q + (i < r) for i in range(world_size)], dtype=np.int64)


def batches_per_rank(n_samples: int, world_size: int, batch_size: int, drop_last: bool = False) -> int:
    """``K``: batches every rank yields in one epoch (the same on all ranks)."""
    if drop_last:
        return int(n_samples) // (int(world_size) * int(batch_size))
    return -(-int(n_samples) // (int(world_size) * int(batch_size)))


def rank_batch_sizes(n_rank: int, n_batches: int, batch_size: int) -> np.ndarray:
    """Sizes of a rank's batches: ``batch_size`` each, the shortfall taken from the end.

    Each batch keeps at least one sample; raises if ``n_rank < n_batches``
    or ``n_rank > n_batches * batch_size``.
    """
    if n_batches == 0:
        if n_rank:
            raise ShardingError(f"{n_rank} samples cannot fit in 0 batches")
        return np.zeros(0, dtype=np.int64)
    if not n_batches <= n_rank <= n_batches * batch_size:
        raise ShardingError(
            f"cannot cut {n_rank} samples into {n_batches} non-empty batches of at most {batch_size}: "
            "use batch_size >= 2 and at least world_size samples, or drop_last=True")
    sizes = np.full(n_batches, batch_size, dtype=np.int64)
    deficit = n_batches * batch_size - n_rank
    i = n_batches - 1
    while deficit > 0:
        take = min(deficit, sizes[i] - 1)
        sizes[i] -= take
        deficit -= take
        i -= 1
    return sizes


@dataclasses.dataclass(frozen=True)
class WorkerShard:
    """What one worker of one rank serves this epoch.

    ``segments``: int64 array ``(k, 3)`` of ``(item, start, stop)`` -- sample
    offsets inside each item, in serving order (before any buffer shuffle).
    ``batch_sizes``: the sizes of this worker's batches, in order; their sum
    equals the samples in ``segments``. ``first_batch``: index of this
    worker's first batch among its rank's ``n_rank_batches``.
    """

    segments: np.ndarray
    batch_sizes: np.ndarray
    first_batch: int
    n_rank_batches: int
    rank: int
    world_size: int
    worker: int
    num_workers: int

    @property
    def n_samples(self) -> int:
        return int(self.batch_sizes.sum())


def _segments(order: np.ndarray, sizes: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Items (in ``order``) overlapping global positions ``[lo, hi)``, as (item, start, stop)."""
    if hi <= lo:
        return np.zeros((0, 3), dtype=np.int64)
    s = sizes[order]
    ends = np.cumsum(s)
    starts = ends - s
    first = int(np.searchsorted(ends, lo, side="right"))
    last = int(np.searchsorted(starts, hi, side="left"))  # exclusive
    idx = np.arange(first, last)
    seg_start = np.maximum(lo - starts[idx], 0)
    seg_stop = np.minimum(hi - starts[idx], s[idx])
    keep = seg_stop > seg_start
    return np.stack([order[idx][keep], seg_start[keep], seg_stop[keep]], axis=1).astype(np.int64)


def plan(item_sizes, *, batch_size: int, epoch: int = 0, seed: int = 0, shuffle: bool = True,
         rank: int | None = None, world_size: int | None = None, worker: int | None = None,
         num_workers: int | None = None, drop_last: bool = False) -> WorkerShard:
    """This worker's share of one epoch, by the rule in the module docstring.

    ``item_sizes``: samples per item (int array; zero-size items are
    skipped). ``rank``/``world_size`` default to :func:`get_rank_world`,
    ``worker``/``num_workers`` to :func:`get_worker`.
    """
    sizes = np.asarray(item_sizes, dtype=np.int64).reshape(-1)
    if (sizes < 0).any():
        raise ShardingError("item_sizes must be >= 0")
    if batch_size < 1:
        raise ShardingError(f"batch_size must be >= 1, got {batch_size}")
    if rank is None or world_size is None:
        r, w = get_rank_world()
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    if worker is None or num_workers is None:
        wi, nw = get_worker()
        worker = wi if worker is None else worker
        num_workers = nw if num_workers is None else num_workers
    if not (0 <= rank < world_size):
        raise ShardingError(f"rank {rank} outside world_size {world_size}")
    if not (0 <= worker < num_workers):
        raise ShardingError(f"worker {worker} outside num_workers {num_workers}")
    n = int(sizes.sum())
    order = item_order(len(sizes), seed=seed, epoch=epoch, shuffle=shuffle)
    order = order[sizes[order] > 0]
    K = batches_per_rank(n, world_size, batch_size, drop_last)
    if drop_last:
        counts = np.full(world_size, K * batch_size, dtype=np.int64)
        bsizes = np.full(K, batch_size, dtype=np.int64)
    else:
        counts = rank_counts(n, world_size)
        if n and int(counts.min()) < K:
            raise ShardingError(
                f"{n} samples over {world_size} ranks with batch_size={batch_size}: some rank would get "
                f"fewer than the {K} non-empty batches every rank must yield; use batch_size >= 2 and at "
                "least world_size samples, or drop_last=True")
        bsizes = rank_batch_sizes(int(counts[rank]), K, batch_size)
    rank_lo = int(counts[:rank].sum())
    # contiguous runs of batches per worker
    q, rem = divmod(K, num_workers)
    nb = np.array([q + (i < rem) for i in range(num_workers)], dtype=np.int64)
    b0 = int(nb[:worker].sum())
    b1 = b0 + int(nb[worker])
    offs = np.concatenate([[0], np.cumsum(bsizes)])
    lo, hi = rank_lo + int(offs[b0]), rank_lo + int(offs[b1])
    return WorkerShard(segments=_segments(order, sizes, lo, hi), batch_sizes=bsizes[b0:b1].copy(),
                       first_batch=b0, n_rank_batches=K, rank=int(rank), world_size=int(world_size),
                       worker=int(worker), num_workers=int(num_workers))


def get_rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` from ``torch.distributed`` if initialised, else RANK/WORLD_SIZE, else (0, 1)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank()), int(dist.get_world_size())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        rank = int(os.environ.get("RANK", 0))
        world = int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise ShardingError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                            "must be integers") from None
    if not 0 <= rank < world:
        raise ShardingError(f"environment RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world


def get_worker() -> tuple[int, int]:
    """``(worker_id, num_workers)`` inside a DataLoader worker, else ``(0, 1)``."""
    try:
        from torch.utils.data import get_worker_info
    except ImportError:  # pragma: no cover
        return 0, 1
    info = get_worker_info()
    if info is None:
        return 0, 1
    return int(info.id), int(info.num_workers)
