"""Safe extraction of tar archives (``.tar``, ``.tar.gz``) from downloads.

Every member is checked *before* anything is written: an absolute path, a
``..`` component, a symbolic or hard link, or a device/FIFO raises
:class:`~omicsdata.errors.UnsafeArchiveError` naming the archive and member,
and nothing is extracted. Extraction goes to a temporary folder renamed onto
the destination, so a failure leaves no partial tree. Python's own
``filter="data"`` is applied as a second guard.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

from ..errors import DownloadError, UnsafeArchiveError
from ..paths import atomic_path


def check_member(archive: str, m: tarfile.TarInfo) -> None:
    """Raise :class:`UnsafeArchiveError` if member ``m`` could escape the target folder."""
    name = m.name
    p = PurePosixPath(name)
    if name.startswith(("/", "\\")) or p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member '{name}' has an absolute path; refusing to extract")
    if ".." in p.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"{archive}: member '{name}' contains '..'; refusing to extract")
    if m.issym() or m.islnk():
        raise UnsafeArchiveError(f"{archive}: member '{name}' is a link (to '{m.linkname}'); refusing to extract")
    if not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"{archive}: member '{name}' is not a regular file or folder; refusing to extract")


def list_members(path: str | os.PathLike) -> list[str]:
    """Names of the regular files in an archive, after the safety check."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DownloadError(f"{path}: not a readable tar archive ({e})") from None
    for m in members:
        check_member(str(path), m)
    return [m.name for m in members if m.isfile()]


def safe_extract(path: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Extract archive ``path`` into folder ``dest`` (atomically); return the extracted files.

    Raises :class:`UnsafeArchiveError` (nothing written) if any member is unsafe.
    """
    path, dest = Path(path), Path(dest)
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
            for m in members:
                check_member(str(path), m)
            with atomic_path(dest) as tmp:
                tmp.mkdir(parents=True)
                tf.extractall(tmp, members=members, filter="data")
    except (tarfile.TarError, EOFError) as e:
        raise DownloadError(f"{path}: corrupt tar archive ({type(e).__name__}: {e})") from None
    return sorted(dest / m.name for m in members if m.isfile())
