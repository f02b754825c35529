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

Limits (each failure is a :class:`~omicsdata.errors.DownloadError` naming the file):

* an overall deadline per file (``RetryPolicy.deadline``, ``$OMICSDATA_DOWNLOAD_DEADLINE``
  seconds, retries and waits included), not only a per-read timeout, so a
  server dripping a byte a second cannot hold a build forever;
* a size cap: the expected ``size`` when the source gives one, else
  ``$OMICSDATA_DOWNLOAD_MAX_BYTES`` (``max_bytes=``), so a body without
  ``Content-Length`` cannot fill the disk;
* content sniffing (:mod:`.sniff`): an HTML page served with status 200 where a
  data file is expected is refused, and the message says what arrived;
* ``Retry-After`` is clamped to ``[0, max_backoff]`` (garbage or negative values
  fall back to the backoff); redirect loops and redirects to ``file://`` or any
  scheme other than http(s) are refused.

Mirrors: ``$OMICSDATA_HTTP_MIRROR="<upstream-prefix>=<mirror-prefix>[,...]"``
rewrites every URL these functions are given that starts with an upstream
prefix (the longest matching prefix wins) before the request is sent
(:func:`mirror_url`). Expected checksums still apply to the mirrored bytes,
and messages name the original URL and the mirror.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import requests
import urllib3

from ..errors import CatalogError, ChecksumError, DownloadError
from . import sniff
from .mirror import MIRROR_ENV, _via, mirror_rules, mirror_url  # noqa: F401 - re-exported
from .offline import refuse_if_offline

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "omicsdata (omicszoo)"
DEADLINE_ENV = "OMICSDATA_DOWNLOAD_DEADLINE"
MAX_BYTES_ENV = "OMICSDATA_DOWNLOAD_MAX_BYTES"
DEFAULT_DEADLINE = 6 * 3600.0  # seconds per file, retries included
DEFAULT_MAX_BYTES = 64 << 30  # cap of a body whose size the source does not give
MAX_REDIRECTS = 10
_sleep = time.sleep  # tests replace this to record waits


