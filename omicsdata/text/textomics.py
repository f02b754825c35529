"""TextOmics pairs as a torch dataset: (expression tensor, molecule description, SMILES)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import OmicsDataError
from .tables import read_table, store_root

try:
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


class TextOmicsDataset(_Base):
    """Map-style dataset of ``(signature: float32 tensor [genes], text: str, smiles: str)``.

    ``source``: catalog name (default ``"textomics"``), store folder or MuData.
    ``split``: ``train`` / ``val`` / ``test`` or None (all). The selected
    signatures are read into memory once (the default DataLoader collate then
    gives ``(tensor [B, genes], list[str], list[str])``).
    """

    def __init__(self, source: Any = "textomics", split: str | None = None):
        import torch

        from ..store import open_store

        root = store_root(source)
        mdata = open_store(root)
        if "expression" not in mdata.mod:
            raise OmicsDataError(f"{root}: not a TextOmics store (no 'expression' modality)")
        rows = np.arange(mdata.n_obs)
        if split is not None:
            rows = np.flatnonzero(mdata.obs["split"].astype(str).to_numpy() == split)
            if not len(rows):
                raise OmicsDataError(f"{root}: no TextOmics pairs in split {split!r}")
        pairs = read_table(root, "pairs").to_pandas()
        if not (pairs["pair_id"].to_numpy() == mdata.obs_names.to_numpy()).all():
            raise OmicsDataError(f"{root}: table 'pairs' is not aligned with obs; rebuild the store")
        X = mdata.mod["expression"].X
        X = X[rows].compute() if hasattr(X, "compute") else np.asarray(X[rows])
        self.signatures = torch.from_numpy(np.asarray(X, dtype=np.float32))
        self.texts = pairs["description"].to_numpy()[rows].tolist()
        self.smiles = pairs["smiles"].to_numpy()[rows].tolist()
        self.pair_ids = pairs["pair_id"].to_numpy()[rows].tolist()
        self.genes = mdata.mod["expression"].var_names.tolist()

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int):
        return self.signatures[i], self.texts[i], self.smiles[i]
