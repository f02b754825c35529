"""Splits for imported cells: an existing column as is, else seeded group-aware splits.

Built on :func:`omicsdata.splits.assign_splits` (whole groups go to one
split; strata shuffled with the seed). Two cases it does not cover on its own
are handled here:

* a group (donor) holds many labels, so "the label of its first cell" is a
  poor stratum: groups are stratified by their most common label only when
  every such stratum has at least one group per split, else not stratified;
* few groups: every split gets at least one group when there are as many
  groups as splits (``assign_splits`` would round 4 donors to 3/1/0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import FormatError
from ..splits import DEFAULT_FRACTIONS, assign_splits


def existing_split(obs: pd.DataFrame, column: str, where: str) -> np.ndarray:
    """The ``column`` of obs as split names (strings); missing values are an error naming the rows."""
    s = obs[column]
    missing = s.isna().to_numpy()
    if missing.any():
        rows = ", ".join(map(str, obs.index[missing][:5]))
        raise FormatError(where, f"obs column '{column}' has {int(missing.sum())} missing value(s) "
                                 f"(cells {rows}...); fill them or drop the column to have splits assigned")
    return s.astype(str).to_numpy(dtype=object)


def group_splits(groups, labels=None, fractions=None, seed: int = 0) -> tuple[np.ndarray, dict]:
    """``(split per cell, info)``: no group in two splits; stratified by label where possible."""
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    groups = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    uniq = pd.unique(groups)
    strat_used = False
    group_labels = None
    if labels is not None:
        lab = pd.Series(np.asarray(labels, dtype=object)).astype(str).to_numpy()
        if len(uniq) == len(groups):  # one cell per group: the cell's own label
            group_labels = lab
        else:
            major = pd.DataFrame({"g": groups, "y": lab}).groupby("g")["y"].agg(lambda v: v.value_counts().index[0])
            per_stratum = major.value_counts()
            if (per_stratum >= len(fractions)).all():
                group_labels = major.loc[groups].to_numpy()
        strat_used = group_labels is not None
    split = assign_splits(groups, group_labels, fractions, seed)
    present = set(split)
    wanted = [k for k, f in fractions.items() if f > 0]
    if len(uniq) >= len(wanted) and not all(k in present for k in wanted):
        split = _at_least_one_each(groups, uniq, fractions, wanted, seed)
        strat_used = False
    info = {"by_groups": int(len(uniq)), "stratified": bool(strat_used), "fractions": fractions, "seed": int(seed)}
    return split, info


def _at_least_one_each(groups, uniq, fractions, wanted, seed) -> np.ndarray:
    """Shuffled groups, one to each wanted split first, the rest by the fractions (largest remainder)."""
    rng = np.random.default_rng(seed)
    order = np.sort(uniq.astype(str))[rng.permutation(len(uniq))]
    n = len(order)
    raw = np.array([fractions[k] for k in wanted], dtype=float)
    raw = raw / raw.sum() * n
    counts = np.maximum(1, np.floor(raw).astype(int))
    while counts.sum() > n:  # take back from the largest
        counts[np.argmax(counts)] -= 1
    rem = raw - counts
    for i in np.argsort(-rem, kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    mapping, start = {}, 0
    for k, c in zip(wanted, counts):
        for g in order[start:start + c]:
            mapping[g] = k
        start += c
    return pd.Series(groups).map(mapping).to_numpy(dtype=object)
