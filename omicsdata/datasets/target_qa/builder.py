"""Target-QA (GALAX; Hub dataset FuhaiLiAiLab/Target-QA): CRISPR target prioritisation QA records.

Published JSON records (as GALAX's code reads them): one JSON object per
file, ``{sample_id: record}``, with ``record`` holding ``cell_line_name``,
``disease``, ``input.top_k_gene.hgnc_symbols``, ``input.top_k_transcript.hgnc_symbols``,
``input.top_k_protein.hgnc_symbols``, ``input.knowledge_graph.disease_protein.hgnc_symbols``,
``input.knowledge_graph.protein_relationships`` (``"A -> B"`` strings) and the answer
``ground_truth_answer.top_bm_gene.hgnc_symbols`` (genes ranked by CRISPR knockout effect).
Files ending ``_tr.json`` are the training split, ``_te.json`` the test split.

Store: no matrices; Parquet table ``qa`` with one row per (split, sample):
the fields above as columns (lists stay lists) plus ``record_json`` (the
record verbatim).
"""
from __future__ import annotations

import json
from pathlib import Path

import mudata as md
import pandas as pd

from ...builders import BuildResult, register
from ...builders._text_source import RepoFiles
from ...errors import FormatError

FIELDS = {  # column -> path in the record
    "cell_line_name": ("cell_line_name",),
    "disease": ("disease",),
    "top_k_gene": ("input", "top_k_gene", "hgnc_symbols"),
    "top_k_transcript": ("input", "top_k_transcript", "hgnc_symbols"),
    "top_k_protein": ("input", "top_k_protein", "hgnc_symbols"),
    "disease_protein": ("input", "knowledge_graph", "disease_protein", "hgnc_symbols"),
    "protein_relationships": ("input", "knowledge_graph", "protein_relationships"),
    "answer_genes": ("ground_truth_answer", "top_bm_gene", "hgnc_symbols"),
}
LIST_FIELDS = {k for k in FIELDS if k not in ("cell_line_name", "disease")}


def split_of(path: str) -> str:
    stem = Path(path).stem.lower()
    if stem.endswith("_tr") or "train" in stem:
        return "train"
    if stem.endswith("_te") or "test" in stem:
        return "test"
    return "all"


def read_records(path: Path, split: str, shown: str | None = None) -> list[dict]:
    """Flatten one Target-QA JSON file; errors name the file and the sample id."""
    shown = shown or str(path)
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
        row = {"sample_id": str(sid), "split": split}
        for col, keys in FIELDS.items():
            v = rec
            for k in keys:
                if not isinstance(v, dict) or k not in v:
                    raise FormatError(shown, f"record {sid}: missing field '{'.'.join(keys)}'")
                v = v[k]
            if col in LIST_FIELDS:
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise FormatError(shown, f"record {sid}: field '{'.'.join(keys)}' must be a list of strings")
            elif not isinstance(v, str):
                raise FormatError(shown, f"record {sid}: field '{'.'.join(keys)}' must be a string")
            row[col] = v
        row["record_json"] = json.dumps(rec, sort_keys=True)
        rows.append(row)
    return rows


@register("target-qa")
def build(card, workdir, local_dir: str | None = None, revision: str | None = None,
          files: list[str] | None = None) -> BuildResult:
    """Options: ``files`` (repo paths of the JSON files, default every ``*.json`` in the repo),
    ``local_dir`` (a local folder in the repo layout), ``revision`` (Hub revision)."""
    repo = RepoFiles(card, local_dir, revision=revision)
    jsons = list(files) if files else [f for f in repo.match("*.json", "**/*.json") if split_of(f) != "all"]
    if not jsons:
        raise FormatError(repo.where, "no Target-QA JSON files (*_tr.json / *_te.json)")
    rows = []
    for f in jsons:
        rows += read_records(repo.path(f), split_of(f), shown=f)
    df = pd.DataFrame(rows)
    dup = df[df.duplicated(["split", "sample_id"])]
    if len(dup):
        raise FormatError(repo.where, f"record {dup.iloc[0]['sample_id']} appears twice in split {dup.iloc[0]['split']}")
    report = {"records": {s: int(n) for s, n in df["split"].value_counts().sort_index().items()},
              "files": jsons, **repo.provenance()}
    return BuildResult(mdata=md.MuData({}), report=report, tables={"qa": df})
