"""Target-QA (GALAX; Hub dataset FuhaiLiAiLab/Target-QA): CRISPR target prioritisation QA records.

Published layout: the Hub card's configs name two files, ``train_samples_detailed.csv``
(split ``train``) and ``test_samples_detailed.csv`` (split ``test``); they are read
by name, columns by header. The GALAX notebook (``process.ipynb``) builds each
record as ``{cell_line_name, sample_index, disease, disease_bmgc_id, input: {top_k_gene,
top_k_transcript, top_k_protein, knowledge_graph: {disease_protein, ppi_neighbors,
protein_relationships}}, ground_truth_answer: {top_bm_gene}}`` keyed by the DepMap id,
and an omics list may be the string ``"non-existed"`` instead of a list: that
field is missing for the sample (null, named in ``missing_fields``), never an error.

CSV cells that hold a list (JSON or Python-literal ``[...]``) become list columns;
nested records (``{...}``) are flattened to ``<column>.<key>`` columns. The
notebook's JSON files (``{sample_id: record}``, ``*_tr.json`` / ``*_te.json``)
are read too when named with ``files=[...]``.

Store: no matrices; Parquet table ``qa``, one row per (split, sample): ``sample_id``,
``split``, ``sample_index``, ``disease_bmgc_id``, the other fields, ``missing_fields``
and ``record_json`` (the row or record verbatim).
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import mudata as md
import pandas as pd

from ...builders import BuildResult, register
from ...builders._text_source import RepoFiles
from ...errors import FormatError

FILES = {"train": "train_samples_detailed.csv", "test": "test_samples_detailed.csv"}
MISSING = "non-existed"
ID_COLUMNS = ("depMapID", "sample_id", "sample_ach_name", "ModelID")
REQUIRED = ("sample_index", "disease_bmgc_id")
# the notebook's JSON record -> column (hgnc_symbols of each block)
JSON_FIELDS = {
    "cell_line_name": ("cell_line_name",), "sample_index": ("sample_index",), "disease": ("disease",),
    "disease_bmgc_id": ("disease_bmgc_id",),
    "top_k_gene": ("input", "top_k_gene", "hgnc_symbols"),
    "top_k_transcript": ("input", "top_k_transcript", "hgnc_symbols"),
    "top_k_protein": ("input", "top_k_protein", "hgnc_symbols"),
    "disease_protein": ("input", "knowledge_graph", "disease_protein", "hgnc_symbols"),
    "ppi_neighbors": ("input", "knowledge_graph", "ppi_neighbors", "hgnc_symbols"),
    "protein_relationships": ("input", "knowledge_graph", "protein_relationships"),
    "answer_genes": ("ground_truth_answer", "top_bm_gene", "hgnc_symbols"),
}


def _cell(v, shown, sid, col):
    """A CSV cell as a value: ``[...]``/``{...}`` parsed as JSON or a Python literal, else the text."""
    s = v.strip()
    if s[:1] in "[{":
        try:
            return json.loads(s)
        except ValueError:
            try:
                return ast.literal_eval(s)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise FormatError(shown, f"sample {sid}: column '{col}' starts like a list but is not one: "
                                         f"{s[:60]!r}") from None
    return v


def _put(row: dict, col: str, v, missing: list):
    if isinstance(v, str) and v.strip() == MISSING:
        row[col] = None
        missing.append(col)
    elif isinstance(v, dict):
        for k, x in v.items():
            _put(row, f"{col}.{k}", x, missing)
    elif isinstance(v, list):
        row[col] = [str(x) for x in v]
    else:
        row[col] = v


def read_csv_records(path: Path, split: str, shown: str) -> list[dict]:
    """One Target-QA CSV -> flat rows; errors name the file, line and sample."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise FormatError(shown, f"not a readable CSV ({e})") from None
    idc = next((c for c in ID_COLUMNS if c in df.columns), None)
    missing = [c for c in REQUIRED if c not in df.columns] + ([] if idc else [f"one of {list(ID_COLUMNS)}"])
    if missing:
        raise FormatError(shown, f"missing column(s) {missing}; columns are {list(df.columns)}", line=1)
    rows = []
    for i, rec in enumerate(df.to_dict("records")):
        sid = rec[idc]
        row, gone = {"sample_id": sid, "split": split}, []
        for col, v in rec.items():
            if col != idc:
                _put(row, col, _cell(v, shown, sid, col), gone)
        try:
            row["sample_index"] = int(row["sample_index"])
        except (TypeError, ValueError):
            raise FormatError(shown, f"sample {sid}: sample_index {rec['sample_index']!r} is not an integer",
                              line=i + 2) from None
        row["missing_fields"] = gone
        row["record_json"] = json.dumps(rec)
        rows.append(row)
    return rows


