"""Rows of a remote 2-D ``.npy`` file, read with HTTP byte ranges and cached on disk.

The published OmniCellTOSG shards are dense float32 ``.npy`` files of 10,000
rows x 412,039 columns (~16.5 GB each); a build that samples a few thousand
cells needs a few rows of each.  This module

* reads the first bytes of the file and parses the header with numpy's own
  format reader (:func:`parse_header`): shape, dtype, order and the byte
  offset where the data starts;
* turns the wanted rows into few byte ranges (:func:`plan_ranges`: runs of
  adjacent rows become one range, capped in size);
* fetches the ranges through a caller-given ``fetch(start, end) -> bytes``
  (for the Hub: :func:`omicsdata.sources.hf.read_range` on the file's resolved
  URL pinned at one commit, see :func:`open_hub_npy`);
* keeps every fetched row in a cache folder keyed by the file's identity
  (repo, commit, path, etag, size), one file per row named by the sha256 of
  its bytes, written atomically; a later read takes the row from there (after
  re-hashing it) and asks the server only for rows it does not hold.

What cannot be verified: the Hub's etag of an LFS/Xet file is the sha256 of
the *whole* file, which a reader of a few rows never sees.  The commit pins
the content, every answer must carry the expected ``Content-Range`` and total
size, and the cached rows are hashed so a damaged cache is detected, but the
bytes of a range are trusted as the server sent them.
"""
from __future__ import annotations

import io
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import FormatError

HEAD_PROBE = 4096  # bytes read first; a larger header is read with a second request
MAX_RANGE_BYTES = 64 * 2**20  # one request never asks for more (a long run of rows is split)

Fetch = Callable[[int, int], bytes]


@dataclass(frozen=True)
class NpyLayout:
    """Where the rows of a C-ordered 2-D ``.npy`` file lie."""

    shape: tuple[int, int]
    dtype: np.dtype
    offset: int  # byte where row 0 starts

    @property
    def row_bytes(self) -> int:
        return int(self.shape[1]) * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        """Size the file must have: header + data."""
        return self.offset + self.shape[0] * self.row_bytes


def header_length(head: bytes, name: str) -> int:
    """Bytes the header of a ``.npy`` file takes (magic + length field + header), from its first 12 bytes."""
    if len(head) < 10 or head[:6] != b"\x93NUMPY":
        raise FormatError(name, "not a .npy file (no \\x93NUMPY magic at its start)")
    major = head[6]
    if major == 1:
        return 10 + int.from_bytes(head[8:10], "little")
    if major in (2, 3):
        if len(head) < 12:
            raise FormatError(name, "truncated .npy header")
        return 12 + int.from_bytes(head[8:12], "little")
    raise FormatError(name, f".npy format version {major}.{head[7]} is not supported")


def parse_header(head: bytes, name: str) -> NpyLayout:
    """Parse the header of a 2-D, C-ordered, numeric ``.npy`` from its first bytes (numpy's reader).

    ``head`` must hold at least :func:`header_length` bytes.  Raises
    :class:`FormatError` naming ``name`` for anything that is not a 2-D
    C-ordered array of a plain numeric dtype.
    """
    from numpy.lib import format as npf

    need = header_length(head, name)
    if len(head) < need:
        raise FormatError(name, f"header is {need} bytes, only {len(head)} were read")
    fp = io.BytesIO(head[:need])
    try:
        version = npf.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = npf.read_array_header_2_0(fp)
        else:  # 3.0: utf-8 header; numpy has no public reader for it
            shape, fortran, dtype = npf._read_array_header(fp, version)  # noqa: SLF001
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError/SyntaxError on a bad header
        raise FormatError(name, f"unreadable .npy header: {type(e).__name__}: {e}") from e
    dtype = np.dtype(dtype)
    if len(shape) != 2:
        raise FormatError(name, f"expected a 2-D cells x entities array, the header says shape {list(shape)}")
    if fortran:
        raise FormatError(name, "the array is Fortran-ordered; rows are not contiguous, so they cannot be "
                                "read by byte range")
    if dtype.hasobject or dtype.kind not in "biuf":
        raise FormatError(name, f"dtype {dtype} is not a plain numeric type")
    return NpyLayout(shape=(int(shape[0]), int(shape[1])), dtype=dtype, offset=need)


