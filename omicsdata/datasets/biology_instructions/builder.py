"""Biology-Instructions (ChatMultiOmics): instruction / response records over DNA, RNA, protein
and multi-molecule sequences, one task per record.

Layout read (assumed, see the catalog card): JSON-lines (or JSON array)
files anywhere in the repo, one record per line with

* instruction: ``instruction`` | ``input`` | ``question`` | ``prompt``
* response:    ``output`` | ``response`` | ``answer``
* task:        ``task`` (else the file stem)
* sequence type: ``sequence_type`` | ``omics`` | ``type`` (else a path part
  named dna / rna / protein / multi-molecule)
* split:       ``split`` (else a path part train / valid / validation / dev / test, else ``train``)

Store: no matrices; Parquet table ``instructions`` with columns ``id,
split, sequence_type, task, instruction, response, source_file``.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import mudata as md
import pandas as pd

from ...builders import BuildResult, register
from ...builders._text_source import RepoFiles
from ...errors import FormatError

INSTRUCTION_KEYS = ("instruction", "input", "question", "prompt")
RESPONSE_KEYS = ("output", "response", "answer")
TYPE_KEYS = ("sequence_type", "omics", "type")
SEQUENCE_TYPES = {"dna": "DNA", "rna": "RNA", "protein": "protein", "proteins": "protein",
                  "multi-molecule": "multi-molecule", "multi_molecule": "multi-molecule",
                  "multimolecule": "multi-molecule", "multi-molecules": "multi-molecule", "multi": "multi-molecule"}
SPLITS = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "dev": "valid", "test": "test"}


def _pick(rec: dict, keys) -> str | None:
    for k in keys:
        if k in rec and rec[k] is not None:
            return k
    return None


def _records(path: Path, shown: str):
    """Yield ``(line_no, record)`` from a JSONL or JSON-array file."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(shown, f"not valid JSON ({e.msg})", line=e.lineno) from None
        for i, r in enumerate(data):
            yield f"record {i}", None, r
        return
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"record on line {ln}", ln, json.loads(line)
        except json.JSONDecodeError as e:
            raise FormatError(shown, f"not a JSON record ({e.msg})", line=ln) from None


def read_instruction_file(path: Path, shown: str) -> list[dict]:
    """Normalise the records of one file; errors name the file and the record/line."""
    parts = [p.lower() for p in PurePosixPath(shown).parts[:-1]]
    path_type = next((SEQUENCE_TYPES[p] for p in parts if p in SEQUENCE_TYPES), None)
    path_split = next((SPLITS[p] for p in parts + [PurePosixPath(shown).stem.lower()] if p in SPLITS), "train")
    out = []
    for what, ln, rec in _records(path, shown):
        if not isinstance(rec, dict):
            raise FormatError(shown, f"{what}: expected a JSON object, got {type(rec).__name__}", line=ln)
        ik, rk = _pick(rec, INSTRUCTION_KEYS), _pick(rec, RESPONSE_KEYS)
        if ik is None or rk is None:
            need = "instruction (instruction/input/question/prompt)" if ik is None else "response (output/response/answer)"
            raise FormatError(shown, f"{what}: no {need} field; keys are {sorted(rec)}", line=ln)
        tk = _pick(rec, TYPE_KEYS)
        raw_type = str(rec[tk]).strip().lower() if tk else None
        stype = SEQUENCE_TYPES.get(raw_type) if raw_type else path_type
        if stype is None:
            raise FormatError(shown, f"{what}: unknown sequence type {rec.get(tk) if tk else None!r} "
                                     f"(expected one of DNA, RNA, protein, multi-molecule)", line=ln)
        out.append({
            "split": SPLITS.get(str(rec.get("split", "")).lower(), path_split),
            "sequence_type": stype,
            "task": str(rec.get("task") or PurePosixPath(shown).stem),
            "instruction": str(rec[ik]),
            "response": str(rec[rk]),
            "source_file": shown,
        })
    return out


@register("biology-instructions")
def build(card, workdir, local_dir: str | None = None, revision: str | None = None) -> BuildResult:
    """Options: ``local_dir`` (a local folder in the layout), ``revision`` (Hub revision)."""
    repo = RepoFiles(card, local_dir, revision=revision)
    files = repo.match("*.jsonl", "**/*.jsonl", "*.json", "**/*.json")
    if not files:
        raise FormatError(repo.where, "no .jsonl/.json instruction files")
    rows = []
    for f in files:
        rows += read_instruction_file(repo.path(f), f)
    if not rows:
        raise FormatError(repo.where, "the instruction files hold no records")
    df = pd.DataFrame(rows)
    df.insert(0, "id", range(len(df)))
    report = {"records": int(len(df)),
              "by_sequence_type": {k: int(v) for k, v in df["sequence_type"].value_counts().sort_index().items()},
              "by_split": {k: int(v) for k, v in df["split"].value_counts().sort_index().items()},
              "tasks": sorted(df["task"].unique().tolist()), **repo.provenance()}
    return BuildResult(mdata=md.MuData({}), report=report, tables={"instructions": df})
