"""File digests (sha256 for stores and checkpoints, md5 for the GDC API)."""
from __future__ import annotations

import hashlib
from pathlib import Path

_BUF = 1 << 20


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(_BUF):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def md5_file(path: str | Path) -> str:
    return file_digest(path, "md5")
