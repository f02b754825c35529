"""TCGA barcodes: ``TCGA-A1-A0SB-01A-11R-A144-07`` = project-TSS-participant (12 chars, the
patient), sample type (``01`` primary solid tumour, ``03`` primary blood tumour, ``06``
metastatic, ``10``+ normal), vial (``A``), portion (``11``), analyte (``R``), plate (``A144``),
centre (``07``)."""
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


def aliquot_rank(barcode: str, file_id: str = "") -> tuple:
    """Sort key of the duplicate-aliquot rule (smallest wins).

    Among several aliquots of one patient and modality, keep the one with the
    first vial (``A`` before ``B``), then the lowest portion, then the highest
    plate (the most recent run; plates are base-36 ids), then the smallest
    barcode and file id (a deterministic tie-break).
    """
    vial = barcode[15:16] or "~"
    portion = barcode[17:19] or "99"
    plate = barcode[21:25]
    return (sample_type(barcode) or "99", vial, portion, -_plate_key(plate), barcode, file_id)
