import gzip

import pytest

from omicsdata.errors import FormatError
from omicsdata.formats import read_maf
from omicsdata.synth_gdc import MAF_COLUMNS, maf_text

T, N = "TCGA-A1-A0SB-01A-11D-A142-09", "TCGA-A1-A0SB-10A-01D-A142-09"


def write(tmp_path, text, name="x.wxs.aliquot_ensemble_masked.maf.gz"):
    p = tmp_path / name
    p.write_bytes(gzip.compress(text.encode()))
    return p


def test_maf_filters(tmp_path):
    # genes get classes in turn: Missense (MODERATE), Nonsense (HIGH), Frame_Shift_Del (HIGH), Splice_Site (HIGH)
    p = write(tmp_path, maf_text(T, N, ["TP53", "KRAS", "PIK3CA", "GATA3"], silent_genes=["TTN", "TP53"]))
    assert read_maf(p) == {T: ["GATA3", "KRAS", "PIK3CA", "TP53"]}
    assert read_maf(p, "impact_high") == {T: ["GATA3", "KRAS", "PIK3CA"]}
    assert read_maf(p, "all") == {T: ["GATA3", "KRAS", "PIK3CA", "TP53", "TTN"]}
    assert read_maf(p, {"column": "Variant_Classification", "values": ["Silent"]}) == {T: ["TP53", "TTN"]}


def test_maf_columns_by_name_not_position(tmp_path):
    text = maf_text(T, N, ["TP53", "KRAS"])
    lines = text.splitlines()
    head = [ln for ln in lines if ln.startswith("#")]
    rows = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    order = list(reversed(range(len(MAF_COLUMNS))))  # every column moved
    shuffled = "\n".join(head + ["\t".join(r[i] for i in order) for r in rows]) + "\n"
    assert read_maf(write(tmp_path, shuffled)) == {T: ["KRAS", "TP53"]}


def test_maf_no_variants_and_errors(tmp_path):
    assert read_maf(write(tmp_path, maf_text(T, N, []))) == {}
    text = maf_text(T, N, ["TP53"]).replace("Tumor_Sample_Barcode", "Tumor_Barcode")
    with pytest.raises(FormatError, match=r"line 5: missing column\(s\) 'Tumor_Sample_Barcode'"):
        read_maf(write(tmp_path, text, "bad.maf.gz"))
    text = maf_text(T, N, ["TP53", "KRAS"])
    text = text.rstrip("\n") + "\tEXTRA\n"
    with pytest.raises(FormatError, match=r"bad2.maf.gz, line 7: expected"):
        read_maf(write(tmp_path, text, "bad2.maf.gz"))
