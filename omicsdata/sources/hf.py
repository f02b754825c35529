"""The one place omicsdata talks to the Hugging Face Hub (through ``huggingface_hub``).

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and the cache
location once, at import time.  This module reads them at *call* time and
passes them explicitly, so tests (and users) can change them in-process:

* endpoint: ``$HF_ENDPOINT`` (else huggingface_hub's default public endpoint);
* offline: ``$HF_HUB_OFFLINE`` true -> ``local_files_only=True`` (served from cache or fails);
* cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``
  (``~/.cache/huggingface/hub``).

Every failure is an :class:`~omicsdata.errors.DownloadError` (or subclass) whose
message names the repo, the revision and the file.  There is one retry layer
for Hub API calls and downloads: huggingface_hub's own (this module adds none).
Before a call, one TCP connect to the endpoint (``hf_env.PROBE_TIMEOUT`` s; skipped
behind a proxy) tells an unreachable Hub apart: then files are served from the
cache as with ``HF_HUB_OFFLINE``, or one :class:`HubOfflineError` naming
``HF_HUB_OFFLINE`` comes back in seconds instead of after minutes of retries.
``OMICSDATA_OFFLINE`` (:mod:`.offline`) acts like ``HF_HUB_OFFLINE`` here.
Only :func:`read_range` (a raw range read, not a huggingface_hub call) retries.

Xet is never used against a server that does not advertise it (no ``X-Xet-Hash``
header); nothing here forces it on or off.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from ..errors import ChecksumError, DownloadError
from ..hashing import sha256_file
from .hf_env import (  # noqa: F401 - re-exported: hf.endpoint(), hf.offline(), hf.cache_dir(), ...
    _offline_why,
    _token,
    _unreachable_hint,
    cache_dir,
    endpoint,
    offline,
    unreachable,
)
from .offline import OfflineError

log = logging.getLogger(__name__)

RETRIES = 3  # read_range only: extra attempts after the first, for transient errors
BACKOFF = 0.5  # seconds; doubles each attempt
MAX_BACKOFF = 8.0
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}

T = TypeVar("T")


class HubNotFoundError(DownloadError):
    """The repo, revision or file does not exist on the Hub (not retried).

    ``what`` is ``"repo"``, ``"revision"`` or ``"file"``.
    """

    def __init__(self, message: str, *, what: str, repo_id: str, revision: str | None, filename: str | None):
        super().__init__(message)
        self.what = what
        self.repo_id = repo_id
        self.revision = revision
        self.filename = filename


class HubOfflineError(OfflineError):
    """Offline (``HF_HUB_OFFLINE`` / ``OMICSDATA_OFFLINE``) or unreachable, and not in the local cache."""


def _check_repo_type(repo_type: str) -> str:
    if repo_type not in ("model", "dataset"):
        raise ValueError(f"repo_type must be 'model' or 'dataset', not {repo_type!r}")
    return repo_type


def _where(repo_id: str, repo_type: str, revision: str | None, filename: str | None = None) -> str:
    s = f"{repo_type} repo {repo_id!r} at revision {revision or 'main'!r}"
    return f"file {filename!r} of {s}" if filename else s


def _local_only(repo_id: str, repo_type: str, revision: str | None, filename: str | None = None) -> bool:
    """True when only the cache may be used: offline, or the endpoint is unreachable (logged once per call)."""
    if offline():
        return True
    why = unreachable()
    if why:
        log.info("%s: %s; using the local cache only", _where(repo_id, repo_type, revision, filename), why)
        return True
    return False


# -- error mapping --------------------------------------------------------------------------
def _wrap(exc: BaseException, repo_id: str, repo_type: str, revision: str | None,
          filename: str | None) -> DownloadError:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = _where(repo_id, repo_type, revision, filename)
    if isinstance(exc, GatedRepoError):
        return DownloadError(f"{where}: the repo is gated; request access and set HF_TOKEN ({exc})")
    if isinstance(exc, RevisionNotFoundError):
        return HubNotFoundError(f"{where}: revision {revision!r} not found in {repo_type} repo {repo_id!r}",
                                what="revision", repo_id=repo_id, revision=revision, filename=filename)
    if isinstance(exc, RepositoryNotFoundError):
        return HubNotFoundError(f"{where}: {repo_type} repo {repo_id!r} not found (or private) at {endpoint()}",
                                what="repo", repo_id=repo_id, revision=revision, filename=filename)
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        # LocalEntryNotFoundError subclasses EntryNotFoundError: test it before the remote one.
        cause = exc.__cause__
        if offline():
            why, hint = _offline_why(), ""
        elif isinstance(cause, HfHubHTTPError) and getattr(cause, "response", None) is not None:
            why, hint = f"the Hub at {endpoint()} answered HTTP {cause.response.status_code}", ""
        else:
            why, hint = unreachable() or f"the Hub at {endpoint()} could not be reached", _unreachable_hint()
        return HubOfflineError(f"{where}: {why} and it is not in the local cache {cache_dir()}{hint}")
    if isinstance(exc, EntryNotFoundError):
        return HubNotFoundError(f"{where}: file {filename!r} not found in {repo_type} repo {repo_id!r} "
                                f"at revision {revision or 'main'!r}",
                                what="file", repo_id=repo_id, revision=revision, filename=filename)
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return DownloadError(f"{where}: HTTP {status} from {endpoint()}: {str(exc).splitlines()[0]}")
    return DownloadError(f"{where}: {type(exc).__name__}: {exc}")


def _call(fn: Callable[[], T], repo_id: str, repo_type: str, revision: str | None,
          filename: str | None = None) -> T:
    """Run one huggingface_hub call (it retries transient errors itself); map failures to DownloadError."""
    try:
        return fn()
    except DownloadError:
        raise
    except Exception as exc:  # noqa: BLE001 - everything leaves as DownloadError
        raise _wrap(exc, repo_id, repo_type, revision, filename) from exc


# -- public API --------------------------------------------------------------------------
def _discard_cached(path: Path) -> None:
    """Remove a cached file and the blob it links to, so it is not reused."""
    try:
        blob = path.resolve() if path.is_symlink() else None
        path.unlink(missing_ok=True)
        if blob is not None:
            blob.unlink(missing_ok=True)
    except OSError as e:  # pragma: no cover
        log.warning("could not remove bad file %s: %s", path, e)


_hub_cache = cache_dir  # the module default, for functions whose ``cache_dir`` argument shadows it


def _opts(cache_dir, token, local_files_only: bool, repo_id: str, repo_type: str, rev: str,
          filename: str | None) -> dict:
    """huggingface_hub keyword arguments: the caller's, else this module's call-time defaults."""
    local = bool(local_files_only) or _local_only(repo_id, repo_type, rev, filename)
    return {"cache_dir": str(cache_dir or _hub_cache()), "endpoint": endpoint(), "local_files_only": local,
            "token": token if token is not None else _token()}


def download_file(repo_id: str, filename: str, *, repo_type: str = "dataset", revision: str | None = None,
                  sha256: str | None = None, token: str | bool | None = None, cache_dir=None,
                  local_files_only: bool = False, force_download: bool = False) -> Path:
    """Download one file of a Hub repo into the HF cache and return its local path.

    ``revision`` is a branch, tag or commit sha (pin a sha for reproducibility;
    ``None`` means ``main``).  With ``sha256``, the file is verified; a mismatch
    removes it from the cache and raises :class:`ChecksumError` naming it.
    ``token``, ``cache_dir``, ``local_files_only`` and ``force_download`` are
    passed to ``huggingface_hub.hf_hub_download`` as they are.
    """
    from huggingface_hub import hf_hub_download

    _check_repo_type(repo_type)
    rev = revision or "main"
    kw = _opts(cache_dir, token, local_files_only, repo_id, repo_type, rev, filename)

    def fetch() -> Path:
        return Path(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=rev,
                                    force_download=force_download, **kw))

    path = _call(fetch, repo_id, repo_type, rev, filename)
    if sha256 is not None:
        got = sha256_file(path)
        if got.lower() != sha256.lower():
            _discard_cached(path)
            raise ChecksumError(
                f"{_where(repo_id, repo_type, rev, filename)}: sha256 is {got}, expected {sha256.lower()}; "
                "the bad file was removed from the cache"
            )
    return path


def snapshot(repo_id: str, *, repo_type: str = "dataset", revision: str | None = None,
             allow_patterns: str | Iterable[str] | None = None,
             ignore_patterns: str | Iterable[str] | None = None, token: str | bool | None = None,
             cache_dir=None, local_files_only: bool = False, force_download: bool = False) -> Path:
    """Download (the matching files of) a repo at ``revision``; returns the snapshot folder.

    ``token``, ``cache_dir``, ``local_files_only``, ``force_download`` go to ``snapshot_download``.
    """
    from huggingface_hub import snapshot_download

    _check_repo_type(repo_type)
    rev = revision or "main"
    ap = [allow_patterns] if isinstance(allow_patterns, str) else (list(allow_patterns) if allow_patterns else None)
    ip = [ignore_patterns] if isinstance(ignore_patterns, str) else (list(ignore_patterns) if ignore_patterns else None)
    what = f"patterns {ap}" if ap else None
    kw = _opts(cache_dir, token, local_files_only, repo_id, repo_type, rev, what)

    def fetch() -> Path:
        return Path(snapshot_download(repo_id, repo_type=repo_type, revision=rev, allow_patterns=ap,
                                      ignore_patterns=ip, force_download=force_download, **kw))

    return _call(fetch, repo_id, repo_type, rev, what)


def _cached_files(repo_id: str, repo_type: str, revision: str, cache_dir=None) -> list[str] | None:
    from huggingface_hub.file_download import repo_folder_name

    folder = Path(cache_dir or _hub_cache()) / repo_folder_name(repo_id=repo_id, repo_type=repo_type)
    sha = revision
    ref = folder / "refs" / revision
    if ref.is_file():
        sha = ref.read_text().strip()
    snap = folder / "snapshots" / sha
    if not snap.is_dir():
        return None
    return sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file() or p.is_symlink())


def list_files(repo_id: str, *, repo_type: str = "dataset", revision: str | None = None,
               token: str | bool | None = None, cache_dir=None, local_files_only: bool = False) -> list[str]:
    """All file paths of a repo at ``revision`` (sorted).

    Offline (or with the endpoint unreachable, or ``local_files_only``), lists
    what the local cache holds for that revision (may be partial).
    """
    from huggingface_hub import HfApi

    _check_repo_type(repo_type)
    rev = revision or "main"
    why = (_offline_why() if offline() else "local_files_only=True" if local_files_only else unreachable())
    if why:
        files = _cached_files(repo_id, repo_type, rev, cache_dir)
        if files is None:
            hint = "" if offline() or local_files_only else _unreachable_hint()
            raise HubOfflineError(f"{_where(repo_id, repo_type, rev)}: {why} and no snapshot of it is in the "
                                  f"local cache {cache_dir or _hub_cache()}{hint}")
        return files

    def fetch() -> list[str]:
        api = HfApi(endpoint=endpoint(), token=token if token is not None else _token())
        return sorted(api.list_repo_files(repo_id, repo_type=repo_type, revision=rev))

    return _call(fetch, repo_id, repo_type, rev)


def resolve_revision(repo_id: str, *, repo_type: str = "dataset", revision: str | None = None) -> str:
    """The commit sha a branch/tag/sha currently points to on the Hub."""
    from huggingface_hub import HfApi

    _check_repo_type(repo_type)
    rev = revision or "main"
    why = _offline_why() if offline() else unreachable()
    if why:
        raise HubOfflineError(f"{_where(repo_id, repo_type, rev)}: {why}; the revision cannot be resolved"
                              + ("" if offline() else _unreachable_hint()))

    def fetch() -> str:
        api = HfApi(endpoint=endpoint(), token=_token())
        return api.repo_info(repo_id, repo_type=repo_type, revision=rev).sha

    return _call(fetch, repo_id, repo_type, rev)


def upload_folder(folder: str | os.PathLike, repo_id: str, *, repo_type: str = "dataset",
                  revision: str | None = None, commit_message: str = "Upload with omicsdata",
                  allow_patterns: str | Iterable[str] | None = None, create: bool = True,
                  private: bool | None = None, token: str | None = None, create_pr: bool = False) -> str:
    """Push a local folder to a Hub repo (creating it if ``create``); returns the new commit sha.

    ``revision`` is the branch to commit to (``push_to_hub(branch=...)``); with
    ``create_pr`` the commit is opened as a pull request instead (huggingface_hub's
    ``create_pr``). Offline (``HF_HUB_OFFLINE`` / ``OMICSDATA_OFFLINE``) it is refused.
    """
    from huggingface_hub import HfApi

    _check_repo_type(repo_type)
    rev = revision or "main"
    if offline():
        raise HubOfflineError(f"{_where(repo_id, repo_type, rev, str(folder))}: {_offline_why()}; nothing is uploaded")
    api = HfApi(endpoint=endpoint(), token=token or _token())
    try:
        if create:
            api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if rev != "main" and not create_pr:
            api.create_branch(repo_id, repo_type=repo_type, branch=rev, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, revision=rev,
                                 commit_message=commit_message, allow_patterns=allow_patterns, create_pr=create_pr)
    except Exception as exc:  # noqa: BLE001
        raise _wrap(exc, repo_id, repo_type, rev, str(folder)) from exc
    return info.oid


# -- byte ranges of one file (HTTP Range on resolved URLs) ---------------------------------
def file_metadata(repo_id: str, filename: str, *, repo_type: str = "dataset", revision: str | None = None) -> dict:
    """Size, etag and commit of one file, from one HEAD on its resolved URL (no body is read).

    Returns ``{"url", "etag", "size", "commit", "location"}``: ``url`` is the
    ``hf_hub_url`` of the file pinned at ``commit`` (so every later range read
    sees the same bytes), ``etag`` is the Hub's (the sha256 of the content for
    LFS/Xet files, the git blob sha1 otherwise).  Offline (``HF_HUB_OFFLINE``)
    this raises :class:`HubOfflineError`: callers keep their own record.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    _check_repo_type(repo_type)
    rev = revision or "main"
    if offline():
        raise HubOfflineError(f"{_where(repo_id, repo_type, rev, filename)}: {_offline_why()}; "
                              "its size and etag cannot be asked for")

    def fetch():
        url = hf_hub_url(repo_id, filename, repo_type=repo_type, revision=rev, endpoint=endpoint())
        return get_hf_file_metadata(url, token=_token(), endpoint=endpoint())

    meta = _call(fetch, repo_id, repo_type, rev, filename)
    if meta.size is None or meta.commit_hash is None:
        raise DownloadError(f"{_where(repo_id, repo_type, rev, filename)}: the Hub at {endpoint()} did not send "
                            f"the file size and commit (size={meta.size}, commit={meta.commit_hash})")
    url = hf_hub_url(repo_id, filename, repo_type=repo_type, revision=meta.commit_hash, endpoint=endpoint())
    return {"url": url, "etag": meta.etag, "size": int(meta.size), "commit": meta.commit_hash,
            "location": meta.location}


class _Transient(Exception):
    """A range read that may succeed when tried again (5xx, broken body)."""


def read_range(url: str, start: int, end: int, *, size: int | None = None, where: str | None = None,
               sleep=time.sleep) -> bytes:
    """Bytes ``[start, end)`` of a resolved Hub URL, with one ``Range`` request (redirects followed).

    The answer must be ``206`` with a ``Content-Range`` naming exactly that
    span (and, given ``size``, that total size) and exactly that many bytes;
    anything else is a :class:`~omicsdata.errors.DownloadError` naming ``where`` (a server that
    ignores ``Range`` is refused before its body is read).  Transient failures
    (408/429/5xx, connection errors, short bodies) are retried ``RETRIES`` times.
    """
    import re as _re

    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session

    where = where or url
    if not 0 <= start < end:
        raise ValueError(f"bad byte range [{start}, {end})")
    if offline():
        raise HubOfflineError(f"{where}: {_offline_why()} and bytes {start}-{end - 1} "
                              "are not in the local cache")
    headers = dict(build_hf_headers(token=_token()))
    headers["Range"] = f"bytes={start}-{end - 1}"
    headers["Accept-Encoding"] = "identity"
    attempt = 0
    while True:
        try:
            with get_session().stream("GET", url, headers=headers, follow_redirects=True, timeout=60) as r:
                if r.status_code in _RETRY_STATUS:
                    raise _Transient(f"HTTP {r.status_code}")
                if r.status_code == 404:
                    raise HubNotFoundError(f"{where}: not found (HTTP 404)", what="file", repo_id="", revision=None,
                                           filename=where)
                if r.status_code != 206:
                    raise DownloadError(f"{where}: asked for bytes {start}-{end - 1}, the server answered HTTP "
                                        f"{r.status_code} (not 206 Partial Content); a server that ignores Range "
                                        "is not read whole")
                cr = r.headers.get("Content-Range", "")
                m = _re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", cr.strip())
                if not m or int(m[1]) != start or int(m[2]) != end - 1:
                    raise DownloadError(f"{where}: asked for bytes {start}-{end - 1}, got Content-Range {cr!r}")
                if size is not None and m[3] != "*" and int(m[3]) != size:
                    raise DownloadError(f"{where}: the file is now {m[3]} bytes, expected {size}; it changed "
                                        "since its size was read")
                body = r.read()
            if len(body) != end - start:
                raise _Transient(f"short body: {len(body)} of {end - start} bytes")
            return body
        except DownloadError:
            raise
        except (_Transient, httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError) as exc:
            if attempt >= RETRIES:
                raise DownloadError(f"{where}: bytes {start}-{end - 1}: {exc} (after {RETRIES + 1} tries)") from exc
            wait = min(BACKOFF * (2 ** attempt), MAX_BACKOFF)
            log.warning("%s: bytes %d-%d: %s; retrying in %.1fs", where, start, end - 1, exc, wait)
            attempt += 1
            sleep(wait)
