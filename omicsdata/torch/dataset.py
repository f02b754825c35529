"""``od.torch.MultiOmicsDataset``: map-style access to one split, sample by sample or in batches."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import storage
from ..storage import CSRBlock, row_runs
from .sources import check_modalities, decode_codes, encode_targets


class MultiOmicsDataset(Dataset):
    """Map-style dataset over the samples of ``split``.

    ``ds[i]`` is a dict for the ``i``-th sample of the split: one float32
    tensor per modality (dense; CSR modalities are densified), a bool
    ``"<modality>_mask"`` (False: the sample lacks it and its row is zeros),
    one tensor per target (floats -> float32, ints/bools -> int64,
    categories -> int64 codes, class names in ``classes``) and
    ``"index"`` (the sample's store row). ``ds.__getitems__(idx)`` (used by
    ``DataLoader``) reads a whole batch with one read per chunk run and
    returns the already-stacked batch; pass ``collate_fn=lambda b: b`` or
    use :func:`collate` so the DataLoader keeps it as is.

    For training throughput prefer :func:`omicsdata.torch.stream`
    (block-shuffled, sharded, prefetched).
    """

    def __init__(self, data, split: str | Sequence[str] | None = "train", modalities=None, targets=()):
        self.source = storage.open(data)
        self.modalities = check_modalities(self.source, modalities)
        self.targets = list(targets or [])
        self.target_arrays, self.target_classes = encode_targets(self.source, self.targets, self.source.origin)
        self.rows = self.source.rows(split)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def classes(self) -> dict[str, list[str]]:
        """Class names of each categorical target: ``classes[t][code]`` is the name of code ``code``."""
        return self.target_classes

    def decode(self, target: str, codes) -> list:
        """Class names for the codes of categorical ``target`` (a tensor, array or list; -1 -> None)."""
        return decode_codes(self.target_classes, target, codes, self.source.origin)

    def _batch(self, idx) -> dict:
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for a split of {len(self)} samples")
        rows = self.rows[idx]
        starts, stops, uniq_pos = row_runs(rows)  # one read per run of consecutive rows
        out = {"index": torch.from_numpy(rows.copy())}
        for m in self.modalities:
            block = self.source.readers[m].read(starts, stops)
            if isinstance(block, CSRBlock):
                x = np.asarray(block.to_scipy()[uniq_pos].todense(), dtype=np.float32)
            else:
                x = np.asarray(block[uniq_pos], dtype=np.float32)
            out[m] = torch.from_numpy(x)
            out[f"{m}_mask"] = torch.from_numpy(self.source.presence(m)[rows].copy())
        for t in self.targets:
            out[t] = torch.from_numpy(self.target_arrays[t][rows].copy())
        return out

    def __getitem__(self, i: int) -> dict:
        b = self._batch([int(i)])
        return {k: v[0] for k, v in b.items()}

    def __getitems__(self, indices) -> dict:
        return self._batch(indices)


def collate(batch):
    """``collate_fn`` for a DataLoader over :class:`MultiOmicsDataset`: batches arrive already stacked."""
    return batch
