#!/usr/bin/env python
"""Has an upstream changed? Fetch only listings and headers of each catalog source and print a table.

For every dataset card (``omicsdata.catalog``) and model entry (``zoo.catalog``)
with a remote source, this reads only what it takes to compare the published
layout with what the catalog (and the facts recorded in :data:`EXPECT`, read
from the authors' repositories) expects:

* Hub repositories (``kind: hf``): the file list (``huggingface_hub``), the
  commit ``main`` points to against a pinned revision, ``.npy`` headers (one
  HTTP Range request: dtype and shape) and CSV header lines (Range request);
* plain URLs (``kind: url`` / ``http``, e.g. MOGONET's raw files): one Range
  request of the first bytes of each listed file (exists, size, magic bytes);
* the GDC API (``kind: gdc``): ``GET /status`` (data release) and a one-row
  ``/cases`` query with the fields the builder asks for.

Verdicts: ``match``, ``changed`` (the upstream differs from what the catalog
expects), ``unpinned`` (a branch, not a commit: shown with today's commit),
``unreachable`` (network/HTTP error), ``skipped`` (no remote source). Exit
status 1 when anything is ``changed`` or ``unreachable``.

Endpoints come from the usual settings, so the check runs offline against
local look-alikes too: ``HF_ENDPOINT`` (Hub), ``OMICSDATA_GDC_API`` (GDC),
``OMICSDATA_HTTP_MIRROR`` (plain URLs).

    python scripts/check_upstream.py                 # everything
    python scripts/check_upstream.py --only omnicell-tosg --only senmo-pancancer --json
"""
from __future__ import annotations

import argparse
import fnmatch
import io
import json
import re
import sys
from dataclasses import asdict, dataclass

import numpy as np

HEAD_BYTES = 64 * 1024  # enough for any header line we read
SHA = re.compile(r"^[0-9a-f]{40}$")
HEX = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")

#: What the authors publish, beyond the card's own ``source`` (evidence: each entry's card).
EXPECT: dict[str, dict] = {
    "senmo-pancancer": {
        "files": [f"Checkpoint_pancancer_combined_omic_fold{k}_for_test.pt" for k in range(1, 11)],
    },
    "omnicell-tosg": {
        "files": ["s_name.csv", "s_desc.csv", "s_bio.csv"],
        "npy": {"glob": "expression_matrix/*.npy", "dtype": "<f4", "ncols": 412039},
        "csv_headers": {"s_name.csv": ["Name"], "s_desc.csv": ["Description"], "s_bio.csv": [("Type", "Sequence")],
                        "cell_metadata_with_mappings.csv": ["CMT_name", "disease_BMG_name", "sex_normalized",
                                                            "development_stage_category", "dataset_id", "donor_id"]},
    },
    "target-qa": {
        "files": ["train_samples_detailed.csv", "test_samples_detailed.csv"],
        "csv_headers": {"train_samples_detailed.csv": ["sample_index", "disease_bmgc_id", "ppi_neighbors"]},
    },
    "biomedsql": {"csv_headers": {"*.csv": ["execution_results"]}},
    "biology-instructions": {"magic": {"stage3.xlsx": b"PK"}},
    "gdc-pancancer": {"gdc": True},
}


@dataclass
class Row:
    """One line of the table."""

    entry: str
    source: str
    check: str
    expected: str
    found: str
    verdict: str


def _short(x, n=60) -> str:
    s = str(x)
    return s if len(s) <= n else s[: n - 3] + "..."


def _pattern(p: str) -> str:
    """A card path with ``{placeholders}`` as a glob (``expression_matrix/{source}_part_{i}.npy`` -> ``*``)."""
    return re.sub(r"\{[^}]*\}", "*", p)


def _columns(first_line: str) -> list[str]:
    sep = "\t" if first_line.count("\t") > first_line.count(",") else ","
    return [c.strip().strip('"') for c in first_line.rstrip("\r\n").split(sep)]


def _card_paths(files) -> list[str]:
    """File paths of a card's ``source.files``: ``{name: path}``, ``{path: sha256}`` or a list."""
    if isinstance(files, dict):
        return [k if HEX.match(str(v)) else str(v) for k, v in files.items()]
    return [str(f) for f in files or []]


