"""Shared pieces of the format parsers: the :class:`Profile` result and a
fast tab-separated reader (pyarrow) with line-precise error reports."""
from __future__ import annotations

import dataclasses
import gzip
import io
import os
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import FormatError

NULLS = ["NA", ""]


@dataclasses.dataclass
class Profile:
    """One sample's measurements from one file.

    features: feature names (pyarrow string array; ``.to_numpy(zero_copy_only=False)`` for numpy)
    values: float32, one per feature (NaN = missing)
    meta: anything else the file said (e.g. the gene model line, gene names)
    """

    features: pa.Array
    values: np.ndarray
    meta: dict = dataclasses.field(default_factory=dict)

    def feature_list(self) -> list[str]:
        return self.features.to_pylist()


def open_text(path) -> io.TextIOBase:
    """Open a text file, gunzipping ``.gz``."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_tsv(path, *, skip_rows: int = 0, column_names: Sequence[str] | None = None,
             include: Sequence[str] | None = None, types: dict | None = None,
             nulls: Sequence[str] = NULLS, use_threads: bool | None = None) -> pa.Table:
    """Read a tab-separated file with pyarrow (no quoting; ``.gz`` is decompressed).

    ``use_threads`` defaults to True for files over 4 MiB. On a malformed file, re-scans it line by line and raises
    :class:`FormatError` naming the first bad line.
    """
    if use_threads is None:  # threads pay off only for big files; small ones run in parallel per file
        use_threads = os.path.getsize(path) > (4 << 20)
    ropts = pacsv.ReadOptions(skip_rows=skip_rows, column_names=list(column_names) if column_names else None,
                              use_threads=use_threads, block_size=1 << 20)
    popts = pacsv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False)
    copts = pacsv.ConvertOptions(include_columns=list(include) if include else None,
                                 column_types=dict(types or {}), null_values=list(nulls),
                                 strings_can_be_null=False, quoted_strings_can_be_null=False,
                                 check_utf8=False)  # GDC files are ASCII; skipping the check is ~2x faster
    try:
        return pacsv.read_csv(os.fspath(path), read_options=ropts, parse_options=popts, convert_options=copts)
    except pa.ArrowInvalid as e:
        locate_bad_line(path, skip_rows=skip_rows, column_names=column_names, types=types, nulls=nulls)
        msg = str(e).split("\n")[0]
        raise FormatError(path, f"cannot parse ({msg})") from None
    except (OSError, EOFError) as e:
        raise FormatError(path, f"cannot read ({type(e).__name__}: {e})") from None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def locate_bad_line(path, *, skip_rows: int = 0, column_names=None, types=None, nulls=NULLS) -> None:
    """Scan ``path`` in Python and raise :class:`FormatError` at the first malformed line.

    A line is malformed if its number of fields differs from the header's,
    or a numeric column holds a value that is not a number (nor a null).
    Returns quietly when nothing is found.
    """
    nulls = set(nulls)
    with open_text(path) as fh:
        lineno = 0
        for _ in range(skip_rows):
            fh.readline()
            lineno += 1
        if column_names is None:
            header = fh.readline().rstrip("\r\n").split("\t")
            lineno += 1
        else:
            header = list(column_names)
        numeric = [header.index(c) for c, t in (types or {}).items()
                   if c in header and (pa.types.is_floating(t) or pa.types.is_integer(t))]
        ncol = len(header)
        for line in fh:
            lineno += 1
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != ncol:
                raise FormatError(path, f"expected {ncol} tab-separated fields, found {len(fields)}", line=lineno)
            for i in numeric:
                v = fields[i]
                if v not in nulls and not _is_number(v):
                    raise FormatError(path, f"column '{header[i]}': {v!r} is not a number", line=lineno)


def require_columns(path, table_columns: Sequence[str], needed: Sequence[str], line: int = 1) -> None:
    missing = [c for c in needed if c not in table_columns]
    if missing:
        raise FormatError(path, f"missing column(s) {', '.join(map(repr, missing))} in the header "
                                f"(found: {', '.join(table_columns[:12])})", line=line)


def to_float32(col: pa.ChunkedArray) -> np.ndarray:
    """A numeric (possibly null-bearing) column as float32 with NaN for nulls."""
    if col.null_count:
        col = col.fill_null(float("nan"))
    arr = col.to_numpy()
    return arr.astype(np.float32, copy=False)


def first_line(path) -> str:
    with open_text(path) as fh:
        return fh.readline().rstrip("\r\n")
