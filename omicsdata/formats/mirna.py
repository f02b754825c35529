"""GDC BCGSC miRNA expression quantification (``*.mirbase21.mirnas.quantification.txt``).

Published layout (tab-separated, with header)::

    miRNA_ID        read_count  reads_per_million_miRNA_mapped  cross-mapped
    hsa-let-7a-1    26963       5684.217934                     N

1,881 miRNAs (miRBase v21).
"""
from __future__ import annotations

import pyarrow as pa

from ..errors import FormatError
from ._common import Profile, first_line, read_tsv, require_columns, to_float32

HEADER = ("miRNA_ID", "read_count", "reads_per_million_miRNA_mapped", "cross-mapped")


def read_mirna(path, value: str = "read_count") -> Profile:
    """Read one miRNA quantification; ``value``: ``read_count`` or ``reads_per_million_miRNA_mapped``."""
    if value not in HEADER[1:3]:
        raise FormatError(path, f"unknown miRNA value column '{value}' (read_count or reads_per_million_miRNA_mapped)")
    head = first_line(path).split("\t")
    require_columns(path, head, HEADER, line=1)
    t = read_tsv(path, include=["miRNA_ID", value], types={value: pa.float32()})
    return Profile(features=t.column("miRNA_ID").combine_chunks(), values=to_float32(t.column(value)),
                   meta={"value": value})
