"""Safe extraction of tar archives (``.tar``, ``.tar.gz``) from downloads.

Every member is checked *before* anything is written: an absolute path, a
``..`` component, a symbolic or hard link, or a device/FIFO raises
:class:`~omicsdata.errors.UnsafeArchiveError` naming the archive and member,
and nothing is extracted. Extraction goes to a temporary folder renamed onto
the destination, so a failure leaves no partial tree. Python's own
``filter="data"`` is applied as a second guard.

Sizes are checked from each member's header as the archive is read, before
its bytes are inflated: a member larger than its expected size (``expected``,
e.g. the GDC's ``file_size``), than ``max_member_bytes``, or members adding up
past ``max_total_bytes`` raise :class:`ArchiveLimitError`; a member with an
empty name is refused. A gzip bomb therefore stops at its header, with memory
bounded by one tar block, not after it has been extracted.
"""
from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import DownloadError, UnsafeArchiveError
from ..paths import atomic_path

DEFAULT_MAX_TOTAL = 64 << 30


class ArchiveLimitError(DownloadError):
    """An archive member is larger than expected or than a limit; nothing was extracted."""


def check_member(archive: str, m: tarfile.TarInfo) -> None:
    """Raise :class:`UnsafeArchiveError` if member ``m`` could escape the target folder."""
    name = m.name
    if not name or not name.strip() or name.strip("/") in ("", "."):
        raise UnsafeArchiveError(f"{archive}: a member has an empty name ({name!r}); refusing to extract")
    p = PurePosixPath(name)
    if name.startswith(("/", "\\")) or p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member '{name}' has an absolute path; refusing to extract")
    if ".." in p.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"{archive}: member '{name}' contains '..'; refusing to extract")
    if m.issym() or m.islnk():
        raise UnsafeArchiveError(f"{archive}: member '{name}' is a link (to '{m.linkname}'); refusing to extract")
    if not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"{archive}: member '{name}' is not a regular file or folder; refusing to extract")


def check_size(archive: str, m: tarfile.TarInfo, total: int, expected: dict | None,
               max_member_bytes: int | None, max_total_bytes: int) -> int:
    """Raise :class:`ArchiveLimitError` if member ``m`` breaks a size limit; return the new running total."""
    if not m.isfile():
        return total
    want = (expected or {}).get(m.name)
    if want is not None and m.size != int(want):
        raise ArchiveLimitError(f"{archive}: member '{m.name}' is {m.size} bytes, expected {int(want)}; "
                                "refusing to extract")
    if want is None and max_member_bytes is not None and m.size > max_member_bytes:
        raise ArchiveLimitError(f"{archive}: member '{m.name}' would inflate to {m.size} bytes, more than the "
                                f"limit of {max_member_bytes}; refusing to extract")
    total += m.size
    if total > max_total_bytes:
        raise ArchiveLimitError(f"{archive}: members inflate past {max_total_bytes} bytes (at '{m.name}'); "
                                "refusing to extract")
    return total


def _members(tf: tarfile.TarFile, archive: str, expected, max_member_bytes, max_total_bytes) -> list:
    """Every member, each checked (safety, size) as soon as its header is read."""
    members, total = [], 0
    while True:
        m = tf.next()
        if m is None:
            return members
        check_member(archive, m)
        total = check_size(archive, m, total, expected, max_member_bytes, max_total_bytes)
        members.append(m)


def list_members(path: str | os.PathLike) -> list[str]:
    """Names of the regular files in an archive, after the safety check."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as tf:
            members = _members(tf, str(path), None, None, DEFAULT_MAX_TOTAL)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DownloadError(f"{path}: not a readable tar archive ({e})") from None
    return [m.name for m in members if m.isfile()]


def safe_extract(path: str | os.PathLike, dest: str | os.PathLike, *, expected: dict[str, int] | None = None,
                 max_member_bytes: int | None = None, max_total_bytes: int = DEFAULT_MAX_TOTAL) -> list[Path]:
    """Extract archive ``path`` into folder ``dest`` (atomically); return the extracted files.

    ``expected`` maps member names to their sizes in bytes; other members may
    be at most ``max_member_bytes``; all together at most ``max_total_bytes``.
    Raises :class:`UnsafeArchiveError` or :class:`ArchiveLimitError` (nothing
    written) if a member is unsafe or too large.
    """
    path, dest = Path(path), Path(dest)
    try:
        with tarfile.open(path, "r:*") as tf:
            members = _members(tf, str(path), expected, max_member_bytes, max_total_bytes)
            with atomic_path(dest) as tmp:
                tmp.mkdir(parents=True)
                tf.extractall(tmp, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise DownloadError(f"{path}: corrupt tar archive ({type(e).__name__}: {e})") from None
    except OSError as e:
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(f"{path}: cannot extract into {dest} ({type(e).__name__}: {e})") from None
    return sorted(dest / m.name for m in members if m.isfile())
