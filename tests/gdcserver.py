"""A GDC API look-alike on 127.0.0.1 for tests (real sockets, real HTTP).

Serves what :func:`omicsdata.synth_gdc.write_gdc_raw` wrote (``files.json``,
``cases.json``, ``files/<id>/<name>``):

* ``POST /files``, ``POST /cases``: JSON ``filters`` (``and``/``or``/``in``/``=``
  over dotted fields, matching inside nested lists), ``fields`` projection,
  ``size``/``from`` paging, ``sort`` (``field:asc|desc``); answers
  ``{"data": {"hits": [...], "pagination": {...}}, "warnings": {}}``;
* ``GET /data/{id}``: the file, with ``Range`` support (206 + Content-Range);
* ``POST /data {"ids": [...]}``: one id -> the file; several -> a tar.gz of
  ``<id>/<file_name>`` members plus ``MANIFEST.txt``, as the GDC does.

Fault injection (``server.faults``, each consumed when it fires):
``{"kind": "drop", "file_id": id}`` (send half the bytes, then close),
``{"kind": "status", "path": "/data/<id>" | "/files" | "/data", "code": 500}``,
``{"kind": "corrupt", "file_id": id}`` (serve flipped bytes; md5 no longer matches),
``{"kind": "evil_tar", "member": "../x"}`` (a batch archive with an extra unsafe member),
``{"kind": "bad_row"}`` is done by editing the file on disk instead.
``server.log`` records ``(method, path, range header)`` of every request and
``server.bodies`` the ``(path, JSON body)`` of every POST.

``GET /status`` answers like the GDC's status endpoint (``status``, ``tag``,
``version``, ``data_release``...); ``server.status`` can be edited to play a
changed upstream.
"""
from __future__ import annotations

import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _values(doc, path: list[str]):
    """All values at dotted ``path`` in ``doc`` (lists are flattened)."""
    if not path:
        return doc if isinstance(doc, list) else [doc]
    if isinstance(doc, list):
        out = []
        for d in doc:
            out.extend(_values(d, path))
        return out
    if not isinstance(doc, dict) or path[0] not in doc:
        return []
    return _values(doc[path[0]], path[1:])


def match(doc: dict, flt: dict | None) -> bool:
    if not flt:
        return True
    op = flt["op"].lower()
    if op == "and":
        return all(match(doc, f) for f in flt["content"])
    if op == "or":
        return any(match(doc, f) for f in flt["content"])
    if op in ("in", "="):
        field = flt["content"]["field"]
        want = flt["content"]["value"]
        want = set(map(str, want if isinstance(want, list) else [want]))
        # GDC lets /cases filters use either "project.project_id" or "cases.project.project_id" on /files
        return any(str(v) in want for v in _values(doc, field.split(".")))
    raise ValueError(f"unsupported filter op {op}")


