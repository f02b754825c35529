"""GDC RPPA protein expression quantification (``*_RPPA_data.tsv``, TCPA level 4).

Published layout (tab-separated, with header)::

    AGID            lab_id  catalog_number  set_id         peptide_target  protein_expression
    AGID00100       1433EPSILON  ...        Set_17         1433EPSILON     0.4521
    AGID00215       ...                     ...            AKT_pS473       NA

``NA`` is missing. A target measured by several antibodies appears on several
rows; those are averaged (ignoring NA), in first-appearance order.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ._common import Profile, first_line, read_tsv, require_columns, to_float32

HEADER = ("AGID", "lab_id", "catalog_number", "set_id", "peptide_target", "protein_expression")


def read_rppa(path) -> Profile:
    """Read one RPPA file; duplicate ``peptide_target`` rows are averaged."""
    head = first_line(path).split("\t")
    require_columns(path, head, ("peptide_target", "protein_expression"), line=1)
    t = read_tsv(path, include=["peptide_target", "protein_expression"],
                 types={"protein_expression": pa.float64()})
    targets = t.column("peptide_target").combine_chunks()
    vals = to_float32(t.column("protein_expression")).astype(np.float64)
    enc = targets.dictionary_encode()
    codes = enc.indices.to_numpy()
    k = len(enc.dictionary)
    ok = ~np.isnan(vals)
    sums = np.bincount(codes[ok], weights=vals[ok], minlength=k)
    cnt = np.bincount(codes[ok], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan).astype(np.float32)
    n_dup = int(len(targets) - k)
    return Profile(features=enc.dictionary, values=mean, meta={"duplicate_rows_averaged": n_dup})
