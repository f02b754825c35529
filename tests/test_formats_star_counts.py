import numpy as np
import pytest

from omicsdata.errors import FormatError
from omicsdata.formats import read_star_counts

STAR = """# gene-model: GENCODE v36
gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\ttpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded
N_unmapped\t\t\t2384734\t2384734\t2384734\t\t\t
N_multimapping\t\t\t3173357\t3173357\t3173357\t\t\t
N_noFeature\t\t\t2031506\t25893213\t25970467\t\t\t
N_ambiguous\t\t\t3612924\t473640\t477154\t\t\t
ENSG00000000003.15\tTSPAN6\tprotein_coding\t2436\t1238\t1198\t38.4567\t11.4322\t10.5322
ENSG00000000005.6\tTNMD\tprotein_coding\t3\t2\t1\t0.1245\t0.0370\t0.0341
ENSG00000000419.13\tDPM1\tprotein_coding\t1810\t907\t903\t111.9521\t33.2805\t30.6610
ENSG00000002586.20_PAR_Y\tCD99\tprotein_coding\t0\t0\t0\t0.0000\t0.0000\t0.0000
"""


@pytest.fixture()
def star(tmp_path):
    p = tmp_path / "a.rna_seq.augmented_star_gene_counts.tsv"
    p.write_text(STAR)
    return p


def test_star_columns_and_n_rows_dropped(star):
    prof = read_star_counts(star)
    assert prof.feature_list() == ["ENSG00000000003.15", "ENSG00000000005.6", "ENSG00000000419.13",
                                   "ENSG00000002586.20_PAR_Y"]
    np.testing.assert_array_equal(prof.values, [2436, 3, 1810, 0])
    assert prof.values.dtype == np.float32 and prof.meta["gene_model"] == "GENCODE v36"
    np.testing.assert_allclose(read_star_counts(star, "tpm_unstranded").values, [38.4567, 0.1245, 111.9521, 0])
    np.testing.assert_allclose(read_star_counts(star, "fpkm_unstranded").values, [11.4322, 0.0370, 33.2805, 0])
    np.testing.assert_allclose(read_star_counts(star, "fpkm_uq_unstranded").values, [10.5322, 0.0341, 30.6610, 0])
    assert read_star_counts(star, gene_names=True).meta["gene_names"].to_pylist()[:2] == ["TSPAN6", "TNMD"]


def test_star_errors(star, tmp_path):
    with pytest.raises(FormatError, match="unknown STAR value column"):
        read_star_counts(star, "counts")
    bad = tmp_path / "bad.tsv"
    bad.write_text(STAR.replace("\t3\t2\t1\t", "\t3\tx\t2\t1\t"))
    with pytest.raises(FormatError, match=r"bad.tsv, line 8: expected 9 tab-separated fields, found 10"):
        read_star_counts(bad)
    bad.write_text(STAR.replace("\t1810\t", "\tabc\t"))
    with pytest.raises(FormatError, match=r"bad.tsv, line 9: column 'unstranded': 'abc' is not a number"):
        read_star_counts(bad)
    bad.write_text(STAR.split("\n", 1)[1])
    with pytest.raises(FormatError, match=r"line 1: not a STAR - Counts file"):
        read_star_counts(bad)
