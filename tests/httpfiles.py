"""A static-file HTTP server for tests (stdlib only), reusable by any test that downloads plain files.

``FileServer(root)`` serves the files under ``root`` on 127.0.0.1 at
``http://127.0.0.1:<port>/<path>``, like a raw-file host or a mirror:

* ``GET`` and ``HEAD``, with ``Content-Length``, ``Accept-Ranges: bytes`` and
  ``ETag`` (sha256 of the content);
* ``Range: bytes=N-`` / ``bytes=N-M`` answered with 206 + ``Content-Range``
  (416 past the end), so resumed downloads can be tested;
* a missing file (or a folder) is a 404; paths that leave ``root`` are refused (403).

Every request is recorded in ``server.requests`` as ``(method, path, range_header)``
so a test can check what was asked for (e.g. that a mirror was used).
Faults for retry/resume tests: ``server.fail_next[path] = n`` answers the next
``n`` requests for ``path`` with 503; ``server.truncate_next[path] = nbytes``
sends the full ``Content-Length`` but only ``nbytes`` of body once, then closes.

Use as a context manager::

    with FileServer(tmp_path / "site") as srv:
        url = srv.url + "/ROSMAP/1_tr.csv"
"""
from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(BaseHTTPRequestHandler):
    server_version = "httpfiles/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self):
        owner: FileServer = self.server.owner  # type: ignore[attr-defined]
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        owner.requests.append((self.command, rel, self.headers.get("Range")))
        if owner.fail_next.get(rel, 0) > 0:
            owner.fail_next[rel] -= 1
            return self._send(503, b"try again", {"Retry-After": "0"})
        root = owner.root.resolve()
        target = (root / rel).resolve()
        if root != target and root not in target.parents:
            return self._send(403, b"outside the served folder")
        if not target.is_file():
            return self._send(404, f"no such file: {rel}".encode(), {"Content-Type": "text/plain"})
        data = target.read_bytes()
        headers = {"Accept-Ranges": "bytes", "ETag": '"' + hashlib.sha256(data).hexdigest() + '"',
                   "Content-Type": "application/octet-stream"}
        code, body = 200, data
        rng = self.headers.get("Range")
        if rng:
            m = _RANGE.match(rng.strip())
            if not m:
                return self._send(416, b"bad range", {"Content-Range": f"bytes */{len(data)}"})
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            end = min(end, len(data) - 1)
            code, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        cut = owner.truncate_next.pop(rel, None)
        if cut is not None and self.command == "GET":
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(code, body, headers)

    do_GET = _serve
    do_HEAD = _serve


class FileServer:
    """Serve the folder ``root`` on 127.0.0.1 (a free port); ``url`` is the base URL."""

    def __init__(self, root):
        self.root = Path(root)
        self.requests: list[tuple[str, str, str | None]] = []
        self.fail_next: dict[str, int] = {}
        self.truncate_next: dict[str, int] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def paths_requested(self, method: str = "GET") -> list[str]:
        """The paths asked for with ``method``, in order."""
        return [p for m, p, _ in self.requests if m == method]

    def start(self) -> "FileServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FileServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
