"""GDC masked somatic mutation MAF (``*.wxs.aliquot_ensemble_masked.maf.gz``).

Published layout: gzipped, tab-separated; ``#`` comment lines first
(``#version gdc-1.0.0``, ``#filedate ...``, ``#annotation.spec ...``), then a
header of ~140 columns (``Hugo_Symbol``, ``Entrez_Gene_Id``, ...,
``Variant_Classification``, ..., ``Tumor_Sample_Barcode``, ..., ``IMPACT``,
...), one variant per line. Columns are found by name, never by position.

:func:`read_maf` reduces the calls to the set of genes mutated per tumour
sample, keeping only variants that pass a :class:`MutationFilter`.

Comment and header lines are read at most :data:`MAX_LINE_CHARS` characters at
a time: a longer line (a corrupt or hostile file, e.g. a 400 MiB header) is a
:class:`FormatError` naming the file and line, with bounded memory.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FormatError
from ._common import open_text, read_tsv, require_columns

#: longest comment/header line accepted (a real GDC MAF header is a few KB)
MAX_LINE_CHARS = 1 << 20

NON_SILENT = ("Missense_Mutation", "Nonsense_Mutation", "Frame_Shift_Del", "Frame_Shift_Ins",
              "In_Frame_Del", "In_Frame_Ins", "Splice_Site", "Translation_Start_Site", "Nonstop_Mutation")


@dataclasses.dataclass(frozen=True)
class MutationFilter:
    """Keep variants whose ``column`` value is in ``values``.

    Presets (:meth:`from_spec`): ``"non_silent"`` (Variant_Classification in the
    protein-changing classes, the default), ``"impact_high"`` (IMPACT == HIGH),
    ``"impact_high_moderate"``, ``"all"``; or a dict ``{"column": ..., "values": [...]}``.
    """

    column: str | None = "Variant_Classification"
    values: tuple = NON_SILENT

    @classmethod
    def from_spec(cls, spec) -> "MutationFilter":
        if isinstance(spec, MutationFilter):
            return spec
        if spec is None or spec == "non_silent":
            return cls()
        if spec == "impact_high":
            return cls("IMPACT", ("HIGH",))
        if spec == "impact_high_moderate":
            return cls("IMPACT", ("HIGH", "MODERATE"))
        if spec == "all":
            return cls(None, ())
        if isinstance(spec, dict) and "column" in spec and "values" in spec:
            return cls(str(spec["column"]), tuple(spec["values"]))
        raise FormatError("<mutation filter>", f"unknown mutation filter {spec!r} (non_silent, impact_high, "
                                               "impact_high_moderate, all, or {'column': ..., 'values': [...]})")

    def to_dict(self) -> dict:
        return {"column": self.column, "values": list(self.values)}


def _read_line(fh, path, lineno: int) -> str:
    """One line of at most :data:`MAX_LINE_CHARS` characters (``""`` at the end of the file)."""
    try:
        line = fh.readline(MAX_LINE_CHARS + 1)
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise FormatError(path, f"cannot read ({type(e).__name__}: {e})", line=lineno) from None
    if len(line) > MAX_LINE_CHARS:
        raise FormatError(path, f"line longer than {MAX_LINE_CHARS} characters; not a MAF comment/header line",
                          line=lineno)
    return line


def _header(path) -> tuple[int, list[str]]:
    """(number of ``#`` comment lines, header columns), reading line by line with a length cap."""
    n = 0
    with open_text(path) as fh:
        while True:
            line = _read_line(fh, path, n + 1)
            if not line.startswith("#"):
                break
            n += 1
    if not line.strip():
        raise FormatError(path, "no header line after the comments", line=n + 1)
    return n, line.rstrip("\r\n").split("\t")


def read_maf(path, filter: MutationFilter | str | dict | None = None) -> dict[str, list[str]]:
    """Genes mutated per ``Tumor_Sample_Barcode`` (variants passing ``filter``).

    Returns ``{tumour barcode: sorted gene symbols}``; a sample whose variants
    all fail the filter maps to ``[]`` (it was sequenced: no mutated gene).
    ``Hugo_Symbol == "Unknown"`` (intergenic) is ignored.
    """
    flt = MutationFilter.from_spec(filter)
    skip, header = _header(path)
    need = ["Hugo_Symbol", "Tumor_Sample_Barcode"] + ([flt.column] if flt.column else [])
    require_columns(path, header, need, line=skip + 1)
    cols = list(dict.fromkeys(need))
    t = read_tsv(path, skip_rows=skip, include=cols, types={c: pa.string() for c in cols})
    samples = t.column("Tumor_Sample_Barcode").combine_chunks()
    if len(samples) and pc.any(pc.equal(samples, "")).as_py():
        i = int(np.flatnonzero(pc.equal(samples, "").to_numpy(zero_copy_only=False))[0])
        raise FormatError(path, "empty Tumor_Sample_Barcode", line=skip + 2 + i)
    out: dict[str, list[str]] = {s: [] for s in pc.unique(samples).to_pylist()}
    keep = pc.not_equal(t.column("Hugo_Symbol"), "Unknown")
    if flt.column:
        keep = pc.and_(keep, pc.is_in(t.column(flt.column), value_set=pa.array(list(flt.values), pa.string())))
    t = t.filter(keep)
    if t.num_rows:
        pairs = t.select(["Tumor_Sample_Barcode", "Hugo_Symbol"]).group_by(
            ["Tumor_Sample_Barcode", "Hugo_Symbol"]).aggregate([])
        for s, g in zip(pairs.column(0).to_pylist(), pairs.column(1).to_pylist()):
            out[s].append(g)
    return {s: sorted(g) for s, g in out.items()}
