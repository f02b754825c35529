"""Where omicsdata keeps things, and how it writes them safely.

``<home>`` is ``$OMICSDATA_HOME`` if set, else the platform cache dir.
Layout::

    <home>/raw/<source>/...              downloaded files, as served
    <home>/stores/<name>/<version>/      built stores
    <home>/locks/                        cross-process lock files

Every write goes to a temporary sibling and is renamed into place, so a
crash (even SIGKILL) never leaves a half-written file or store under its
final name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import filelock
import platformdirs

TMP_MARK = ".tmp-"


def home() -> Path:
    """The cache root: ``$OMICSDATA_HOME`` or the platform cache dir."""
    env = os.environ.get("OMICSDATA_HOME")
    root = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("omicsdata"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def raw_dir(source: str) -> Path:
    """Folder for raw downloaded files of one source (``gdc``, ``hf``, ``url``...)."""
    p = home() / "raw" / source
    p.mkdir(parents=True, exist_ok=True)
    return p


def store_dir(name: str, version: str) -> Path:
    """Final location of a dataset's store (may not exist yet)."""
    return home() / "stores" / name / str(version)


def lock_path(key: str) -> Path:
    d = home() / "locks"
    d.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return d / f"{safe}.lock"


@contextlib.contextmanager
def locked(key: str, timeout: float = -1) -> Iterator[None]:
    """Hold a cross-process lock named ``key`` (blocks until free)."""
    with filelock.FileLock(str(lock_path(key)), timeout=timeout):
        yield


def tmp_sibling(target: Path) -> Path:
    target = Path(target)
    return target.parent / f"{TMP_MARK}{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    Works for files and folders. On error the temporary is removed and
    ``target`` is untouched. An existing ``target`` folder is replaced.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(target)
    try:
        yield tmp
        if target.is_dir() and tmp.is_dir():
            old = tmp_sibling(target)
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def clean_stale_tmp(folder: Path) -> int:
    """Remove leftovers of killed writers (``.tmp-*``) in ``folder``; returns how many."""
    n = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(TMP_MARK):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            n += 1
    return n
