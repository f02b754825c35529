"""What a downloaded file's first bytes say it is.

A server that answers ``200 OK`` with an HTML error or login page where a data
file was expected would otherwise put that page into the raw cache. Downloads
read the first bytes of the finished file (:func:`check_head`) and refuse an
HTML page when the destination is not itself HTML, and a file whose name
promises a binary format (``.gz``, ``.zip``, ``.parquet``, ``.h5`` ...) without
that format's magic bytes. Messages say what arrived (:func:`describe`).
"""
from __future__ import annotations

import re

HEAD_BYTES = 512

#: file-name suffix -> magic bytes the file must start with
MAGIC = {
    ".gz": b"\x1f\x8b", ".tgz": b"\x1f\x8b", ".zip": b"PK", ".xlsx": b"PK", ".parquet": b"PAR1",
    ".h5": b"\x89HDF", ".h5ad": b"\x89HDF", ".npy": b"\x93NUMPY", ".bz2": b"BZh",
}
_HTML = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<title|<!--)", re.IGNORECASE)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def looks_like_html(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes) starts like an HTML document."""
    return bool(_HTML.match(head.lstrip(b"\xef\xbb\xbf")))


def describe(head: bytes) -> str:
    """A short human description of what ``head`` (a file's first bytes) is."""
    if not head:
        return "an empty body"
    if looks_like_html(head):
        m = _TITLE.search(head)
        title = m.group(1).decode("utf-8", "replace").strip()[:80] if m else ""
        return "an HTML page" + (f" titled '{title}'" if title else "")
    for suffix, magic in (("gzip", b"\x1f\x8b"), ("zip", b"PK\x03\x04"), ("HDF5", b"\x89HDF")):
        if head.startswith(magic):
            return f"{suffix} data"
    if head.lstrip()[:1] in (b"{", b"["):
        return f"JSON-like text starting {head[:60]!r}"
    return f"bytes starting {head[:40]!r}"


def check_head(name: str, dest_name: str, head: bytes) -> str | None:
    """Why ``head`` cannot be the file ``dest_name`` (None when it can)."""
    lower = dest_name.lower()
    if not lower.endswith((".html", ".htm")) and looks_like_html(head):
        return f"{name}: the server sent {describe(head)} instead of the data file '{dest_name}'"
    for suffix, magic in MAGIC.items():
        if lower.endswith(suffix) and not head.startswith(magic):
            return (f"{name}: '{dest_name}' should be {suffix} data (starting {magic!r}) "
                    f"but the server sent {describe(head)}")
    return None
