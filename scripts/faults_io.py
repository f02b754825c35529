"""Fault rows for downloads, archives and raw-file parsing (issue 15), used by ``scripts/fault_suite.py``
and ``tests/test_faults.py``.

Each row is ``(name, callable)``; the callable takes a scratch folder and returns
``(clean_error, nothing_lost, detail)``: ``clean_error`` is True when the fault
ended in an :class:`~omicsdata.errors.OmicsDataError` whose message names the
thing (or, for faults that must be survived, when the operation succeeded),
``nothing_lost`` when no file that existed before is gone or changed and no
partial file sits under a final name. Servers are :mod:`tests.faultserver` on 127.0.0.1.
"""
from __future__ import annotations

import gzip
import io
import sys
import tarfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faultserver import FaultServer  # noqa: E402

from omicsdata.errors import OmicsDataError  # noqa: E402


def outcome(fn, *needles: str):
    """Run ``fn``; ``(clean, message)``: clean when it raised an OmicsDataError containing every needle."""
    try:
        fn()
    except OmicsDataError as e:
        msg = str(e)
        return all(n.lower() in msg.lower() for n in needles), f"{type(e).__name__}: {msg}"
    except Exception as e:  # noqa: BLE001 - a raw exception is exactly what a row reports
        return False, f"RAW {type(e).__name__}: {e}"
    return False, "no error"


def _keep(folder: Path) -> tuple[Path, bytes]:
    """A user's file next to the download, to check that nothing is lost."""
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "users-notes.txt"
    f.write_bytes(b"precious")
    return f, f.read_bytes()


def _policy(**kw):
    from omicsdata.sources.http import RetryPolicy

    base = dict(retries=2, backoff=0.01, max_backoff=0.5, timeout=5.0, deadline=20.0)
    base.update(kw)
    return RetryPolicy(**base)


def _download(url, dest, **kw):
    from omicsdata.sources import http

    policy = kw.pop("policy", None) or _policy()
    return http.download(url, dest, policy=policy, **kw)


def _dl_row(path: str, needles, dest_name="data.tsv", server_kw=None, **kw):
    def row(tmp: Path):
        keep, before = _keep(tmp / "raw")
        dest = tmp / "raw" / dest_name
        with FaultServer(**(server_kw or {})) as s:
            clean, detail = outcome(lambda: _download(f"{s.url}/{path}/{dest_name}", dest, **kw), *needles)
        lost = dest.exists() or keep.read_bytes() != before
        return clean, not lost, detail
    return row


def html_200(tmp):
    """An HTML error page with status 200 where a .tsv.gz is expected."""
    return _dl_row("html", ["HTML page", "Service Temporarily Unavailable"], dest_name="x.tsv.gz")(tmp)


def html_200_md5(tmp):
    """An HTML page where a checksummed plain-text file is expected (sniffing off): the md5 error says what came."""
    return _dl_row("html", ["md5", "HTML page"], md5="0" * 32, sniff_content=False)(tmp)


def truncated(tmp):
    """Full Content-Length, half the body, every attempt: error after retries, partial kept as .part only."""
    return _dl_row("truncated", ["data.tsv", "attempts"])(tmp)


def slow_drip(tmp):
    """One byte a second, 1 s per-read timeout never fires: the 2 s overall deadline must."""
    t0 = time.monotonic()
    clean, kept, detail = _dl_row("drip", ["deadline"], server_kw={"drip_s": 0.5},
                                  policy=_policy(timeout=5.0, deadline=2.0))(tmp)
    took = time.monotonic() - t0
    return clean and took < 10, kept, f"{detail} [{took:.1f} s]"


def no_length(tmp):
    """A body without Content-Length, larger than the cap: stopped at the cap, partial removed."""
    clean, kept, detail = _dl_row("nolength", ["passed", "bytes"], max_bytes=1 << 20)(tmp)
    part = tmp / "raw" / "data.tsv.part"
    return clean, kept and not part.exists(), detail


def over_expected_size(tmp):
    """A body larger than the size the source gave: stopped, nothing under the final name."""
    return _dl_row("nolength", ["expected size"], size=4096)(tmp)


