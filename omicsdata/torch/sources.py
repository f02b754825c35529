"""What the torch loaders need beyond the storage layer: modality checks and target encoding.

Resolving inputs and reading rows is :mod:`omicsdata.storage`'s job
(``storage.open(x)`` -> :class:`~omicsdata.storage.Store`); the names below
that used to live here (``resolve``, ``Source``, ``select_rows``, the readers)
are kept as aliases.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import SchemaMismatchError
from ..storage import CSRBlock, CSRZarrReader, DenseZarrReader, MemoryReader, Store  # noqa: F401
from ..storage import open as resolve  # noqa: F401
from ..storage.readers import CSR_BLOCK_CHUNKS  # noqa: F401

Source = Store


def select_rows(source: Store, split: str | Sequence[str] | None) -> np.ndarray:
    """Sorted rows of ``split`` (``None``/"all": every row); see :meth:`Store.rows`."""
    return source.rows(split)


def check_modalities(source: Store, modalities: Sequence[str] | None) -> list[str]:
    """The modalities asked (all when ``None``); names the missing ones and what the data has."""
    have = source.modalities
    mods = list(have) if modalities is None else list(modalities)
    bad = [m for m in mods if m not in have]
    if bad:
        raise SchemaMismatchError(f"{source.origin}: modality {bad} not in the data (has {have})")
    return mods


def encode_targets(source, targets: Sequence[str], origin: str) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Target columns as arrays: floats -> float32, ints/bools -> int64, categories/strings -> int64 codes (-1 = missing).

    ``source``: a :class:`~omicsdata.storage.Store`; only the target columns are read."""
    out, classes = {}, {}
    targets = list(targets)
    have = source.obs_column_names()
    for t in targets:
        if t not in have:
            raise SchemaMismatchError(f"{origin}: target '{t}' is not an obs column (has {have})")
    obs = source.obs_columns(targets)
    for t in targets:
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


def decode_codes(classes: dict[str, list], target: str, codes, origin: str) -> list:
    """Class names for integer ``codes`` of categorical ``target`` (-1, the missing code, -> None)."""
    if target not in classes:
        raise SchemaMismatchError(f"{origin}: target '{target}' is not categorical or not requested "
                                  f"(categorical targets: {sorted(classes)})")
    names = classes[target]
    arr = np.asarray(codes.cpu() if hasattr(codes, "cpu") else codes).reshape(-1).astype(np.int64)
    bad = arr[(arr < -1) | (arr >= len(names))]
    if len(bad):
        raise SchemaMismatchError(f"{origin}: code {int(bad[0])} of target '{target}' is out of range "
                                  f"(0..{len(names) - 1}, -1 = missing)")
    return [None if c < 0 else names[c] for c in arr.tolist()]