def plan_ranges(rows, row_bytes: int, max_gap: int = 0, max_bytes: int = MAX_RANGE_BYTES) -> list[tuple[int, int]]:
    """Group sorted unique row numbers into runs ``(first, stop)`` read with one request each.

    Rows closer than ``max_gap`` missing rows are joined (the rows between are
    read and dropped; ``0`` reads exactly the wanted rows); a run never spans
    more than ``max_bytes`` (at least one row).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return []
    if (np.diff(rows) <= 0).any():
        raise ValueError("rows must be sorted and unique")
    cap = max(1, max_bytes // max(1, row_bytes))
    out: list[tuple[int, int]] = []
    first = prev = int(rows[0])
    for r in rows[1:].tolist():
        if r - prev - 1 <= max_gap and r + 1 - first <= cap:
            prev = r
            continue
        out.append((first, prev + 1))
        first = prev = r
    out.append((first, prev + 1))
    return out


@dataclass
class ReadStats:
    """What reading cost: requests, bytes asked of the server, rows served from the cache."""

    requests: int = 0
    bytes_fetched: int = 0
    rows_fetched: int = 0
    rows_from_cache: int = 0
    ranges: list = field(default_factory=list)


class RemoteNpy:
    """A 2-D ``.npy`` file read by byte ranges through ``fetch``, rows cached under ``cache_dir``.

    ``name`` names the file in errors; ``size`` is its total size (checked
    against the header); ``identity`` (JSON-able) says which content this is
    and is recorded in ``cache_dir/source.json``: a cache folder is used only
    for the identity it was made for.  Ranges are fetched by up to ``workers``
    threads at once (a shard of 16.5 GB sampled at random is many small ranges).
    """

    def __init__(self, name: str, size: int, fetch: Fetch, cache_dir: str | os.PathLike, identity: dict,
                 max_gap: int = 0, workers: int = 8):
        self.name, self.size, self._fetch = name, int(size), fetch
        self.cache = Path(cache_dir)
        self.identity = dict(identity)
        self.max_gap, self.workers = max_gap, workers
        self.stats = ReadStats()
        self.layout = self._layout()

    # -- header ----------------------------------------------------------------------------
    def _get(self, start: int, end: int) -> bytes:
        return self._count(start, end, self._fetch(start, end))

    def _count(self, start: int, end: int, data: bytes) -> bytes:
        if len(data) != end - start:
            raise FormatError(self.name, f"asked for bytes {start}-{end - 1}, received {len(data)} bytes")
        self.stats.requests += 1
        self.stats.bytes_fetched += len(data)
        self.stats.ranges.append((start, end))
        return data

    def _layout(self) -> NpyLayout:
        src = self.cache / "source.json"
        head = None
        if src.is_file():
            rec = json.loads(src.read_text())
            if rec.get("identity") != self.identity:
                raise FormatError(self.name, f"row cache {self.cache} belongs to {rec.get('identity')}, "
                                             f"not {self.identity}")
            head = bytes.fromhex(rec["header_hex"])
        if head is None:
            head = self._get(0, min(HEAD_PROBE, self.size))
            need = header_length(head, self.name)
            if need > len(head):
                if need > self.size:
                    raise FormatError(self.name, f"header claims {need} bytes, the file has {self.size}")
                head += self._get(len(head), need)
            head = head[:need]
        layout = parse_header(head, self.name)
        if layout.nbytes != self.size:
            raise FormatError(self.name, f"the header says {list(layout.shape)} {layout.dtype} "
                                         f"({layout.nbytes} bytes with the header), the file is {self.size} bytes")
        if not src.is_file():
            self.cache.mkdir(parents=True, exist_ok=True)
            _atomic_write(src, json.dumps({"identity": self.identity, "header_hex": head.hex(),
                                           "shape": list(layout.shape), "dtype": layout.dtype.str,
                                           "offset": layout.offset}, indent=1).encode())
        return layout

    @property
    def shape(self) -> tuple[int, int]:
        return self.layout.shape

    # -- rows ------------------------------------------------------------------------------------
    def _cached_rows(self) -> dict[int, Path]:
        """Row number -> cache file, listed once per read."""
        d = self.cache / "rows"
        out = {}
        for p in d.iterdir() if d.is_dir() else ():
            head = p.name.split(".", 1)[0]
            if p.name.endswith(".bin") and head.isdigit():
                out[int(head)] = p
        return out

    def _cached(self, p: Path | None) -> bytes | None:
        if p is None:
            return None
        data = p.read_bytes()
        if sha256(data).hexdigest() == p.name.split(".")[1] and len(data) == self.layout.row_bytes:
            return data
        p.unlink(missing_ok=True)  # damaged: fetched again
        return None

    def _keep(self, row: int, data: bytes) -> None:
        d = self.cache / "rows"
        d.mkdir(parents=True, exist_ok=True)
        _atomic_write(d / f"{row}.{sha256(data).hexdigest()}.bin", data)

    def read_rows(self, rows) -> np.ndarray:
        """The given rows (any order, repeats allowed) as an array ``[len(rows), n_columns]``."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        n, m = self.layout.shape
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            bad = int(rows[(rows < 0) | (rows >= n)][0])
            raise FormatError(self.name, f"row {bad} asked for, the shard has {n} rows")
        uniq = np.unique(rows)
        rb = self.layout.row_bytes
        blobs: dict[int, bytes] = {}
        missing = []
        have = self._cached_rows()
        for r in uniq.tolist():
            got = self._cached(have.get(r))
            if got is None:
                missing.append(r)
            else:
                blobs[r] = got
        self.stats.rows_from_cache += len(blobs)
        want = set(missing)
        plan = plan_ranges(missing, rb, self.max_gap)

        def one(run):
            start = self.layout.offset + run[0] * rb
            return run, self._fetch(start, start + (run[1] - run[0]) * rb)

        if self.workers > 1 and len(plan) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.workers, len(plan))) as pool:
                results = pool.map(one, plan)
        else:
            results = map(one, plan)
        for (first, stop), data in results:
            self._count(self.layout.offset + first * rb, self.layout.offset + stop * rb, data)
            for r in range(first, stop):
                blob = data[(r - first) * rb:(r - first + 1) * rb]
                if r in want:  # rows inside a joined gap are dropped
                    blobs[r] = blob
                    self._keep(r, blob)
                    self.stats.rows_fetched += 1
        out = np.empty((len(uniq), m), dtype=self.layout.dtype)
        for i, r in enumerate(uniq.tolist()):
            out[i] = np.frombuffer(blobs[r], dtype=self.layout.dtype)
        return out[np.searchsorted(uniq, rows)]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def open_hub_npy(repo_id: str, filename: str, *, revision: str, repo_type: str = "dataset",
                 cache_root: str | os.PathLike | None = None, max_gap: int = 0) -> RemoteNpy:
    """A Hub-hosted ``.npy`` read by range requests on its resolved URL (``omicsdata.sources.hf``).

    Size, etag and commit come from ``hf.file_metadata`` (one HEAD; honours
    ``HF_ENDPOINT``, ``HF_TOKEN``); the row cache lives under
    ``cache_root/<repo>/<commit>/<path>/<etag>/``.  Offline (``HF_HUB_OFFLINE``)
    the identity recorded by an earlier online read of the same commit is
    used, so rows already cached are served and any other row raises
    :class:`~omicsdata.sources.hf.HubOfflineError`.
    """
    from ... import paths
    from ...sources import hf

    root = Path(cache_root) if cache_root else paths.raw_dir("hf-ranges")
    ref = root / "refs" / _safe(repo_id) / _safe(revision) / (_safe(filename) + ".json")
    if hf.offline():
        if not ref.is_file():
            raise hf.HubOfflineError(f"file {filename!r} of {repo_type} repo {repo_id!r} at {revision!r}: offline "
                                     f"mode (HF_HUB_OFFLINE) is on and no earlier read of it is recorded in {root}")
        meta = json.loads(ref.read_text())
    else:
        meta = hf.file_metadata(repo_id, filename, repo_type=repo_type, revision=revision)
        meta = {k: meta[k] for k in ("url", "etag", "size", "commit")}
        ref.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(ref, json.dumps(meta, indent=1).encode())
    identity = {"repo_id": repo_id, "repo_type": repo_type, "path": filename, "commit": meta["commit"],
                "etag": meta["etag"], "size": meta["size"]}
    where = f"file {filename!r} of {repo_type} repo {repo_id!r} at {meta['commit']}"

    def fetch(start: int, end: int) -> bytes:
        return hf.read_range(meta["url"], start, end, size=meta["size"], where=where)

    cache = root / _safe(repo_id) / meta["commit"] / _safe(filename) / _safe(str(meta["etag"]))
    npy = RemoteNpy(filename, meta["size"], fetch, cache, identity, max_gap=max_gap)
    npy.source = meta  # what was read: url, etag, size, commit
    return npy
