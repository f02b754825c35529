"""BiomedSQL (NIH-CARD/BiomedSQL): text-to-SQL questions + the knowledge-base tables they run on.

Published layout (Hub dataset repo)::

    benchmark_data/<split>.csv   one row per question: uuid, question, benchmark_query (gold SQL,
                                 with a ``{dataset_name}`` placeholder for the BigQuery dataset),
                                 answer, execution_results (the gold rows, a Python-literal list), ...
    db_data/<Table>.parquet      one file per knowledge-base table

Store: no matrices; Parquet tables ``benchmark`` (every CSV row, with a
``split`` column = the CSV's stem, ``sql`` = the gold query) and
``db/<Table>`` (each knowledge-base file, copied byte for byte).
:func:`omicsdata.biomedsql.evaluate` runs predicted and gold queries on them.
"""
from __future__ import annotations

import csv
from pathlib import Path

import mudata as md
import pandas as pd

from ...builders import BuildResult, register
from ...builders._text_source import RepoFiles
from ...errors import FormatError

REQUIRED = ("uuid", "question", "answer")
SQL_COLUMNS = ("benchmark_query", "SQL", "sql", "sql_query", "query")  # first present is the gold SQL


def read_benchmark_csv(path: Path, split: str) -> pd.DataFrame:
    """Read one benchmark CSV; every field is kept as text. Errors name the file, line and column."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as e:
        raise FormatError(path, f"not a readable CSV ({e})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    sql_col = next((c for c in SQL_COLUMNS if c in df.columns), None)
    if missing or sql_col is None:
        want = missing + ([] if sql_col else ["benchmark_query (gold SQL)"])
        raise FormatError(path, f"missing column(s) {want}; columns are {list(df.columns)}", line=1)
    for i, row in enumerate(df.itertuples(index=False)):
        r = row._asdict() if hasattr(row, "_asdict") else dict(zip(df.columns, row))
        for c in ("uuid", "question", sql_col):
            if not str(r.get(c, "")).strip():
                raise FormatError(path, f"record {r.get('uuid') or i}: empty '{c}'", line=i + 2)
    dup = df["uuid"][df["uuid"].duplicated()]
    if len(dup):
        raise FormatError(path, f"duplicate uuid '{dup.iloc[0]}'", line=int(dup.index[0]) + 2)
    df = df.rename(columns={sql_col: "sql"})
    df.insert(1, "split", split)
    return df


@register("biomedsql")
def build(card, workdir, local_dir: str | None = None, splits: list[str] | None = None,
          revision: str | None = None, **_unused) -> BuildResult:
    """Options: ``splits`` (benchmark CSV stems to keep, default all, e.g. ``["dev_sample"]``),
    ``local_dir`` (a local copy of the repo layout), ``revision`` (Hub revision)."""
    if _unused:
        raise TypeError(f"unknown option(s) {sorted(_unused)}")
    repo = RepoFiles(card, local_dir, revision=revision)
    csvs = repo.match("benchmark_data/*.csv")
    if splits is not None:
        csvs = [f for f in csvs if Path(f).stem in set(splits)]
        missing = set(splits) - {Path(f).stem for f in csvs}
        if missing:
            raise FormatError(repo.where, f"no benchmark_data/<split>.csv for split(s) {sorted(missing)}; "
                                          f"have {[Path(f).stem for f in repo.match('benchmark_data/*.csv')]}")
    if not csvs:
        raise FormatError(repo.where, "no benchmark_data/*.csv files")
    dbs = repo.match("db_data/*.parquet")
    if not dbs:
        raise FormatError(repo.where, "no db_data/*.parquet knowledge-base tables")
    frames = [read_benchmark_csv(repo.path(f), Path(f).stem) for f in csvs]
    bench = pd.concat(frames, ignore_index=True)
    dup = bench["uuid"][bench["uuid"].duplicated()]
    if len(dup):
        raise FormatError(repo.where, f"uuid '{dup.iloc[0]}' appears in two benchmark files")
    import pyarrow.parquet as pq

    tables: dict = {"benchmark": bench}
    db_meta = {}
    for f in dbs:
        p = repo.path(f)
        try:
            meta = pq.read_metadata(p)
        except Exception as e:  # pyarrow raises ArrowInvalid/OSError for non-Parquet bytes
            raise FormatError(f, f"not a readable Parquet file ({type(e).__name__}: {e})") from None
        tables[f"db/{Path(f).stem}"] = p  # copied byte for byte
        db_meta[Path(f).stem] = int(meta.num_rows)
    report = {"questions": {s: int(n) for s, n in bench["split"].value_counts().sort_index().items()},
              "db_tables": db_meta, **repo.provenance()}
    return BuildResult(mdata=md.MuData({}), report=report, tables=tables,
                       extra={"db_tables": sorted(db_meta), "dataset_name_placeholder": "{dataset_name}"})