# ------------------------------------------------------------------ Hub
def _hf_rows(name: str, src: dict, expect: dict, files_from_entry: list[str]) -> list[Row]:
    from omicsdata.sources import hf

    repo = src.get("repo_id") or src.get("location")
    rtype = src.get("repo_type", "dataset")
    rev = str(src.get("revision") or "main")
    where = f"hf:{rtype}/{repo}"
    rows: list[Row] = []
    try:
        head = hf.resolve_revision(repo, repo_type=rtype, revision="main")
        listing = hf.list_files(repo, repo_type=rtype, revision=rev)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return [Row(name, where, "listing", rev, _short(f"{type(e).__name__}: {e}"), "unreachable")]
    if SHA.match(rev):
        rows.append(Row(name, where, "revision", rev[:12], head[:12], "match" if head == rev else "changed"))
    else:
        rows.append(Row(name, where, "revision", rev, f"{rev} -> {head[:12]}", "unpinned"))
    wanted = _card_paths(src.get("files")) + list(expect.get("files", [])) + files_from_entry
    for w in dict.fromkeys(wanted):
        hits = fnmatch.filter(listing, _pattern(w))
        rows.append(Row(name, where, f"file {w}", "present", f"{len(hits)} file(s)" if hits else "missing",
                        "match" if hits else "changed"))
    npy = expect.get("npy")
    if npy:
        rows.append(_npy_row(name, where, repo, rtype, rev, listing, npy))
    for pat, want in (expect.get("csv_headers") or {}).items():
        rows.append(_csv_row(name, where, repo, rtype, rev, listing, pat, want))
    return rows


def _hf_head(repo, rtype, rev, path, n):
    from omicsdata.sources import hf

    meta = hf.file_metadata(repo, path, repo_type=rtype, revision=rev)
    return hf.read_range(meta["url"], 0, min(n, meta["size"]), size=meta["size"], where=f"{repo}/{path}"), meta


def _npy_row(name, where, repo, rtype, rev, listing, npy: dict) -> Row:
    shards = sorted(fnmatch.filter(listing, npy["glob"]))
    exp = f"{npy['dtype']}, (rows, {npy['ncols']})"
    if not shards:
        return Row(name, where, f"npy header {npy['glob']}", exp, "no file", "changed")
    try:
        body, meta = _hf_head(repo, rtype, rev, shards[0], 4096)
        f = io.BytesIO(body)
        major, _ = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(f)
    except Exception as e:  # noqa: BLE001
        return Row(name, where, f"npy header {shards[0]}", exp, _short(f"{type(e).__name__}: {e}"), "unreachable")
    found = f"{dtype.str}, {shape}"
    ok = dtype.str == npy["dtype"] and len(shape) == 2 and shape[1] == npy["ncols"]
    return Row(name, where, f"npy header {shards[0]}", exp, found, "match" if ok else "changed")


def _csv_row(name, where, repo, rtype, rev, listing, pat, want) -> Row:
    files = sorted(fnmatch.filter(listing, pat))
    exp = ", ".join("/".join(w) if isinstance(w, tuple) else w for w in want)
    if not files:
        return Row(name, where, f"csv header {pat}", exp, "no file", "changed")
    try:
        body, _ = _hf_head(repo, rtype, rev, files[0], HEAD_BYTES)
    except Exception as e:  # noqa: BLE001
        return Row(name, where, f"csv header {files[0]}", exp, _short(f"{type(e).__name__}: {e}"), "unreachable")
    cols = _columns(body.decode("utf-8", "replace").lstrip("\ufeff").split("\n", 1)[0])
    missing = [w for w in want if not (set(w) & set(cols) if isinstance(w, tuple) else w in cols)]
    found = "all present" if not missing else "missing " + ", ".join(map(str, missing))
    return Row(name, where, f"csv header {files[0]}", exp, _short(found), "match" if not missing else "changed")


# ------------------------------------------------------------------ plain URLs
def _url_rows(name: str, src: dict, expect: dict, files_from_entry: list[str]) -> list[Row]:
    from omicsdata.sources import http

    base = (src.get("url") or src.get("location") or "").format(revision=src.get("revision", ""))
    paths = list(dict.fromkeys(_card_paths(src.get("files")) + files_from_entry))
    where = f"url:{_short(base, 40)}"
    if not paths:
        return [Row(name, where, "files", "listed in the card", "none listed", "skipped")]
    rows = []
    sess = http.session()
    magic = expect.get("magic", {})
    for p in paths:
        url = f"{base.rstrip('/')}/{p}"
        try:
            r = sess.get(http.mirror_url(url), headers={"Range": "bytes=0-1023", "Accept-Encoding": "identity"},
                         timeout=30, stream=True)
            code = r.status_code
            first = r.raw.read(1024) if code in (200, 206) else b""
            total = r.headers.get("Content-Range", "").rpartition("/")[2] or r.headers.get("Content-Length", "?")
            r.close()
        except Exception as e:  # noqa: BLE001
            rows.append(Row(name, where, f"file {p}", "present", _short(f"{type(e).__name__}: {e}"), "unreachable"))
            continue
        if code == 404:
            rows.append(Row(name, where, f"file {p}", "present", "missing (HTTP 404)", "changed"))
        elif code not in (200, 206):
            rows.append(Row(name, where, f"file {p}", "present", f"HTTP {code}", "unreachable"))
        elif p in magic and not first.startswith(magic[p]):
            rows.append(Row(name, where, f"file {p}", f"starts {magic[p]!r}", _short(repr(first[:8])), "changed"))
        else:
            rows.append(Row(name, where, f"file {p}", "present", f"{total} bytes", "match"))
    return rows


