"""Where omicsdata keeps things, and how it writes them safely.

``<home>`` is ``$OMICSDATA_HOME`` if set, else the platform cache dir.
Layout::

    <home>/raw/<source>/...              downloaded files, as served
    <home>/stores/<name>/<version>/      built stores (default builder options)
    <home>/stores/<name>/<version>-<h>/  built stores with other options (``h``: hash of the options)
    <home>/locks/                        cross-process lock files (+ ``.owner``: the holder's pid)

Every write goes to a temporary sibling ``.tmp-<name>-<pid>-<hex>`` and is
renamed into place, so a crash (even SIGKILL) never leaves a half-written
file or store under its final name. A temporary is removed only when the
process named in it is gone (:func:`clean_stale_tmp`); replacing a folder
parks the old one as ``.tmp-old-<name>-<pid>-<hex>`` between two renames,
and :func:`recover` puts it back when the writer died in between.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator

import filelock
import platformdirs

from .errors import OmicsDataError, StoreError

log = logging.getLogger(__name__)

TMP_MARK = ".tmp-"
OLD_MARK = ".tmp-old-"
LOCK_NOTICE_S = 5.0  # after this long waiting for a lock, say who holds it (logging)


def home() -> Path:
    """The cache root: ``$OMICSDATA_HOME`` or the platform cache dir (created when missing)."""
    env = os.environ.get("OMICSDATA_HOME")
    root = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("omicsdata"))
    if not root.is_dir():  # no write on the read path when it exists (read-only caches)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the omicsdata cache {root}: {e.strerror or e}; "
                             "set OMICSDATA_HOME to a writable folder") from None
    return root


def raw_dir(source: str) -> Path:
    """Folder for raw downloaded files of one source (``gdc``, ``hf``, ``url``...)."""
    p = home() / "raw" / safe_component(source, "source")
    p.mkdir(parents=True, exist_ok=True)
    return p


def safe_component(value, what: str) -> str:
    """``value`` as a string when it is one plain path component, else a :class:`StoreError`.

    Refuses empty names, ``.``/``..``, separators (``/``, ``\\``), absolute
    paths, NUL and leading dots (hidden/temporary names), so a dataset name or
    version can never point outside its cache folder.
    """
    s = str(value)
    bad = (not s or s in (".", "..") or "/" in s or "\\" in s or "\x00" in s or s.startswith(".")
           or os.path.isabs(s) or (os.altsep and os.altsep in s))
    if bad:
        raise StoreError(f"{what} {s!r} is not a plain folder name (no '/', '\\', '..', absolute paths or "
                         "leading '.'); it names a folder of the omicsdata cache")
    return s


def normalise_options(options: dict | None) -> dict:
    """Builder options as plain JSON types (numpy integers -> int, tuples -> lists, keys sorted)."""
    from .storage.manifest import jsonable

    return json.loads(json.dumps(jsonable(dict(options or {})), sort_keys=True))


def options_slot(options: dict | None) -> str:
    """``""`` for the default (no) options, else ``-<8 hex>``: a short hash of the normalised options."""
    norm = normalise_options(options)
    if not norm:
        return ""
    return "-" + hashlib.sha256(json.dumps(norm, sort_keys=True).encode()).hexdigest()[:8]


def store_dir(name: str, version: str, options: dict | None = None) -> Path:
    """Final location of a dataset's store (may not exist yet): one folder per (name, version, options)."""
    name = safe_component(name, "dataset name")
    version = safe_component(version, f"dataset '{name}': version")
    return home() / "stores" / name / f"{version}{options_slot(options)}"


def lock_path(key: str) -> Path:
    """The lock file of ``key`` under ``<home>/locks/`` (created with its folder)."""
    d = home() / "locks"
    d.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return d / f"{safe}.lock"


def _lock_timeout(timeout: float | None) -> float:
    if timeout is not None and timeout >= 0:
        return float(timeout)
    env = os.environ.get("OMICSDATA_LOCK_TIMEOUT", "").strip()
    if not env:
        return -1.0
    try:
        return float(env)
    except ValueError:
        raise StoreError(f"OMICSDATA_LOCK_TIMEOUT={env!r} is not a number of seconds") from None


