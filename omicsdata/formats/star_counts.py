"""GDC "STAR - Counts" gene expression quantification (``*.rna_seq.augmented_star_gene_counts.tsv``).

Published layout (tab-separated)::

    # gene-model: GENCODE v36
    gene_id  gene_name  gene_type  unstranded  stranded_first  stranded_second  tpm_unstranded  fpkm_unstranded  fpkm_uq_unstranded
    N_unmapped  ...                 (four N_* summary rows: N_unmapped, N_multimapping, N_noFeature, N_ambiguous;
    N_multimapping ...               their tpm/fpkm cells are empty)
    N_noFeature ...
    N_ambiguous ...
    ENSG00000000003.15  TSPAN6  protein_coding  2436  1238  1198  38.4567  11.4322  10.5322
    ... (60,660 genes)

The ``N_*`` rows are dropped; one value column is returned.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FormatError
from ._common import Profile, first_line, read_tsv, require_columns, to_float32

VALUE_COLUMNS = ("unstranded", "stranded_first", "stranded_second", "tpm_unstranded",
                 "fpkm_unstranded", "fpkm_uq_unstranded")
HEADER = ("gene_id", "gene_name", "gene_type") + VALUE_COLUMNS


def read_star_counts(path, value: str = "unstranded", gene_names: bool = False) -> Profile:
    """Read one STAR - Counts file; ``value`` picks the column (unstranded / tpm_unstranded /
    fpkm_unstranded / fpkm_uq_unstranded / stranded_first / stranded_second).

    Returns a :class:`Profile` over genes (``N_*`` rows dropped); ``meta`` holds the
    ``gene-model`` line and, with ``gene_names=True``, the gene names.
    """
    if value not in VALUE_COLUMNS:
        raise FormatError(path, f"unknown STAR value column '{value}' (choose from {', '.join(VALUE_COLUMNS)})")
    head = first_line(path)
    if not head.startswith("# gene-model"):
        raise FormatError(path, f"not a STAR - Counts file: line 1 should be '# gene-model: ...', found {head[:60]!r}",
                          line=1)
    include = ["gene_id", value] + (["gene_name"] if gene_names else [])
    t = read_tsv(path, skip_rows=1, include=include, types={value: pa.float32()})
    require_columns(path, t.column_names, include, line=2)
    ids = t.column("gene_id")
    keep = pc.invert(pc.starts_with(ids, "N_"))
    t = t.filter(keep)
    ids = t.column("gene_id").combine_chunks()
    vals = to_float32(t.column(value))
    if ids.null_count or (len(ids) and pc.any(pc.equal(ids, "")).as_py()):
        bad = int(np.flatnonzero(pc.equal(ids, "").to_numpy(zero_copy_only=False))[0]) + 7
        raise FormatError(path, "empty gene_id", line=bad)
    meta = {"gene_model": head.lstrip("# ").partition(":")[2].strip(), "value": value}
    if gene_names:
        meta["gene_names"] = t.column("gene_name").combine_chunks()
    return Profile(features=ids, values=vals, meta=meta)
