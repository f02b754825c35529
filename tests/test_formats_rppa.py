import numpy as np
import pytest

from omicsdata.errors import FormatError
from omicsdata.formats import read_rppa

RPPA = """AGID\tlab_id\tcatalog_number\tset_id\tpeptide_target\tprotein_expression
AGID00100\t1433EPSILON-R-C\tsc-23957\tSet_17\t1433EPSILON\t0.452186
AGID00215\tAKT_pS473-R-V\t9271\tSet_17\tAKT_pS473\tNA
AGID00001\tACC1-R-E\t4190\tSet_17\tACC1\t-0.2
AGID02000\tACC1-M-V\t9999\tSet_18\tACC1\t0.4
AGID02001\tACC1-M-X\t9998\tSet_18\tACC1\tNA
"""


def test_rppa_duplicates_averaged(tmp_path):
    p = tmp_path / "TCGA-A1-A0SB-01A-21-A13A-20_RPPA_data.tsv"
    p.write_text(RPPA)
    prof = read_rppa(p)
    assert prof.feature_list() == ["1433EPSILON", "AKT_pS473", "ACC1"]
    np.testing.assert_allclose(prof.values[[0, 2]], [0.452186, 0.1], rtol=1e-6)
    assert np.isnan(prof.values[1]) and prof.meta["duplicate_rows_averaged"] == 2


def test_rppa_errors(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_text(RPPA.replace("peptide_target", "target"))
    with pytest.raises(FormatError, match="line 1: missing column"):
        read_rppa(p)
    p.write_text(RPPA.replace("\t-0.2\n", "\t-0.2\t3\n"))
    with pytest.raises(FormatError, match=r"r.tsv, line 4: expected 6"):
        read_rppa(p)


def test_portion_barcodes_are_read_by_dash_separated_fields():
    from omicsdata.formats.barcode import aliquot_rank, barcode_fields

    f = barcode_fields("TCGA-D3-A3ML-06A-21-A241-20")  # RPPA: a portion barcode, no analyte letter
    assert (f["sample"], f["vial"], f["portion"], f["analyte"], f["plate"], f["centre"]) == \
        ("06", "A", "21", None, "A241", "20")
    g = barcode_fields("TCGA-A1-A0SB-01A-11R-A144-07")
    assert (g["portion"], g["analyte"], g["plate"], g["centre"]) == ("11", "R", "A144", "07")
    # duplicate rule: the higher plate (later run) wins for portions exactly as for aliquots
    old, new = "TCGA-D3-A3ML-06A-21-A241-20", "TCGA-D3-A3ML-06A-21-A45S-20"
    assert sorted([old, new], key=aliquot_rank)[0] == new
    old_al, new_al = "TCGA-D3-A3ML-06A-11R-A241-07", "TCGA-D3-A3ML-06A-11R-A45S-07"
    assert sorted([old_al, new_al], key=aliquot_rank)[0] == new_al