def _retry(kind: str, value: str, n: int = 2):
    def row(tmp: Path):
        from omicsdata.sources import http

        waits = []
        real = http._sleep
        http._sleep = waits.append
        try:
            dest = tmp / "raw" / "data.tsv"
            with FaultServer() as s:
                clean, detail = outcome(lambda: _download(f"{s.url}/{kind}/{n}/{value}/data.tsv", dest,
                                                          policy=_policy(retries=3, max_backoff=2.0)))
                ok = dest.is_file() and dest.read_bytes() == s.payload
        finally:
            http._sleep = real
        bounded = all(0 <= w <= 2.0 for w in waits) and len(waits) == n
        return ok and bounded and detail == "no error", ok, f"waits {waits}; {'' if ok else detail}"
    return row


def redirect_loop(tmp):
    return _dl_row("loop", ["redirect loop"])(tmp)


def file_redirect(tmp):
    return _dl_row("tofile", ["file://"])(tmp)


def _tar(path: Path, members: list[tuple[str, bytes | int]]) -> Path:
    """A tar.gz; a member given as an int is that many zero bytes, written streaming (a gzip bomb)."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            if isinstance(data, int):
                ti.size = data
                tf.addfile(ti, _Zeros(data))
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k

    def readable(self):
        return True


def gzip_bomb(tmp):
    """A tar.gz whose one member inflates to 256 MiB (from ~0.3 MB): stopped at its header, memory bounded."""
    from omicsdata.sources.archive import safe_extract

    tgz = _tar(tmp / "bomb.tar.gz", [("id1/f.tsv", 256 << 20)])
    dest = tmp / "x"
    tracemalloc.start()
    clean, detail = outcome(lambda: safe_extract(tgz, dest, max_member_bytes=16 << 20, max_total_bytes=16 << 20),
                            "f.tsv", "inflate")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return clean and peak < (32 << 20), not dest.exists(), f"{detail} [peak {peak / 2**20:.1f} MiB traced]"


def tar_size_mismatch(tmp):
    """A member whose size differs from the source's file_size: refused, nothing extracted."""
    from omicsdata.sources.archive import safe_extract

    tgz = _tar(tmp / "b.tar.gz", [("id1/a.tsv", b"x" * 100)])
    dest = tmp / "x"
    clean, detail = outcome(lambda: safe_extract(tgz, dest, expected={"id1/a.tsv": 99}), "a.tsv", "expected 99")
    return clean, not dest.exists(), detail


def tar_empty_name(tmp):
    from omicsdata.sources.archive import safe_extract

    tgz = _tar(tmp / "e.tar.gz", [("", b"hello")])
    dest = tmp / "x"
    clean, detail = outcome(lambda: safe_extract(tgz, dest), "empty name")
    return clean, not dest.exists(), detail


def write_long_line_maf(path: Path, n_chars: int) -> Path:
    """A gzipped MAF whose header line is ``n_chars`` long (written streaming)."""
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(b"#version gdc-1.0.0\nHugo_Symbol\tTumor_Sample_Barcode\t")
        block = b"A" * (1 << 20)
        left = n_chars
        while left > 0:
            fh.write(block[:min(left, len(block))])
            left -= len(block)
        fh.write(b"\nTP53\tTCGA-AA-0001-01A\n")
    return path


def maf_long_header(tmp, mib: int = 400):
    """A MAF header line of ``mib`` MiB: a FormatError naming the line, with bounded memory."""
    from omicsdata.formats.maf import read_maf

    p = write_long_line_maf(tmp / "big.maf.gz", mib << 20)
    tracemalloc.start()
    clean, detail = outcome(lambda: read_maf(p), "big.maf.gz", "line 2")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return clean and peak < (64 << 20), p.is_file(), f"{detail} [peak {peak / 2**20:.1f} MiB traced]"


ROWS = [
    ("download: HTML page with status 200", html_200),
    ("download: HTML page, md5 mismatch names it", html_200_md5),
    ("download: truncated body", truncated),
    ("download: slow drip past the deadline", slow_drip),
    ("download: no Content-Length past the cap", no_length),
    ("download: body past the expected size", over_expected_size),
    ("download: 503 + Retry-After: 1 (honoured)", _retry("retry", "1")),
    ("download: 429 + Retry-After: 99999 (bounded)", _retry("429", "99999")),
    ("download: Retry-After: -5 (clamped)", _retry("retry", "-5")),
    ("download: Retry-After: garbage", _retry("retry", "soon%20please")),
    ("download: redirect loop", redirect_loop),
    ("download: redirect to file://", file_redirect),
    ("archive: gzip member inflating past the limit", gzip_bomb),
    ("archive: member size != expected", tar_size_mismatch),
    ("archive: member with an empty name", tar_empty_name),
    ("MAF: 400 MiB header line", maf_long_header),
]