def project(doc, fields: list[list[str]]):
    """Keep only ``fields`` (dotted paths) of ``doc``, preserving nesting and lists."""
    if isinstance(doc, list):
        return [project(d, fields) for d in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    heads = {}
    for f in fields:
        heads.setdefault(f[0], []).append(f[1:])
    for k, subs in heads.items():
        if k not in doc:
            continue
        if any(not s for s in subs):
            out[k] = doc[k]
        else:
            out[k] = project(doc[k], subs)
    return out


class GDCServer:
    """``with GDCServer(raw_root) as srv: os.environ["OMICSDATA_GDC_API"] = srv.url``"""

    def __init__(self, root, page_cap: int | None = None):
        self.root = Path(root)
        self.files = json.loads((self.root / "files.json").read_text())
        for f in self.files:
            f.pop("local_path", None)
        self.cases = json.loads((self.root / "cases.json").read_text())
        self.by_id = {f["file_id"]: f for f in self.files}
        self.faults: list[dict] = []
        self.log: list[tuple] = []
        self.bodies: list[tuple] = []
        self.status = {"commit": "0" * 40, "data_release": "Data Release 42.0 - December 2024",
                       "data_release_version": {"major": 42, "minor": 0}, "status": "OK", "tag": "7.0.0",
                       "version": 1}
        self.page_cap = page_cap  # the real API caps page size; tests use a small cap to force paging
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = None

    def path_of(self, file_id: str) -> Path:
        f = self.by_id[file_id]
        return self.root / "files" / file_id / f["file_name"]

    def take_fault(self, **kw) -> dict | None:
        with self._lock:
            for i, f in enumerate(self.faults):
                if all(f.get(k) == v for k, v in kw.items()):
                    return self.faults.pop(i)
        return None

    def __enter__(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        srv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body: bytes, ctype="application/json", headers=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, code, doc):
                self._send(code, json.dumps(doc).encode())

            def _status_fault(self, path):
                f = srv.take_fault(kind="status", path=path)
                if f:
                    self._json(f["code"], {"message": "injected error"})
                    return True
                return False

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def do_GET(self):
                srv.log.append(("GET", self.path, self.headers.get("Range")))
                if self._status_fault(self.path):
                    return
                if self.path.startswith("/data/"):
                    return self._file(self.path.split("/")[2].split("?")[0])
                if self.path.split("?")[0] in ("/status", "/v0/status"):
                    return self._json(200, srv.status)
                self._json(404, {"message": "not found"})

            def do_POST(self):
                body = self._body()
                srv.log.append(("POST", self.path, self.headers.get("Range")))
                srv.bodies.append((self.path, body))
                if self._status_fault(self.path):
                    return
                if self.path in ("/files", "/cases"):
                    return self._query(self.path[1:], body)
                if self.path == "/data":
                    ids = body.get("ids") or []
                    if isinstance(ids, str):
                        ids = [ids]
                    if any(i not in srv.by_id for i in ids):
                        return self._json(404, {"message": "unknown id"})
                    if len(ids) == 1:
                        return self._file(ids[0])
                    return self._tar(ids)
                self._json(404, {"message": "not found"})

            def _query(self, endpoint, body):
                docs = srv.files if endpoint == "files" else srv.cases
                hits = [d for d in docs if match(d, body.get("filters"))]
                sort = body.get("sort")
                if sort:
                    key, _, direction = sort.partition(":")
                    hits.sort(key=lambda d: str((_values(d, key.split(".")) or [""])[0]),
                              reverse=direction == "desc")
                size = int(body.get("size", 10))
                if srv.page_cap:
                    size = min(size, srv.page_cap)
                start = int(body.get("from", 0))
                page = hits[start:start + size]
                fields = [f.split(".") for f in (body.get("fields") or "").split(",") if f]
                if fields:
                    page = [project(d, fields) for d in page]
                total = len(hits)
                self._json(200, {"data": {"hits": page, "pagination": {
                    "count": len(page), "total": total, "size": size, "from": start, "sort": sort or "",
                    "page": start // max(size, 1) + 1, "pages": (total + size - 1) // max(size, 1)}},
                    "warnings": {}})

            def _file(self, fid):
                if fid not in srv.by_id:
                    return self._json(404, {"message": f"file {fid} not found"})
                data = srv.path_of(fid).read_bytes()
                if srv.take_fault(kind="corrupt", file_id=fid):
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                name = srv.by_id[fid]["file_name"]
                headers = {"Content-Disposition": f"attachment; filename={name}", "Accept-Ranges": "bytes"}
                rng = self.headers.get("Range")
                code, start = 200, 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        return self._send(416, b"", headers={"Content-Range": f"bytes */{len(data)}"})
                    code = 206
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                body = data[start:]
                if srv.take_fault(kind="drop", file_id=fid):
                    self.send_response(code)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._send(code, body, "application/octet-stream", headers)

            def _tar(self, ids):
                buf = io.BytesIO()
                evil = srv.take_fault(kind="evil_tar")
                with tarfile.open(fileobj=buf, mode="w:gz") as tf:
                    manifest = ["id\tfilename\tmd5\tsize\tstate"]
                    for fid in ids:
                        f = srv.by_id[fid]
                        data = srv.path_of(fid).read_bytes()
                        if srv.take_fault(kind="corrupt", file_id=fid):
                            data = bytes([data[0] ^ 0xFF]) + data[1:]
                        ti = tarfile.TarInfo(f"{fid}/{f['file_name']}")
                        ti.size = len(data)
                        tf.addfile(ti, io.BytesIO(data))
                        manifest.append(f"{fid}\t{f['file_name']}\t{f['md5sum']}\t{f['file_size']}\treleased")
                    m = ("\n".join(manifest) + "\n").encode()
                    ti = tarfile.TarInfo("MANIFEST.txt")
                    ti.size = len(m)
                    tf.addfile(ti, io.BytesIO(m))
                    if evil:
                        ti = tarfile.TarInfo(evil.get("member", "../x"))
                        ti.size = 4
                        tf.addfile(ti, io.BytesIO(b"evil"))
                name = "gdc_download_20240101_000000.000000.tar.gz"
                self._send(200, buf.getvalue(), "application/x-tar",
                           {"Content-Disposition": f"attachment; filename={name}"})

        return H