def _env_number(var: str, default: float) -> float:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise CatalogError(f"${var}: '{raw}' is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise CatalogError(f"${var}: '{raw}' must be a positive number")
    return v


def default_max_bytes() -> int:
    """``$OMICSDATA_DOWNLOAD_MAX_BYTES`` or 64 GiB: the cap of a body whose size is not known."""
    return int(_env_number(MAX_BYTES_ENV, DEFAULT_MAX_BYTES))


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
    #: overall seconds per file or request, retries and waits included (None: ``$OMICSDATA_DOWNLOAD_DEADLINE``
    #: or 6 hours)
    deadline: float | None = None

    def total_deadline(self) -> float:
        """The overall deadline in seconds (the field, else the environment, else the default)."""
        return float(self.deadline) if self.deadline is not None else _env_number(DEADLINE_ENV, DEFAULT_DEADLINE)

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: ``Retry-After`` (seconds or an HTTP date)
        clamped to ``[0, max_backoff]``; a missing or unreadable value gives the exponential backoff."""
        backoff = min(self.backoff * (2 ** attempt), self.max_backoff)
        if retry_after:
            v = _retry_after_seconds(retry_after)
            if v is not None:
                return min(max(v, 0.0), self.max_backoff)
        return max(backoff, 0.0)


def _retry_after_seconds(value: str) -> float | None:
    value = str(value).strip()
    try:
        v = float(value)
        return v if math.isfinite(v) else None
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return when.timestamp() - time.time()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


DEFAULT_POLICY = RetryPolicy()
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    def __init__(self, msg: str, retry_after: str | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


class DeadlineError(DownloadError):
    """A download ran past its overall deadline (``RetryPolicy.deadline``)."""


class SizeLimitError(DownloadError):
    """A body grew past the expected size or the size cap; the partial file was removed."""


def _check_redirect(r: requests.Response, *args, **kwargs):
    """Response hook: refuse a redirect to a scheme other than http(s) (``file://`` ...)."""
    if r.is_redirect:
        loc = r.headers.get("Location", "")
        scheme = loc.partition(":")[0].lower() if "://" in loc else ""
        if scheme and scheme not in ("http", "https"):
            r.close()
            raise DownloadError(f"{r.request.method} {r.url}: redirected to '{loc}' ({scheme}://); only http(s) "
                                "redirects are followed")
    return r


def session() -> requests.Session:
    """A requests session with the omicsdata user agent (at most 10 redirects, http(s) only)."""
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    s.max_redirects = MAX_REDIRECTS
    s.hooks["response"].append(_check_redirect)
    return s


def _with_retries(what: str, fn: Callable[[], Any], policy: RetryPolicy, sleep=None, t_end: float | None = None):
    sleep = sleep or _sleep
    last = None
    for attempt in range(policy.retries + 1):
        try:
            return fn()
        except requests.TooManyRedirects as e:
            raise DownloadError(f"{what}: redirect loop (more than {MAX_REDIRECTS} redirects; last: {e})") from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidURL) as e:
            raise DownloadError(f"{what}: refused URL or redirect ({e})") from None
        except (_Retryable, requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as e:
            last = e
            if attempt == policy.retries:
                break
            pause = policy.wait(attempt, getattr(e, "retry_after", None))
            if t_end is not None and time.monotonic() + pause > t_end:
                raise DeadlineError(f"{what}: the overall deadline of {policy.total_deadline():g} s would pass "
                                    f"while waiting to retry ({type(e).__name__}: {e})") from None
            log.info("%s: %s; retrying in %.1f s", what, e, pause)
            sleep(pause)
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
    refuse_if_offline(what)
    t_end = time.monotonic() + policy.total_deadline()

    def once():
        r = sess.request(method, real, json=json, params=params, timeout=_timeout(policy, t_end, what),
                         stream=True)
        _check_status(r, what)
        body = bytearray()
        try:
            for chunk in r.iter_content(1 << 16):  # decodes Content-Encoding, unlike _chunks
                body += chunk
                if time.monotonic() > t_end:
                    raise DeadlineError(f"{what}: still receiving after the overall deadline of "
                                        f"{policy.total_deadline():g} s")
                if len(body) > JSON_MAX_BYTES:
                    raise SizeLimitError(f"{what}: JSON response larger than {JSON_MAX_BYTES} bytes; refused")
        finally:
            r.close()
        try:
            import json as _json

            return _json.loads(bytes(body))
        except ValueError as e:
            raise DownloadError(f"{what}: response is not JSON ({e}): {sniff.describe(bytes(body[:512]))}") from None

    return _with_retries(what, once, policy, t_end=t_end)


JSON_MAX_BYTES = 1 << 30


def _timeout(policy: RetryPolicy, t_end: float, what: str) -> float:
    left = t_end - time.monotonic()
    if left <= 0:
        raise DeadlineError(f"{what}: the overall deadline of {policy.total_deadline():g} s has passed")
    return min(policy.timeout, left)


def _chunks(r: requests.Response, t_end: float | None = None, what: str = "", policy: RetryPolicy | None = None):
    """Body bytes as they arrive (``read1``), so a dropped connection keeps every byte received.

    Past ``t_end`` (``time.monotonic()``) raises :class:`DeadlineError`, however slowly bytes keep coming.
    """
    raw = r.raw
    if hasattr(raw, "read1"):
        read = lambda: raw.read1(CHUNK)  # noqa: E731
    else:  # pragma: no cover - urllib3 < 2
        it = r.iter_content(CHUNK)
        read = lambda: next(it, b"")  # noqa: E731
    got = 0
    while chunk := read():
        got += len(chunk)
        yield chunk
        if t_end is not None and time.monotonic() > t_end:
            limit = policy.total_deadline() if policy else 0
            raise DeadlineError(f"{what}: still receiving after the overall deadline of {limit:g} s "
                                f"({got} bytes in this attempt); the server is too slow or stalled")


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
             name: str | None = None, max_bytes: int | None = None, sniff_content: bool = True) -> Path:
    """Download ``url`` to ``dest`` with resume, retries and checksum; return ``dest``.

    The body may not grow past ``size`` (when known) or ``max_bytes`` (default
    :func:`default_max_bytes`); the whole download, retries included, must end
    within ``policy``'s deadline. ``sniff_content`` refuses an HTML page (or a
    file lacking the magic bytes its name promises) in place of the data.

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
    refuse_if_offline(name)  # OMICSDATA_OFFLINE: cached files above are still served
    part = part_path(dest)
    sess = sess or session()
    can_resume = resume and method.upper() == "GET"
    if not can_resume and part.exists():
        part.unlink()
    cap = int(size) if size is not None else int(max_bytes or default_max_bytes())
    t_end = time.monotonic() + policy.total_deadline()
    what = f"{method} {name}"

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
        r = sess.request(method, real, json=json, headers=headers, stream=True,
                         timeout=_timeout(policy, t_end, what))
        if r.status_code == 416 and have:  # range past the end: the part is complete (or stale)
            r.close()
            if size is None or have == int(size):
                return
            part.unlink()
            raise _Retryable("HTTP 416 for a stale partial file")
        _check_status(r, what)
        mode = "ab" if (have and r.status_code == 206) else "wb"
        start = have if mode == "ab" else 0
        announced = r.headers.get("Content-Length", "")
        if announced.isdigit() and start + int(announced) > cap:
            r.close()
            part.unlink(missing_ok=True)
            raise SizeLimitError(f"{what}: the server announces {start + int(announced)} bytes, more than the "
                                 + (f"expected size {cap}" if size is not None else
                                    f"cap of {cap} bytes (${MAX_BYTES_ENV})") + "; refused")
        try:
            with open(part, mode) as fh:
                written = start
                for chunk in _chunks(r, t_end, what, policy):
                    written += len(chunk)
                    if written > cap:
                        fh.close()
                        part.unlink(missing_ok=True)
                        raise SizeLimitError(
                            f"{what}: body passed {cap} bytes, "
                            + ("the expected size" if size is not None else f"the cap (${MAX_BYTES_ENV})")
                            + "; stopped and removed the partial file")
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

    _with_retries(f"download {name}", once, policy, t_end=t_end)
    with open(part, "rb") as fh:
        head = fh.read(sniff.HEAD_BYTES)
    why = sniff.check_head(name, dest.name, head) if sniff_content else None
    if why:
        part.unlink(missing_ok=True)
        raise DownloadError(why + "; the file was discarded")
    try:
        verify_file(part, md5=md5, sha256=sha256, size=size, name=name)
    except ChecksumError as e:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{e} (what arrived: {sniff.describe(head)})") from None
    os.replace(part, dest)
    return dest
