"""Generic resumable HTTP download into the raw cache.

:func:`download` fetches one URL to a final path:

* bytes go to ``<dest>.part`` first; an interrupted transfer (dropped
  connection, timeout, killed process) leaves that partial file, and the next
  attempt asks only for the rest with ``Range: bytes=<have>-`` (a server that
  answers 200 instead of 206 restarts the file);
* connection errors, timeouts, HTTP 429 and 5xx are retried with exponential
  backoff (``Retry-After`` is honoured);
* when complete, the file is checked against the expected ``md5`` /
  ``sha256`` / ``size``; a mismatch deletes the partial file and raises
  :class:`~omicsdata.errors.ChecksumError` (nothing is kept);
* only a verified file is renamed onto ``dest`` (atomic), so a file under
  its final name in the cache is always whole.

:func:`request_json` posts/gets JSON with the same retry policy. Every source
(GDC, plain URLs, the zoo's ``http`` model source) uses these two.

Mirrors: ``$OMICSDATA_HTTP_MIRROR="<upstream-prefix>=<mirror-prefix>[,...]"``
rewrites every URL these functions are given that starts with an upstream
prefix (the longest matching prefix wins) before the request is sent
(:func:`mirror_url`). Expected checksums still apply to the mirrored bytes,
and messages name the original URL and the mirror.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests
import urllib3

from ..errors import CatalogError, ChecksumError, DownloadError

CHUNK = 1 << 20
USER_AGENT = "omicsdata (omicszoo)"
MIRROR_ENV = "OMICSDATA_HTTP_MIRROR"


def mirror_rules(value: str | None = None) -> list[tuple[str, str]]:
    """The ``(upstream_prefix, mirror_prefix)`` pairs of ``$OMICSDATA_HTTP_MIRROR`` (or ``value``).

    Longest upstream prefix first. A malformed entry raises :class:`CatalogError`
    naming the variable and the entry.
    """
    value = os.environ.get(MIRROR_ENV, "") if value is None else value
    rules = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        up, sep, mirror = item.partition("=")
        up, mirror = up.strip(), mirror.strip()
        if not sep or not up or not mirror:
            raise CatalogError(f"${MIRROR_ENV}: entry '{item}' is not '<upstream-prefix>=<mirror-prefix>'")
        for what, p in (("upstream prefix", up), ("mirror prefix", mirror)):
            if "://" not in p:
                raise CatalogError(f"${MIRROR_ENV}: entry '{item}': the {what} '{p}' is not a URL (scheme://...)")
        rules.append((up, mirror))
    return sorted(rules, key=lambda r: -len(r[0]))


def mirror_url(url: str, value: str | None = None) -> str:
    """``url`` rewritten by the first matching ``$OMICSDATA_HTTP_MIRROR`` rule (unchanged if none matches)."""
    for up, mirror in mirror_rules(value):
        if url.startswith(up):
            return mirror + url[len(up):]
    return url


def _via(url: str, real: str) -> str:
    return url if real == url else f"{url} (via mirror {real})"


@dataclass
class RetryPolicy:
    """How often and how patiently to retry.

    ``retries`` extra attempts after the first; waits ``backoff * 2**k``
    seconds (capped at ``max_backoff``) before attempt ``k+1``.
    """

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 60.0

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_backoff)
            except ValueError:
                pass
        return min(self.backoff * (2 ** attempt), self.max_backoff)


DEFAULT_POLICY = RetryPolicy()
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    def __init__(self, msg: str, retry_after: str | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


def session() -> requests.Session:
    """A requests session with the omicsdata user agent."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    return s


