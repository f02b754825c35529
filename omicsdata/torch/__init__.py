"""PyTorch loaders: map-style dataset, block-shuffled stream, worker + DDP-rank sharding.

>>> ds = od.torch.MultiOmicsDataset(mdata, split="train", modalities=["rna"], targets=["os_time"])
>>> s = od.torch.stream(mdata, split="train", batch_size=256, shuffle=True, seed=0, device="cuda")
>>> for epoch in range(3):            # each new iteration is the next epoch (set_epoch(n) still wins)
...     for batch in s: ...
>>> s.classes["cancer_type"]          # class names of the codes in batch["cancer_type"]

``s`` is a ``torch.utils.data.IterableDataset`` (``DataLoader(s, batch_size=None)``
works); :mod:`omicsdata.torch.lightning` has a ``LightningDataModule`` helper
(optional extra ``omicszoo[lightning]``, imported only when used).

The sharding rule (exact-once, equal batches per rank) is in
:mod:`omicsdata.torch.sharding`.
"""
from __future__ import annotations

from . import sharding
from .dataset import MultiOmicsDataset, collate
from .device import DeviceError
from .prefetch import Prefetcher
from .sharding import ShardingError, get_rank_world, get_worker, plan
from .stream import ShardStream, Stream, stream

__all__ = ["MultiOmicsDataset", "collate", "stream", "Stream", "ShardStream", "Prefetcher", "sharding",
           "ShardingError", "DeviceError", "get_rank_world", "get_worker", "plan"]
