"""GDC BCGSC miRNA expression quantification (``*.mirbase21.mirnas.quantification.txt``).

Published layout (tab-separated, with header)::

    miRNA_ID        read_count  reads_per_million_miRNA_mapped  cross-mapped
    hsa-let-7a-1    26963       5684.217934                     N

1,881 miRNAs (miRBase v21), one row each. The sibling isoforms file
(``*.isoforms.quantification.txt``: columns ``miRNA_ID``, ``isoform_coords``,
``read_count``, ``reads_per_million_miRNA_mapped``, ``cross-mapped``,
``miRNA_region``; one row per isoform, so ``miRNA_ID`` repeats) is refused
with a clear error, never collapsed; a quantification file with a repeated
``miRNA_ID`` is an error naming the file and the ID.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import FormatError
from ._common import Profile, first_line, read_tsv, require_columns, to_float32

HEADER = ("miRNA_ID", "read_count", "reads_per_million_miRNA_mapped", "cross-mapped")


def read_mirna(path, value: str = "read_count") -> Profile:
    """Read one miRNA quantification; ``value``: ``read_count`` or ``reads_per_million_miRNA_mapped``."""
    if value not in HEADER[1:3]:
        raise FormatError(path, f"unknown miRNA value column '{value}' (read_count or reads_per_million_miRNA_mapped)")
    head = first_line(path).split("\t")
    if "isoform_coords" in head:
        raise FormatError(path, "this is a miRNA isoforms file (column 'isoform_coords', one row per isoform, "
                                "miRNA_ID repeated); read the *.mirnas.quantification.txt file of the same aliquot")
    require_columns(path, head, HEADER, line=1)
    t = read_tsv(path, include=["miRNA_ID", value], types={value: pa.float32()})
    ids = t.column("miRNA_ID").combine_chunks()
    names = np.asarray(ids.to_pylist(), dtype=object).astype(str)
    uniq, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        dup = [u for u in names if counts[np.searchsorted(uniq, u)] > 1]  # in file order
        rows = np.flatnonzero(names == dup[0]) + 2  # 1-based lines, after the header
        raise FormatError(path, f"miRNA_ID '{dup[0]}' appears {len(rows)} times (lines "
                                f"{', '.join(map(str, rows[:5]))}); {int((counts > 1).sum())} repeated ID(s) in "
                                "all - a quantification file has one row per miRNA")
    return Profile(features=ids, values=to_float32(t.column(value)), meta={"value": value})