def read_json_records(path: Path, split: str, shown: str) -> list[dict]:
    """The notebook's ``{sample_id: record}`` JSON -> flat rows (same columns as the CSV reader)."""
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(shown, f"not valid JSON ({e})", line=getattr(e, "lineno", None)) from None
    if not isinstance(data, dict):
        raise FormatError(shown, f"expected an object {{sample_id: record}}, got {type(data).__name__}")
    rows = []
    for sid, rec in data.items():
        if not isinstance(rec, dict):
            raise FormatError(shown, f"record {sid}: expected an object, got {type(rec).__name__}")
        row, gone = {"sample_id": str(sid), "split": split}, []
        for col, keys in JSON_FIELDS.items():
            v = rec
            for k in keys:
                if isinstance(v, str) and v == MISSING:
                    break
                if not isinstance(v, dict) or k not in v:
                    raise FormatError(shown, f"record {sid}: missing field '{'.'.join(keys)}'")
                v = v[k]
            _put(row, col, v, gone)
        row["missing_fields"] = gone
        row["record_json"] = json.dumps(rec, sort_keys=True)
        rows.append(row)
    return rows


def split_of(path: str) -> str:
    stem = Path(path).stem.lower()
    if stem.endswith("_tr") or stem.startswith("train"):
        return "train"
    if stem.endswith("_te") or stem.startswith("test"):
        return "test"
    return "all"


@register("target-qa")
def build(card, workdir, local_dir: str | None = None, revision: str | None = None,
          files: list[str] | None = None) -> BuildResult:
    """Options: ``files`` (repo paths to read instead of the two CSVs the card names; ``.json``
    files in the notebook's layout are accepted), ``local_dir`` (a local folder in the repo
    layout), ``revision`` (Hub revision)."""
    repo = RepoFiles(card, local_dir, revision=revision)
    if files:
        chosen = [(split_of(f), f) for f in files]
    else:
        chosen = [(s, f) for s, f in FILES.items()]
    absent = [f for _, f in chosen if f not in repo.files]
    if absent:
        raise FormatError(repo.where, f"no {absent}; files there: {repo.files}")
    rows = []
    for split, f in chosen:
        reader = read_json_records if f.endswith(".json") else read_csv_records
        rows += reader(repo.path(f), split, f)
    if not rows:
        raise FormatError(repo.where, f"{[f for _, f in chosen]} hold no samples")
    df = pd.DataFrame(rows)
    dup = df[df.duplicated(["split", "sample_id"])]
    if len(dup):
        raise FormatError(repo.where, f"sample {dup.iloc[0]['sample_id']} appears twice in split {dup.iloc[0]['split']}")
    report = {"records": {s: int(n) for s, n in df["split"].value_counts().sort_index().items()},
              "files": [f for _, f in chosen],
              "missing_fields": {c: int(n) for c, n in pd.Series(
                  [c for g in df["missing_fields"] for c in g], dtype=object).value_counts().items()},
              **repo.provenance()}
    return BuildResult(mdata=md.MuData({}), report=report, tables={"qa": df})
