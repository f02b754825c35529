"""GDC SeSAMe methylation beta values (``*.methylation_array.sesame.level3betas.txt``).

Published layout: two tab-separated columns, no header, one probe per line::

    cg00000029\t0.5862
    cg00000108\tNA
    cg00000109\t

``NA`` or an empty cell means missing (NaN). ~485k probes (450k array) or
~865k (EPIC).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..errors import FormatError
from ._common import Profile, read_tsv, to_float32


def read_beta_values(path, check_range: bool = True) -> Profile:
    """Read one beta-value file; values outside [0, 1] raise (``check_range``)."""
    t = read_tsv(path, column_names=["probe", "beta"], types={"beta": pa.float32()})
    probes = t.column("probe").combine_chunks()
    vals = to_float32(t.column("beta"))
    if len(vals) == 0:
        raise FormatError(path, "no probes in the file")
    if check_range:
        with np.errstate(invalid="ignore"):
            bad = (vals < 0) | (vals > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FormatError(path, f"beta value {vals[i]} of probe {probes[i].as_py()} is outside [0, 1]", line=i + 1)
    return Profile(features=probes, values=vals, meta={})
