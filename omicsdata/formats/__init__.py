"""Parsers of the raw file formats, one module per format.

=====================  ==============================================  ==========================
module                 GDC file                                        reader
=====================  ==============================================  ==========================
``star_counts``        STAR - Counts gene expression TSV               :func:`read_star_counts`
``methylation``        SeSAMe methylation beta values (level 3)        :func:`read_beta_values`
``mirna``              BCGSC miRNA expression quantification           :func:`read_mirna`
``maf``                masked somatic mutation MAF (gzipped)           :func:`read_maf`
``rppa``               RPPA protein expression quantification          :func:`read_rppa`
``clinical``           ``/cases`` JSON hits                            :func:`parse_cases`
=====================  ==============================================  ==========================

Each tabular reader returns a :class:`Profile` (feature names + one float32
value per feature) and raises :class:`~omicsdata.errors.FormatError` naming
the file and, where a row is at fault, its line number. They read with
pyarrow's multi-threaded CSV reader; the slow line-by-line scan runs only
after a failure, to find the line to report.
"""
from __future__ import annotations

from ._common import Profile  # noqa: F401
from .clinical import parse_cases  # noqa: F401
from .maf import MutationFilter, read_maf  # noqa: F401
from .methylation import read_beta_values  # noqa: F401
from .mirna import read_mirna  # noqa: F401
from .rppa import read_rppa  # noqa: F401
from .star_counts import read_star_counts  # noqa: F401

#: reader name -> function(path, **options) -> Profile
READERS = {
    "star_counts": read_star_counts,
    "beta_values": read_beta_values,
    "mirna": read_mirna,
    "rppa": read_rppa,
}
