"""Biology-Instructions (ChatMultiOmics): instruction / response records over DNA, RNA, protein
and multi-molecule sequences.

No Hub dataset exists; the authors publish the stage-3 data as an Excel workbook in their
GitHub repository (stage 2 is announced as a Drive archive and is not read). The builder
downloads ``<base_url>/<revision>/<file>`` (a raw-file URL at a pinned commit; the card
holds all three, each a builder option) with :func:`omicsdata.sources.http.download`
(resume, retries, ``$OMICSDATA_HTTP_MIRROR``), or reads ``<local_dir>/<file>``.

Every sheet is read with openpyxl (read-only, values not formulas); the first non-empty
row is the header, matched case-insensitively: the trainer's record is ``{"input",
"output"}`` (``instruction``/``question``/``prompt`` and ``response``/``answer`` are
accepted too), ``task`` (else the sheet name) and ``split`` (else ``train``) are optional.
There is no sequence-type field: it is inferred from the task name
(:func:`sequence_type_of`) and is ``unknown`` when the name does not tell -- never an error.

Store: no matrices; Parquet table ``instructions`` with columns ``id, split, sequence_type,
task, instruction, response, source_file, sheet, row``.
"""
from __future__ import annotations

import re
from pathlib import Path

import mudata as md
import pandas as pd

from ... import paths
from ...builders import BuildResult, register
from ...errors import BuildError, FormatError

INSTRUCTION_KEYS = ("input", "instruction", "question", "prompt")
RESPONSE_KEYS = ("output", "response", "answer")
TASK_KEYS = ("task", "task_name", "task name")
UNKNOWN = "unknown"
# task-name words -> sequence type; multi-molecule (two kinds of molecule) is checked first
_MULTI = re.compile(r"rna[-_ ]?protein|protein[-_ ]?rna|dna[-_ ]?protein|protein[-_ ]?dna|antibody[-_ ]?antigen|"
                    r"\brpi\b|enhancer[-_ ]?promoter|promoter[-_ ]?enhancer|\bepi\b|sirna|crispr|"
                    r"drug[-_ ]?target|\bcpi\b|interaction|multi", re.I)
_RNA = re.compile(r"rna|apa|isoform|polyadenylation|ribosome|\bmrl\b|modification|splic|riboswitch|"
                  r"translation[-_ ]?efficiency|ncrna|mirna|lncrna|switch", re.I)
_DNA = re.compile(r"dna|promoter|enhancer|epigenetic|histone|\bemp\b|tf[-_ ]?binding|transcription[-_ ]?factor|"
                  r"\btfbs?\b|chromatin|methylation|genom", re.I)
_PROTEIN = re.compile(r"protein|enzyme|\bec\b|fluorescence|stability|solubility|thermostab|\bgo\b|"
                      r"function|structure|peptide|antibody|fold", re.I)


def sequence_type_of(task: str | None) -> str:
    """``DNA``, ``RNA``, ``protein``, ``multi-molecule`` or ``unknown``, from a task name."""
    t = str(task or "")
    for kind, rx in (("multi-molecule", _MULTI), ("RNA", _RNA), ("DNA", _DNA), ("protein", _PROTEIN)):
        if rx.search(t):
            return kind
    return UNKNOWN


def _pick(header: list[str], keys) -> int | None:
    low = [h.strip().lower() for h in header]
    return next((low.index(k) for k in keys if k in low), None)


def read_workbook(path: Path, shown: str) -> list[dict]:
    """Every record of every sheet; errors name the file, sheet and row."""
    try:
        import openpyxl
    except ImportError:
        raise BuildError("reading Biology-Instructions' xlsx needs openpyxl: pip install openpyxl") from None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zipfile.BadZipFile, KeyError, InvalidFileException...
        raise FormatError(shown, f"not a readable xlsx workbook ({type(e).__name__}: {e})") from None
    out = []
    try:
        for ws in wb.worksheets:
            it = ws.iter_rows(values_only=True)
            header, hrow = None, 0
            for cells in it:
                hrow += 1
                if any(c is not None and str(c).strip() for c in cells):
                    header = ["" if c is None else str(c) for c in cells]
                    break
            if header is None:
                continue  # an empty sheet
            ik, rk = _pick(header, INSTRUCTION_KEYS), _pick(header, RESPONSE_KEYS)
            if ik is None or rk is None:
                need = "input (input/instruction/question/prompt)" if ik is None else "output (output/response/answer)"
                raise FormatError(shown, f"sheet '{ws.title}': no {need} column; header is {header}", line=hrow)
            tk, sk = _pick(header, TASK_KEYS), _pick(header, ("split",))
            for r, cells in enumerate(it, hrow + 1):
                cells = list(cells) + [None] * (len(header) - len(cells))
                if not any(c is not None and str(c).strip() for c in cells):
                    continue
                if cells[ik] is None or cells[rk] is None:
                    what = header[ik] if cells[ik] is None else header[rk]
                    raise FormatError(shown, f"sheet '{ws.title}', row {r}: empty '{what}'", line=r)
                task = str(cells[tk]).strip() if tk is not None and cells[tk] is not None else ws.title
                out.append({"split": str(cells[sk]).strip().lower() if sk is not None and cells[sk] else "train",
                            "sequence_type": sequence_type_of(task), "task": task,
                            "instruction": str(cells[ik]), "response": str(cells[rk]),
                            "source_file": shown, "sheet": ws.title, "row": r})
    finally:
        wb.close()
    return out


def fetch(card, base_url: str | None, revision: str | None, file: str | None) -> tuple[Path, str]:
    """Download the workbook (raw-file URL at a pinned commit) into the raw cache; ``(path, url)``."""
    from ...sources import http

    src = dict(card.get("source", {}))
    base = (base_url or src.get("location") or "").rstrip("/")
    rev = revision or src.get("revision")
    name = file or dict(src.get("files", {})).get("stage3")
    if not base or not rev or not name:
        raise BuildError(f"{card.name}: base_url, revision and file are needed (card source or builder options)")
    url = f"{base}/{rev}/{name}"
    dest = paths.raw_dir("url") / card.name / rev / Path(name).name
    return http.download(url, dest), url


@register("biology-instructions")
def build(card, workdir, local_dir: str | None = None, base_url: str | None = None,
          revision: str | None = None, file: str | None = None) -> BuildResult:
    """Options: ``base_url`` (raw-file host + repository), ``revision`` (commit), ``file``
    (workbook path in the repository), or ``local_dir`` (a folder holding ``file``)."""
    if local_dir:
        name = file or dict(card.get("source", {}).get("files", {})).get("stage3", "stage3.xlsx")
        path, where = Path(local_dir).expanduser() / name, str(Path(local_dir) / name)
        if not path.is_file():
            raise BuildError(f"{card.name}: no {name} in local_dir {local_dir}")
    else:
        path, where = fetch(card, base_url, revision, file)
    rows = read_workbook(path, Path(where).name if local_dir else where)
    if not rows:
        raise FormatError(where, "the workbook holds no records")
    df = pd.DataFrame(rows)
    df.insert(0, "id", range(len(df)))
    report = {"records": int(len(df)),
              "by_sequence_type": {k: int(v) for k, v in df["sequence_type"].value_counts().sort_index().items()},
              "by_split": {k: int(v) for k, v in df["split"].value_counts().sort_index().items()},
              "tasks": sorted(df["task"].unique().tolist()), "source": where}
    return BuildResult(mdata=md.MuData({}), report=report, tables={"instructions": df})
