"""A misbehaving HTTP server on 127.0.0.1 for download fault tests (stdlib only).

Paths (``GET``):

* ``/ok/<name>``             200, ``FaultServer.payload`` with ``Content-Length``;
* ``/html/<name>``           200, an HTML error page (``text/html``) where a data file is expected;
* ``/drip/<name>``           200, ``Content-Length`` of the payload, one byte every ``drip_s`` seconds;
* ``/nolength/<name>``       200, no ``Content-Length``: ``nolength_bytes`` of zeros, then close;
* ``/truncated/<name>``      200, full ``Content-Length`` but half the body, then close (every time);
* ``/retry/<n>/<value>/<name>``  the first ``n`` requests for that path get 503 with ``Retry-After: <value>``
  (``value`` URL-quoted, e.g. ``-5``, ``garbage``, ``1``), then 200 with the payload;
* ``/429/<n>/<value>/<name>`` the same with 429;
* ``/loop/<name>``           302 to itself (a redirect loop);
* ``/tofile/<name>``         302 to ``file:///etc/passwd``.

Every request is recorded in ``server.requests`` as ``(path, monotonic time)``.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

HTML = (b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>"
        b"<body><h1>Maintenance</h1><p>Please come back later.</p></body></html>\n")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _head(self, code: int, headers: dict):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def do_GET(self):  # noqa: N802 - http.server naming
        o: FaultServer = self.server.owner  # type: ignore[attr-defined]
        path = unquote(self.path)
        o.requests.append((path, time.monotonic()))
        parts = path.strip("/").split("/")
        kind = parts[0]
        body = o.payload
        try:
            if kind == "ok":
                self._head(200, {"Content-Length": str(len(body))})
                self.wfile.write(body)
            elif kind == "html":
                self._head(200, {"Content-Type": "text/html", "Content-Length": str(len(HTML))})
                self.wfile.write(HTML)
            elif kind == "drip":
                self._head(200, {"Content-Length": str(len(body))})
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(o.drip_s)
            elif kind == "nolength":
                self._head(200, {"Connection": "close"})
                self.close_connection = True
                block = b"\0" * (1 << 16)
                sent = 0
                while sent < o.nolength_bytes:
                    self.wfile.write(block)
                    sent += len(block)
            elif kind == "truncated":
                self._head(200, {"Content-Length": str(len(body)), "Connection": "close"})
                self.close_connection = True
                self.wfile.write(body[: len(body) // 2])
            elif kind in ("retry", "429"):
                n, value = int(parts[1]), parts[2]
                key = "/".join(parts)
                seen = o.counts.get(key, 0)
                o.counts[key] = seen + 1
                if seen < n:
                    self._head(503 if kind == "retry" else 429, {"Retry-After": value, "Content-Length": "0"})
                else:
                    self._head(200, {"Content-Length": str(len(body))})
                    self.wfile.write(body)
            elif kind == "loop":
                self._head(302, {"Location": self.path, "Content-Length": "0"})
            elif kind == "tofile":
                self._head(302, {"Location": "file:///etc/passwd", "Content-Length": "0"})
            else:
                self._head(404, {"Content-Length": "0"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class FaultServer:
    """Context manager: ``with FaultServer(payload) as s: s.url + "/drip/x.tsv"``."""

    def __init__(self, payload: bytes = b"gene\tvalue\nA\t1\n" * 64, drip_s: float = 1.0,
                 nolength_bytes: int = 8 << 20):
        self.payload, self.drip_s, self.nolength_bytes = payload, drip_s, nolength_bytes
        self.requests: list = []
        self.counts: dict = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self._t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False