def lock_holder(lock_file: Path) -> str:
    """The pid written by the current holder of ``lock_file`` (``"unknown"`` when not recorded)."""
    try:
        return Path(str(lock_file) + ".owner").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def locked(key: str, timeout: float | None = None, notice_s: float | None = None) -> Iterator[None]:
    """Hold a cross-process lock named ``key``.

    Waits until free; after ``notice_s`` (default :data:`LOCK_NOTICE_S`) a
    warning names the lock file and the holder's pid, and the wait goes on up
    to ``timeout`` seconds (default ``$OMICSDATA_LOCK_TIMEOUT``; unset: no
    limit), after which a :class:`StoreError` names the lock file and holder.
    """
    path = lock_path(key)
    total = _lock_timeout(timeout)
    notice = LOCK_NOTICE_S if notice_s is None else float(notice_s)
    lock = filelock.FileLock(str(path))
    t0 = time.monotonic()
    first = notice if total < 0 else min(notice, total)
    try:
        lock.acquire(timeout=first)
    except filelock.Timeout:
        holder = lock_holder(path)
        log.warning("waiting for %s (held by pid %s) for %.0f s; another omicsdata process is building or "
                    "writing this; set OMICSDATA_LOCK_TIMEOUT to give up after some seconds", path, holder,
                    time.monotonic() - t0)
        rest = -1 if total < 0 else max(0.0, total - (time.monotonic() - t0))
        try:
            lock.acquire(timeout=rest)
        except filelock.Timeout:
            raise StoreError(f"gave up after {time.monotonic() - t0:.0f} s waiting for lock {path} held by pid "
                             f"{lock_holder(path)} (OMICSDATA_LOCK_TIMEOUT); if that process hangs, stop it") from None
    try:
        with contextlib.suppress(OSError):
            Path(str(path) + ".owner").write_text(str(os.getpid()))
        yield
    finally:
        lock.release()


def tmp_sibling(target: Path, mark: str = TMP_MARK) -> Path:
    """A fresh temporary name next to ``target``: ``<mark><name>-<pid>-<8 hex>``."""
    target = Path(target)
    return target.parent / f"{mark}{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def tmp_owner(name: str) -> int | None:
    """The pid recorded in a temporary name (``.tmp-...-<pid>-<8 hex>``), or None when it has none."""
    parts = name.split("-")
    if len(parts) >= 3 and len(parts[-1]) == 8 and parts[-2].isdigit():
        return int(parts[-2])
    return None


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    Works for files and folders. On error (a full disk included) the
    temporary is removed and ``target`` is untouched. An existing ``target``
    folder is replaced: parked under ``.tmp-old-...`` , the new one renamed in,
    the old one deleted; a kill between the two renames leaves the old folder
    for :func:`recover`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(target)
    try:
        yield tmp
        if target.is_dir() and tmp.is_dir():
            old = tmp_sibling(target, OLD_MARK)
            os.rename(target, old)
            try:
                _between_renames()
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)
        raise


def _between_renames() -> None:
    """Test hook: ``$OMICSDATA_TEST_PUBLISH_PAUSE`` seconds between the two renames of a replace."""
    pause = os.environ.get("OMICSDATA_TEST_PUBLISH_PAUSE")
    if pause:
        time.sleep(float(pause))


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file renamed into place."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def recover(target: str | os.PathLike) -> bool:
    """Put back the folder a writer parked as ``.tmp-old-<name>-<pid>-...`` when it died between the
    two renames of a replace (``target`` missing, that pid gone). Returns True when restored."""
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return False
    prefix = f"{OLD_MARK}{target.name}-"
    parked = [p for p in target.parent.iterdir() if p.name.startswith(prefix)
              and tmp_owner(p.name) is not None and p.name[len(prefix):].count("-") == 1
              and not pid_alive(tmp_owner(p.name))]
    if not parked:
        return False
    best = max(parked, key=lambda p: p.stat().st_mtime)
    try:
        os.rename(best, target)
    except OSError as e:
        log.warning("could not restore %s from %s: %s", target, best, e)
        return False
    log.warning("restored %s from %s (its writer died while replacing it)", target, best.name)
    return True


def clean_stale_tmp(folder: Path) -> int:
    """Remove leftovers of dead writers (``.tmp-*`` whose pid is gone) in ``folder``; returns how many.

    A temporary whose writer is alive (or whose name records no pid) is kept,
    so another build or ``write_store`` in progress is never disturbed.
    """
    n = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if not p.name.startswith(TMP_MARK):
            continue
        pid = tmp_owner(p.name)
        if pid is None or pid_alive(pid):
            continue
        _remove(p)
        n += 1
    return n


def is_disk_error(e: BaseException) -> bool:
    """True for the OSErrors of a full, read-only or forbidden disk (ENOSPC, EDQUOT, EROFS, EACCES, EPERM)."""
    return isinstance(e, OSError) and e.errno in {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def disk_error(e: OSError, where, doing: str) -> OmicsDataError:
    """A :class:`StoreError` for a disk failure ``e`` while ``doing`` at ``where``, with what to do."""
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied"}.get(e.errno, e.strerror or str(e))
    return StoreError(f"{doing} {where}: {what} ({e.filename or where}); nothing was published and any previous "
                      "store is intact; free space or set OMICSDATA_HOME to a writable folder")
