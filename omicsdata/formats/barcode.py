"""TCGA barcodes: ``TCGA-A1-A0SB-01A-11R-A144-07`` = project-TSS-participant (12 chars, the
patient), sample type (``01`` primary solid tumour, ``03`` primary blood tumour, ``06``
metastatic, ``10``+ normal), vial (``A``), portion (``11``), analyte (``R``), plate (``A144``),
centre (``07``).

RPPA files are keyed by PORTION barcodes, which have no analyte letter
(``TCGA-D3-A3ML-06A-21-A241-20``): fields are therefore read by splitting on
dashes, never by fixed character offsets."""
from __future__ import annotations

from ..errors import FormatError


def patient_of(barcode: str) -> str:
    """The patient (case) barcode: the first 12 characters."""
    if not barcode or len(barcode) < 12 or barcode.count("-") < 2:
        raise FormatError("<barcode>", f"{barcode!r} is not a TCGA-style barcode (need at least TCGA-XX-XXXX)")
    return barcode[:12]


def sample_type(barcode: str) -> str | None:
    """Two-digit sample type code (``"01"``), or None if the barcode stops at the patient."""
    code = barcode[13:15]
    return code if len(code) == 2 and code.isdigit() else None


def is_tumour(barcode: str) -> bool:
    code = sample_type(barcode)
    return code is not None and int(code) < 10


def _plate_key(plate: str) -> int:
    try:
        return int(plate, 36)
    except ValueError:
        return -1


def barcode_fields(barcode: str) -> dict:
    """``{"sample", "vial", "portion", "analyte", "plate", "centre"}`` from the dash-separated fields.

    Works for aliquot (``...-01A-11R-A144-07``) and portion (``...-06A-21-A241-20``,
    no analyte letter) barcodes; absent fields are ``None``.
    """
    parts = str(barcode).split("-")
    sv = parts[3] if len(parts) > 3 else ""
    pa_ = parts[4] if len(parts) > 4 else ""
    return {"sample": sv[:2] if sv[:2].isdigit() else None, "vial": sv[2:3] or None,
            "portion": pa_[:2] or None, "analyte": pa_[2:3] or None,
            "plate": parts[5] if len(parts) > 5 and parts[5] else None,
            "centre": parts[6] if len(parts) > 6 and parts[6] else None}


def aliquot_rank(barcode: str, file_id: str = "") -> tuple:
    """Sort key of the duplicate-aliquot rule (smallest wins).

    Among several aliquots (or RPPA portions) of one patient and modality,
    keep the one with the first vial (``A`` before ``B``), then the lowest
    portion, then the highest plate (the most recent run; plates are base-36
    ids), then the smallest barcode and file id (a deterministic tie-break).
    """
    f = barcode_fields(barcode)
    return (f["sample"] or "99", f["vial"] or "~", f["portion"] or "99", -_plate_key(f["plate"] or ""),
            barcode, file_id)
