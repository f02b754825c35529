"""BiomedSQL (NIH-CARD/BiomedSQL): text-to-SQL questions + the knowledge-base tables they run on.

Published layout (Hub dataset repo, read at the card's pinned revision)::

    benchmark_data/train.csv        questions, one per row: uuid, question, benchmark_query (gold
    benchmark_data/dev.csv          BigQuery SQL with a ``{dataset_name}`` placeholder), answer,
    benchmark_data/dev_sample.csv   execution_results (the gold rows the authors stored: a Python
                                    literal list of {column: value} dicts), ...
    benchmark_data/BiomedSQL.csv    the union of train.csv and dev.csv (never read by default)
    db_data/<Table>.parquet         one file per knowledge-base table

CSV files are picked by name (``splits``: file stems), never by globbing:
``BiomedSQL.csv`` repeats train + dev, so reading every CSV would count each
question twice. A uuid repeated inside one file is an error naming the file and
row; the same uuid in two files is allowed (``dev_sample`` is drawn from ``dev``).

Store: no matrices; Parquet tables ``benchmark`` (the chosen CSVs' rows, with a
``split`` column = the CSV's stem, ``sql`` = the gold query, ``execution_results``
kept verbatim) and ``db/<Table>`` (each knowledge-base file, copied byte for
byte). :func:`omicsdata.biomedsql.evaluate` scores predictions against the
stored ``execution_results``.
"""
from __future__ import annotations

import csv
from pathlib import Path

import mudata as md
import pandas as pd

from ...builders import BuildResult, register
from ...builders._text_source import RepoFiles
from ...errors import FormatError

REQUIRED = ("uuid", "question", "answer", "execution_results")
FILES = {"train": "benchmark_data/train.csv", "dev": "benchmark_data/dev.csv",
         "dev_sample": "benchmark_data/dev_sample.csv", "BiomedSQL": "benchmark_data/BiomedSQL.csv"}
DEFAULT_SPLITS = ("train", "dev", "dev_sample")
SQL_COLUMNS = ("benchmark_query", "SQL", "sql", "sql_query", "query")  # first present is the gold SQL


def read_benchmark_csv(path: Path, split: str) -> pd.DataFrame:
    """Read one benchmark CSV; every field is kept as text. Errors name the file, line and column."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as e:
        raise FormatError(path, f"not a readable CSV ({e})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    sql_col = next((c for c in SQL_COLUMNS if c in df.columns), None)
    if missing or sql_col is None:
        want = missing + ([] if sql_col else ["benchmark_query (gold SQL)"])
        raise FormatError(path, f"missing column(s) {want}; columns are {list(df.columns)}", line=1)
    for c in ("uuid", "question", sql_col):
        empty = df.index[df[c].str.strip() == ""]
        if len(empty):
            i = int(empty[0])
            raise FormatError(path, f"record {df.at[i, 'uuid'] or i}: empty '{c}'", line=i + 2)
    dup = df["uuid"][df["uuid"].duplicated()]
    if len(dup):
        first = int(df.index[df["uuid"] == dup.iloc[0]][0])
        raise FormatError(path, f"duplicate uuid '{dup.iloc[0]}' (rows {first + 1} and {int(dup.index[0]) + 1})",
                          line=int(dup.index[0]) + 2)
    df = df.rename(columns={sql_col: "sql"})
    df.insert(1, "split", split)
    return df


def pick_files(repo, splits) -> list[tuple[str, str]]:
    """``[(split, repo path)]`` of the benchmark CSVs to read, chosen by name."""
    have = set(repo.files)
    if splits is None:
        chosen = [(s, FILES[s]) for s in DEFAULT_SPLITS if FILES[s] in have]
        if not chosen:
            raise FormatError(repo.where, f"none of {[FILES[s] for s in DEFAULT_SPLITS]} is in the repo; "
                                          f"benchmark files there: {sorted(f for f in have if f.endswith('.csv'))}")
        return chosen
    chosen = []
    for s in ([splits] if isinstance(splits, str) else list(splits)):
        f = FILES.get(s, f"benchmark_data/{s}.csv")
        if f not in have:
            raise FormatError(repo.where, f"no {f} for split '{s}'; benchmark files there: "
                                          f"{sorted(f for f in have if f.startswith('benchmark_data/'))}")
        chosen.append((s, f))
    return chosen


@register("biomedsql")
def build(card, workdir, local_dir: str | None = None, splits: list[str] | None = None,
          revision: str | None = None, **_unused) -> BuildResult:
    """Options: ``splits`` (benchmark CSV stems, default ``train``, ``dev``, ``dev_sample``;
    ``BiomedSQL`` = their published union), ``local_dir`` (a local copy of the repo layout),
    ``revision`` (Hub revision)."""
    if _unused:
        raise TypeError(f"unknown option(s) {sorted(_unused)}")
    repo = RepoFiles(card, local_dir, revision=revision)
    csvs = pick_files(repo, splits)
    dbs = repo.match("db_data/*.parquet")
    if not dbs:
        raise FormatError(repo.where, "no db_data/*.parquet knowledge-base tables")
    frames = [read_benchmark_csv(repo.path(f), s) for s, f in csvs]
    bench = pd.concat(frames, ignore_index=True)
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
              "files": [f for _, f in csvs],
              "db_tables": db_meta, **repo.provenance()}
    return BuildResult(mdata=md.MuData({}), report=report, tables=tables,
                       extra={"db_tables": sorted(db_meta), "dataset_name_placeholder": "{dataset_name}"})