def _with_retries(what: str, fn: Callable[[], Any], policy: RetryPolicy, sleep=time.sleep):
    last = None
    for attempt in range(policy.retries + 1):
        try:
            return fn()
        except (_Retryable, requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as e:
            last = e
            if attempt == policy.retries:
                break
            sleep(policy.wait(attempt, getattr(e, "retry_after", None)))
    raise DownloadError(f"{what}: failed after {policy.retries + 1} attempts: {type(last).__name__}: {last}")


def _check_status(r: requests.Response, what: str) -> None:
    if r.status_code in RETRY_STATUS:
        ra = r.headers.get("Retry-After")
        r.close()
        raise _Retryable(f"HTTP {r.status_code}", ra)
    if r.status_code >= 400:
        body = r.text[:300] if r.headers.get("Content-Type", "").startswith(("text", "application/json")) else ""
        r.close()
        raise DownloadError(f"{what}: HTTP {r.status_code} {r.reason}" + (f": {body}" if body else ""))


def request_json(method: str, url: str, *, json: Any = None, params: dict | None = None,
                 policy: RetryPolicy = DEFAULT_POLICY, sess: requests.Session | None = None) -> Any:
    """Send a JSON request with retries; return the decoded JSON body."""
    sess = sess or session()
    real = mirror_url(url)
    what = f"{method} {_via(url, real)}"

    def once():
        r = sess.request(method, real, json=json, params=params, timeout=policy.timeout)
        _check_status(r, what)
        try:
            return r.json()
        except ValueError as e:
            raise DownloadError(f"{what}: response is not JSON ({e}): {r.text[:200]!r}") from None

    return _with_retries(what, once, policy)


def _chunks(r: requests.Response):
    """Body bytes as they arrive (``read1``), so a dropped connection keeps every byte received."""
    raw = r.raw
    if hasattr(raw, "read1"):
        while chunk := raw.read1(CHUNK):
            yield chunk
    else:  # pragma: no cover - urllib3 < 2
        yield from r.iter_content(CHUNK)


def part_path(dest: Path) -> Path:
    """Where the partial bytes of ``dest`` live while it downloads."""
    return dest.with_name(dest.name + ".part")


def _hashers(md5: str | None, sha256: str | None) -> dict:
    out = {}
    if md5:
        out["md5"] = (hashlib.md5(), md5.lower())
    if sha256:
        out["sha256"] = (hashlib.sha256(), sha256.lower())
    return out


def verify_file(path: Path, *, md5: str | None = None, sha256: str | None = None,
                size: int | None = None, name: str | None = None) -> None:
    """Raise :class:`ChecksumError` if ``path`` does not have the expected size/digests."""
    name = name or str(path)
    if size is not None and path.stat().st_size != int(size):
        raise ChecksumError(f"{name}: size {path.stat().st_size} bytes, expected {size}")
    hs = _hashers(md5, sha256)
    if not hs:
        return
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h, _ in hs.values():
                h.update(chunk)
    for algo, (h, want) in hs.items():
        got = h.hexdigest()
        if got != want:
            raise ChecksumError(f"{name}: {algo} {got} does not match the expected {want}; the file was discarded")


def download(url: str, dest: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, method: str = "GET", json: Any = None, resume: bool = True,
             policy: RetryPolicy = DEFAULT_POLICY, sess: requests.Session | None = None,
             name: str | None = None) -> Path:
    """Download ``url`` to ``dest`` with resume, retries and checksum; return ``dest``.

    An existing ``dest`` is trusted only if it passes the size/checksum check
    (cached files are not downloaded again). ``name`` is used in messages
    (defaults to the URL). ``method="POST"`` with ``json=`` is allowed; such
    requests are retried from the start rather than resumed. ``url`` goes
    through :func:`mirror_url` (``$OMICSDATA_HTTP_MIRROR``) first.
    """
    dest = Path(dest)
    real = mirror_url(url)
    name = _via(name or url, real)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            verify_file(dest, md5=md5, sha256=sha256, size=size, name=name)
            return dest
        except ChecksumError:
            dest.unlink()
    part = part_path(dest)
    sess = sess or session()
    can_resume = resume and method.upper() == "GET"
    if not can_resume and part.exists():
        part.unlink()

    def once():
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > int(size):
            part.unlink()
            have = 0
        headers = {}
        if can_resume and have:
            if size is not None and have == int(size):
                return  # already complete; verified below
            headers["Range"] = f"bytes={have}-"
        r = sess.request(method, real, json=json, headers=headers, stream=True, timeout=policy.timeout)
        if r.status_code == 416 and have:  # range past the end: the part is complete (or stale)
            r.close()
            if size is None or have == int(size):
                return
            part.unlink()
            raise _Retryable("HTTP 416 for a stale partial file")
        _check_status(r, f"{method} {name}")
        mode = "ab" if (have and r.status_code == 206) else "wb"
        try:
            with open(part, mode) as fh:
                for chunk in _chunks(r):
                    fh.write(chunk)
        finally:
            r.close()
        expect = r.headers.get("Content-Length")
        got = part.stat().st_size
        if r.status_code == 206:
            total = r.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit() and got < int(total):
                raise _Retryable(f"short read ({got} of {total} bytes)")
        elif expect is not None and expect.isdigit() and got < int(expect):
            raise _Retryable(f"short read ({got} of {expect} bytes)")

    _with_retries(f"download {name}", once, policy)
    try:
        verify_file(part, md5=md5, sha256=sha256, size=size, name=name)
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest
