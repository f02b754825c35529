"""PyTorch loaders: map-style dataset, block-shuffled stream, worker + DDP-rank sharding.

>>> ds = od.torch.MultiOmicsDataset(mdata, split="train", modalities=["rna"], targets=["os_time"])
>>> s = od.torch.stream(mdata, split="train", batch_size=256, shuffle=True, seed=0, device="cuda")
>>> for epoch in range(3):
...     s.set_epoch(epoch)
...     for batch in s: ...

The sharding rule (exact-once, equal batches per rank) is in
:mod:`omicsdata.torch.sharding`.
"""
from __future__ import annotations

from . import sharding
from .dataset import MultiOmicsDataset, collate
from .prefetch import Prefetcher
from .sharding import ShardingError, get_rank_world, get_worker, plan
from .stream import ShardStream, Stream, stream

__all__ = ["MultiOmicsDataset", "collate", "stream", "Stream", "ShardStream", "Prefetcher", "sharding",
           "ShardingError", "get_rank_world", "get_worker", "plan"]