# ------------------------------------------------------------------ GDC
def _gdc_rows(name: str) -> list[Row]:
    from omicsdata.sources import gdc, http

    base = gdc.api_base()
    where = f"gdc:{_short(base, 40)}"
    policy = http.RetryPolicy(retries=1, timeout=30)
    rows = []
    try:
        st = http.request_json("GET", f"{base}/status", policy=policy)
        rows.append(Row(name, where, "GET /status", "status OK", _short(f"{st.get('status')}, "
                                                                        f"{st.get('data_release')}"),
                        "match" if str(st.get("status", "")).upper() == "OK" else "changed"))
    except Exception as e:  # noqa: BLE001
        return [Row(name, where, "GET /status", "status OK", _short(f"{type(e).__name__}: {e}"), "unreachable")]
    body = {"filters": gdc.f_in("project.project_id", ["TCGA-BRCA"]), "fields": ",".join(gdc.CASE_FIELDS),
            "format": "JSON", "size": 1}
    try:
        doc = http.request_json("POST", f"{base}/cases", json=body, policy=policy)
        hits = doc["data"]["hits"]
    except Exception as e:  # noqa: BLE001
        return rows + [Row(name, where, "POST /cases (1 row)", "CASE_FIELDS accepted", _short(f"{e}"), "changed")]
    hit = hits[0] if hits else {}
    demo = hit.get("demographic") or {}
    demo = demo[0] if isinstance(demo, list) and demo else demo
    have = ["sex_at_birth" in demo, "vital_status" in demo]
    found = "1 hit" if hits else "no hit"
    if hits:
        found += ", demographic." + ("sex_at_birth" if have[0] else "gender" if "gender" in demo else "?")
    rows.append(Row(name, where, "POST /cases (1 row)", "1 hit, demographic.sex_at_birth", found,
                    "match" if hits and all(have) else "changed"))
    return rows


# ------------------------------------------------------------------ driver
def _entries(only: list[str] | None):
    from omicsdata.catalog import dataset_entries

    out = [(n, "dataset", card) for n, (card, _) in dataset_entries().items()]
    try:
        import zoo.catalog as zc

        out += [(n, "model", e) for n, (e, _) in zc.model_entries().items()]
    except ImportError:  # the zoo is optional for this check
        pass
    return [x for x in out if not only or x[0] in only]


def check(only: list[str] | None = None) -> list[Row]:
    """All rows for the catalog entries (``only``: those names)."""
    rows: list[Row] = []
    for name, _kind, card in _entries(only):
        src = card.get("source") or {}
        kind = src.get("kind")
        expect = EXPECT.get(name, {})
        files = [f["path"] for f in card.get("files") or [] if isinstance(f, dict) and f.get("path")]
        if kind == "hf":
            rows += _hf_rows(name, src, expect, files)
        elif kind in ("url", "http"):
            rows += _url_rows(name, src, expect, files)
        elif kind == "gdc":
            rows += _gdc_rows(name)
        else:
            rows.append(Row(name, str(kind), "-", "-", "no remote source", "skipped"))
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    head = ["entry", "source", "check", "expected", "found", "verdict"]
    cells = [head] + [[r.entry, r.source, r.check, r.expected, r.found, r.verdict] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", help="catalog entry name (repeatable)")
    ap.add_argument("--json", action="store_true", help="one JSON object per row instead of the table")
    args = ap.parse_args(argv)
    rows = check(args.only)
    if args.json:
        for r in rows:
            print(json.dumps(asdict(r)))
    else:
        print(format_table(rows))
        counts = {v: sum(r.verdict == v for r in rows) for v in ("match", "changed", "unpinned", "unreachable",
                                                                  "skipped")}
        print("\n" + ", ".join(f"{k}: {v}" for k, v in counts.items() if v))
    return 1 if any(r.verdict in ("changed", "unreachable") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
