"""Patient-level, label-stratified, seeded train/val/test splits.

Samples are grouped (by patient, donor, ...) and whole groups are assigned,
so one patient never lands in two splits. Each group takes the label of its
first sample; within every label stratum the groups are shuffled with the
seed and cut by the fractions using largest-remainder rounding, so small
strata still get a fair share and the result is identical on every machine.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import OmicsDataError

DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _cut(n: int, fractions: Mapping[str, float]) -> list[int]:
    names = list(fractions)
    raw = np.array([fractions[k] for k in names], dtype=float) * n
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    for i in order[: n - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def assign_splits(
    groups,
    labels=None,
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Return one split name per sample.

    Parameters
    ----------
    groups : array-like
        Group id per sample (patient, donor). ``None`` entries are treated as
        their own group.
    labels : array-like, optional
        Label per sample to stratify by (missing labels form their own stratum).
    fractions : mapping of split name -> fraction (sums to 1).
    seed : int
    """
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    total = sum(fractions.values())
    if not np.isclose(total, 1.0):
        raise OmicsDataError(f"split fractions must sum to 1, got {fractions} (sum {total:g})")
    groups = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    n = len(groups)
    labels = np.zeros(n, dtype=object) if labels is None else pd.Series(np.asarray(labels, dtype=object)).astype(str).to_numpy()
    if len(labels) != n:
        raise OmicsDataError(f"labels ({len(labels)}) and groups ({n}) differ in length")
    frame = pd.DataFrame({"g": groups, "y": labels})
    first = frame.drop_duplicates("g")  # group label = label of its first sample
    rng = np.random.default_rng(seed)
    group_split: dict[str, str] = {}
    for label in sorted(first["y"].unique()):
        gs = np.sort(first.loc[first["y"] == label, "g"].to_numpy())
        gs = gs[rng.permutation(len(gs))]
        start = 0
        for name, k in zip(fractions, _cut(len(gs), fractions)):
            for g in gs[start : start + k]:
                group_split[g] = name
            start += k
    return frame["g"].map(group_split).to_numpy(dtype=object)


def split_counts(split) -> dict[str, int]:
    s = pd.Series(np.asarray(split, dtype=object)).astype(str)
    return {k: int(v) for k, v in s.value_counts().sort_index().items()}
