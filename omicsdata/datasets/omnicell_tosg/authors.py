"""OmniCellTOSG conventions as the authors' loader applies them (``FuhaiLiAiLab/OmniCellTOSG``).

Read in their repository (files named in the catalog card):

* labels come from the *harmonised* metadata columns (``CMT_name``,
  ``disease_BMG_name``, ``sex_normalized``, ``development_stage_category``);
  the raw columns ``cell_type, disease, sex, development_stage`` are kept here
  under ``raw_*`` names so a label can never silently be a raw value;
* expression is normalised per cell before use: scaled to a total of 1e4 over
  the measured (transcript) columns, then ``log1p`` (``l1_normalize_log1p``);
  the shards hold the values before that step;
* train/test split by donor, a donor being ``dataset_id`` + ``donor_id``
  (``donor_wise_split_*`` in ``CellTOSG_Loader/split.py``): donors sorted
  from smallest to largest, taken into test while the test count stays
  within ``floor(0.2 * n)``, then one more donor if that keeps test within
  ``floor(0.4 * n)``; at least one donor in test; cells without a donor id
  are dropped.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...errors import BuildError

#: label name -> harmonised published column (what labels and stratification use)
HARMONISED = {
    "cell_type": "CMT_name",
    "disease": "disease_BMG_name",
    "sex": "sex_normalized",
    "age_group": "development_stage_category",
    "organ": "tissue_general",
}
#: raw published columns, kept under these names
RAW = {"cell_type": "raw_cell_type", "disease": "raw_disease", "sex": "raw_sex",
       "development_stage": "raw_development_stage"}

NORMALIZATIONS = ("log1p_cp10k", "none")
SPLITS = ("authors", "donor")
_EMPTY = {"", "nan", "none", "na", "n/a"}


def normalize(block: np.ndarray, how: str = "log1p_cp10k", target_sum: float = 1e4) -> np.ndarray:
    """Per-row ``log1p(x * target_sum / row_sum)`` (float64 inside, float32 out); ``"none"`` returns ``block``.

    Negative values cannot be raw abundances and raise :class:`BuildError`; an
    all-zero row stays zero.
    """
    if how == "none":
        return block
    if how != "log1p_cp10k":
        raise BuildError(f"omnicell-tosg: normalize must be one of {NORMALIZATIONS}, got {how!r}")
    x = np.asarray(block, dtype=np.float64)
    if (x < 0).any():
        raise BuildError("omnicell-tosg: expression holds negative values; they are not raw abundances, so "
                         "normalize='log1p_cp10k' cannot apply (pass normalize='none' to keep them as stored)")
    sums = x.sum(axis=1, keepdims=True)
    return np.log1p(x * (target_sum / np.maximum(sums, 1e-12))).astype(np.float32)


def rename_raw(meta: pd.DataFrame) -> pd.DataFrame:
    """Raw published columns renamed ``raw_*`` (a metadata table already holding a ``raw_*`` name is an error)."""
    clash = [RAW[c] for c in RAW if c in meta.columns and RAW[c] in meta.columns]
    if clash:
        raise BuildError(f"omnicell-tosg: cell metadata holds both raw columns and {clash}")
    return meta.rename(columns={c: RAW[c] for c in RAW if c in meta.columns})


def donor_key(meta: pd.DataFrame) -> pd.Series:
    """``dataset_id||donor_id`` (the authors' donor key); NA where the donor id is empty."""
    if "donor_id" not in meta.columns:
        return pd.Series(pd.NA, index=meta.index, dtype="string")
    d = meta["donor_id"].astype("string").str.strip()
    study = meta["dataset_id"].astype("string").str.strip() if "dataset_id" in meta.columns else ""
    key = study + "||" + d
    return key.where(~(d.isna() | d.str.lower().isin(_EMPTY)), pd.NA)


def authors_split(keys: pd.Series, seed: int = 2025, test_fraction: float = 0.2,
                  cap_fraction: float = 0.4) -> pd.Series:
    """``train``/``test`` per cell from donor keys (no NA), the authors' smallest-donors-first rule.

    Donors of equal size are ordered by a seeded shuffle (as in their pretrain
    split), so the result is reproducible.
    """
    counts = keys.value_counts()
    if len(counts) < 2:
        raise BuildError(f"omnicell-tosg: the authors' donor split needs at least 2 donors, the selection has "
                         f"{len(counts)}")
    total = int(counts.sum())
    target, cap = math.floor(total * test_fraction), math.floor(total * cap_fraction)
    rng = np.random.RandomState(seed)
    donors = list(counts.index)
    rng.shuffle(donors)
    donors.sort(key=lambda k: int(counts[k]))  # stable: ties keep the shuffled order
    test, n = [], 0
    for k in donors:
        c = int(counts[k])
        if n + c > target:
            break
        test.append(k)
        n += c
    rest = [k for k in donors if k not in set(test)]
    if n < target and rest and n + int(counts[rest[0]]) <= cap:
        test.append(rest[0])
    if not test:
        test = [donors[0]]
    return pd.Series(np.where(keys.isin(set(test)), "test", "train"), index=keys.index)
