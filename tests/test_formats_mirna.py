import numpy as np
import pytest

from omicsdata.errors import FormatError
from omicsdata.formats import read_mirna

MIRNA = """miRNA_ID\tread_count\treads_per_million_miRNA_mapped\tcross-mapped
hsa-let-7a-1\t26963\t5684.217934\tN
hsa-let-7a-2\t27036\t5699.607409\tY
hsa-mir-1\t0\t0.000000\tN
"""


def test_mirna(tmp_path):
    p = tmp_path / "x.mirbase21.mirnas.quantification.txt"
    p.write_text(MIRNA)
    prof = read_mirna(p)
    assert prof.feature_list() == ["hsa-let-7a-1", "hsa-let-7a-2", "hsa-mir-1"]
    np.testing.assert_array_equal(prof.values, [26963, 27036, 0])
    np.testing.assert_allclose(read_mirna(p, "reads_per_million_miRNA_mapped").values, [5684.217934, 5699.607409, 0])


def test_mirna_errors(tmp_path):
    p = tmp_path / "m.txt"
    p.write_text(MIRNA.replace("cross-mapped", "crossmapped"))
    with pytest.raises(FormatError, match=r"m.txt, line 1: missing column\(s\) 'cross-mapped'"):
        read_mirna(p)
    p.write_text(MIRNA.replace("27036", "27,036"))
    with pytest.raises(FormatError, match=r"m.txt, line 3: column 'read_count'"):
        read_mirna(p)


ISOFORMS = """miRNA_ID\tisoform_coords\tread_count\treads_per_million_miRNA_mapped\tcross-mapped\tmiRNA_region
hsa-let-7a-1\thg38:chr9:94175962-94175983:+\t3\t0.632\tN\tmature,MIMAT0000062
hsa-let-7a-1\thg38:chr9:94175962-94175984:+\t25\t5.27\tN\tmature,MIMAT0000062
hsa-let-7a-2\thg38:chr11:122146527-122146548:-\t11\t2.32\tN\tmature,MIMAT0000062
"""


def test_isoforms_file_is_refused_not_collapsed(tmp_path):
    p = tmp_path / "abc.mirbase21.isoforms.quantification.txt"
    p.write_text(ISOFORMS)
    with pytest.raises(FormatError, match=r"abc.mirbase21.isoforms.quantification.txt.*isoforms file"):
        read_mirna(p)


def test_duplicate_mirna_id_is_an_error_naming_file_and_id(tmp_path):
    p = tmp_path / "dup.mirbase21.mirnas.quantification.txt"
    p.write_text(MIRNA + "hsa-let-7a-2\t5\t1.0\tN\n")
    with pytest.raises(FormatError, match=r"dup.mirbase21.mirnas.quantification.txt.*'hsa-let-7a-2' appears 2 times"):
        read_mirna(p)
