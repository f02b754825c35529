"""PyTorch loaders: map-style dataset, block-shuffled stream, worker + DDP-rank sharding.

``od.torch.MultiOmicsDataset(...)`` and ``od.torch.stream(...)``; the
sharding rule (exact-once, equal batches per rank) is in
:mod:`omicsdata.torch.sharding`.
"""
from __future__ import annotations

from . import sharding
from .sharding import ShardingError, get_rank_world, get_worker, plan

__all__ = ["sharding", "ShardingError", "get_rank_world", "get_worker", "plan"]
