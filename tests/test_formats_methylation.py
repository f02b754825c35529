import numpy as np
import pytest

from omicsdata.errors import FormatError
from omicsdata.formats import read_beta_values

BETAS = "cg00000029\t0.586251\ncg00000108\tNA\ncg00000109\t\ncg00000165\t0.1063\ncg00000236\t0.912\n"


def test_beta_values(tmp_path):
    p = tmp_path / "x.methylation_array.sesame.level3betas.txt"
    p.write_text(BETAS)
    prof = read_beta_values(p)
    assert prof.feature_list() == ["cg00000029", "cg00000108", "cg00000109", "cg00000165", "cg00000236"]
    np.testing.assert_array_equal(np.isnan(prof.values), [False, True, True, False, False])
    np.testing.assert_allclose(prof.values[[0, 3, 4]], [0.586251, 0.1063, 0.912], rtol=1e-6)


def test_beta_errors(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text(BETAS.replace("0.1063", "0.1063\textra"))
    with pytest.raises(FormatError, match=r"b.txt, line 4: expected 2 tab-separated fields, found 3"):
        read_beta_values(p)
    p.write_text(BETAS.replace("0.912", "1.7"))
    with pytest.raises(FormatError, match=r"line 5: beta value 1.7.* outside \[0, 1\]"):
        read_beta_values(p)
    p.write_text(BETAS.replace("0.912", "high"))
    with pytest.raises(FormatError, match=r"line 5: column 'beta': 'high' is not a number"):
        read_beta_values(p)
