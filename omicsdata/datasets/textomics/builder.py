"""TextOmics (ToDi): omics expression signatures paired one-to-one with molecule descriptions + SMILES.

The TextOmics files are not public yet; this builder reads an **assumed
layout** (documented on the catalog card), from ``local_dir``::

    expression.csv   signature_id, <gene 1>, <gene 2>, ...   one row per signature (float values)
    pairs.csv        signature_id, smiles, description[, split]   one row per pair (one-to-one)

Store: modality ``expression`` (pairs x genes, float32, obs in pairs.csv
order) and Parquet table ``pairs`` (row i = obs row i: ``signature_id,
smiles, description``). Splits group by SMILES, so one molecule never sits
in two splits (unless pairs.csv gives a ``split`` column, which is kept).
"""
from __future__ import annotations

from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ...builders import BuildResult, register
from ...builders._text_source import RepoFiles
from ...errors import FormatError

PAIR_COLUMNS = ("signature_id", "smiles", "description")
SPLITS = {"train", "val", "test"}


def read_expression(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"signature_id": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise FormatError(path, f"not a readable CSV ({e})") from None
    if "signature_id" not in df.columns or df.shape[1] < 2:
        raise FormatError(path, f"need a 'signature_id' column and at least one gene column; got {list(df.columns)[:5]}", line=1)
    df = df.set_index("signature_id")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        col = bad[0]
        vals = pd.to_numeric(df[col], errors="coerce")
        i = int(np.flatnonzero(vals.isna() & df[col].notna())[0])
        raise FormatError(path, f"record {df.index[i]}: gene '{col}' value {df[col].iloc[i]!r} is not a number", line=i + 2)
    if df.index.duplicated().any():
        i = int(np.flatnonzero(df.index.duplicated())[0])
        raise FormatError(path, f"record {df.index[i]}: duplicate signature_id", line=i + 2)
    return df.astype(np.float32)


def read_pairs(path: Path, signatures: pd.Index) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise FormatError(path, f"not a readable CSV ({e})") from None
    missing = [c for c in PAIR_COLUMNS if c not in df.columns]
    if missing:
        raise FormatError(path, f"missing column(s) {missing}; columns are {list(df.columns)}", line=1)
    for i, r in enumerate(df.itertuples(index=False)):
        rec = r._asdict()
        for c in PAIR_COLUMNS:
            if not rec[c].strip():
                raise FormatError(path, f"record {rec['signature_id'] or i}: empty '{c}'", line=i + 2)
        if rec["signature_id"] not in signatures:
            raise FormatError(path, f"record {rec['signature_id']}: no such signature in expression.csv", line=i + 2)
        if "split" in df.columns and rec["split"] not in SPLITS:
            raise FormatError(path, f"record {rec['signature_id']}: split {rec['split']!r} is not one of {sorted(SPLITS)}", line=i + 2)
    dup = df["signature_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise FormatError(path, f"record {df['signature_id'].iloc[i]}: signature paired twice (pairs are one-to-one)", line=i + 2)
    return df


@register("textomics")
def build(card, workdir, local_dir: str | None = None, revision: str | None = None) -> BuildResult:
    """Options: ``local_dir`` (folder in the assumed layout: expression.csv + pairs.csv)."""
    repo = RepoFiles(card, local_dir, revision=revision)
    expr = read_expression(repo.path("expression.csv"))
    pairs = read_pairs(repo.path("pairs.csv"), expr.index)
    X = expr.loc[pairs["signature_id"]].to_numpy(np.float32)
    obs = pd.DataFrame({"signature_id": pairs["signature_id"].to_numpy(), "smiles": pairs["smiles"].to_numpy()},
                       index=pd.Index([f"pair{i}" for i in range(len(pairs))], name="pair_id"))
    if "split" in pairs.columns:
        obs["split"] = pairs["split"].to_numpy()
    a = ad.AnnData(X=X, obs=obs.copy(), var=pd.DataFrame(index=pd.Index(expr.columns.astype(str), name="gene")))
    mdata = md.MuData({"expression": a})
    mdata.obs = obs.copy()
    table = pairs[list(PAIR_COLUMNS)].copy()
    table.insert(0, "pair_id", obs.index.to_numpy())
    report = {"pairs": int(len(pairs)), "genes": int(expr.shape[1]), "molecules": int(pairs["smiles"].nunique()),
              "unpaired_signatures": int(len(expr.index.difference(pairs["signature_id"]))), **repo.provenance()}
    return BuildResult(mdata=mdata, report=report, tables={"pairs": table},
                       feature_kinds={"expression": "gene expression signature (assumed layout)"})
