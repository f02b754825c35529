"""A Hugging Face Hub look-alike HTTP server for tests (stdlib only).

Serves exactly what ``huggingface_hub`` 2.4 requests (read from its source):

* ``HEAD|GET /{repo}/resolve/{rev}/{path}`` and ``/datasets/{repo}/resolve/{rev}/{path}``
  (``hf_hub_download``): answers ``X-Repo-Commit``, ``ETag`` (git blob sha1 of the
  content, like the Hub for non-LFS files), ``Content-Length``, ``Accept-Ranges`` and
  honours ``Range: bytes=N-[M]`` with 206 + ``Content-Range``.  No ``X-Xet-*``
  header is ever sent, so the client never takes the Xet path.
* ``GET /api/{models|datasets}/{repo}[/revision/{rev}]`` (``repo_info``, used by
  ``snapshot_download``): ``id``, ``sha``, ``siblings``.
* ``GET /api/{models|datasets}/{repo}/tree/{rev}[/{path}]?recursive=..`` (``list_repo_tree``,
  ``list_repo_files``, ``snapshot_download``); ``POST .../paths-info/{rev}``.
* ``POST /api/repos/create`` (``create_repo``; 409 when it exists),
  ``POST /api/{t}s/{repo}/preupload/{rev}`` (always ``uploadMode: regular``, so no LFS
  or Xet server is needed), ``POST /api/{t}s/{repo}/commit/{rev}`` (NDJSON with inline
  base64 ``file`` entries, ``deletedFile``/``deletedFolder``), ``POST /api/validate-yaml``.

LFS emulation (``HubServer(root, lfs_threshold=N)``): files of N bytes or more are
"LFS files", as on the real Hub: tree entries carry ``lfs: {oid: sha256, size, pointerSize}``;
``resolve`` answers 302 with ``X-Linked-Etag`` (sha256), ``X-Linked-Size`` and a
``Location`` on another origin (``http://localhost:<port>/cdn/<sha256>``, so the client
stops there and drops its auth header, like a CDN); preupload answers ``uploadMode: lfs``
and the LFS batch API (``POST /{repo}.git/info/lfs/objects/batch``, ``PUT /lfs-upload/<oid>``)
plus ``lfsFile`` commit entries are accepted.  LFS uploads need Xet off *in the client*
(``huggingface_hub.constants.HF_HUB_DISABLE_XET = True``; the ``hub_server`` fixture does it),
otherwise huggingface_hub would try the Xet protocol for them.

Repos are folders: ``root/models/<owner>/<name>/`` and ``root/datasets/<owner>/<name>/``.
A repo's commit sha is the sha1 of its sorted (path, blob sha1) listing, so it is
deterministic and changes when the content changes.  Valid revisions: ``main`` and
the current commit sha (full, or a prefix of at least 7 characters).  History is not
kept: after a commit the previous sha answers RevisionNotFound.

Errors carry the ``X-Error-Code`` header huggingface_hub maps to exceptions:
``RepoNotFound`` -> RepositoryNotFoundError, ``RevisionNotFound`` -> RevisionNotFoundError,
``EntryNotFound`` (with ``X-Repo-Commit``) -> RemoteEntryNotFoundError.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_TYPES = {"model": "models", "dataset": "datasets"}
_PLURAL_TO_TYPE = {v: k for k, v in REPO_TYPES.items()}


def git_blob_sha1(data: bytes) -> str:
    h = hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _folder(repo_type: str) -> str:
    if repo_type in REPO_TYPES:
        return REPO_TYPES[repo_type]
    if repo_type in _PLURAL_TO_TYPE:
        return repo_type
    raise ValueError(f"repo_type must be 'model' or 'dataset', not {repo_type!r}")


class _Fault:
    def __init__(self, method, path_contains, times, status, truncate_to):
        self.method = method
        self.path_contains = path_contains
        self.times = times
        self.status = status
        self.truncate_to = truncate_to

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and (self.method is None or self.method == method) and self.path_contains in path


class HubServer:
    """In-process Hub look-alike.  Use as a context manager or call start()/stop()."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0,
                 lfs_threshold: int | None = None):
        self.root = Path(root)
        self.lfs_threshold = lfs_threshold  # files >= this many bytes are served/accepted as LFS
        self._sha256_cache: dict[tuple[str, int, int], str] = {}
        self._cdn: dict[str, Path] = {}  # sha256 -> file, for /cdn/<sha256>
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []  # (method, unquoted path without query)
        self.request_headers: list[dict[str, str]] = []  # lower-cased headers of each request, same order
        self.commits: list[dict] = []  # one dict per accepted commit (repo, oid, paths)
        self.sent: list[tuple[str, int]] = []  # (request path, body bytes sent) of every file GET, ranges included
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self._hash_cache: dict[tuple[str, int, int], str] = {}
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hubserver", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- repo content helpers --------------------------------------------------------
    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        return self.root / _folder(repo_type) / repo_id

    def create_repo(self, repo_type: str, repo_id: str) -> Path:
        d = self.repo_dir(repo_type, repo_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add_file(self, repo_type: str, repo_id: str, path: str, content: bytes | str | Path) -> str:
        """Put a file into a repo (created if needed); returns the repo's new commit sha.

        ``content`` is bytes, or a path (str/Path) to a local file to copy.
        """
        with self._lock:
            dest = self.create_repo(repo_type, repo_id) / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, (bytes, bytearray, memoryview)):
                dest.write_bytes(bytes(content))
            else:
                shutil.copyfile(content, dest)
            return self.commit_sha(repo_type, repo_id)

    def remove_file(self, repo_type: str, repo_id: str, path: str) -> None:
        with self._lock:
            (self.repo_dir(repo_type, repo_id) / path).unlink()

    def files(self, repo_type: str, repo_id: str) -> dict[str, Path]:
        """{repo path: local file} of a repo's current content (sorted)."""
        d = self.repo_dir(repo_type, repo_id)
        if not d.is_dir():
            return {}
        out = {}
        for p in sorted(d.rglob("*")):
            if p.is_file():
                out[p.relative_to(d).as_posix()] = p
        return out

    def blob_sha1(self, file: Path) -> str:
        st = file.stat()
        key = (str(file), st.st_mtime_ns, st.st_size)
        with self._lock:
            got = self._hash_cache.get(key)
        if got is None:
            got = git_blob_sha1(file.read_bytes())
            with self._lock:
                self._hash_cache[key] = got
        return got

    def sha256(self, file: Path) -> str:
        st = file.stat()
        key = (str(file), st.st_mtime_ns, st.st_size)
        with self._lock:
            got = self._sha256_cache.get(key)
        if got is None:
            got = hashlib.sha256(file.read_bytes()).hexdigest()
            with self._lock:
                self._sha256_cache[key] = got
        return got

    def is_lfs(self, file_or_size: Path | int) -> bool:
        if self.lfs_threshold is None:
            return False
        size = file_or_size if isinstance(file_or_size, int) else file_or_size.stat().st_size
        return size >= self.lfs_threshold

    @property
    def cdn_url(self) -> str:
        """Base of the 'CDN' LFS files redirect to: same server, different origin (localhost)."""
        return f"http://localhost:{self._httpd.server_address[1]}/cdn"

    def lfs_store(self) -> Path:
        d = self.root / ".lfs-objects"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def commit_sha(self, repo_type: str, repo_id: str) -> str:
        """The repo's current (deterministic) 40-hex commit sha."""
        h = hashlib.sha1(f"{_folder(repo_type)}/{repo_id}\n".encode())
        for rel, f in self.files(repo_type, repo_id).items():
            h.update(f"{rel}\0{self.blob_sha1(f)}\n".encode())
        return h.hexdigest()

    def resolve_revision(self, repo_type: str, repo_id: str, revision: str) -> str | None:
        sha = self.commit_sha(repo_type, repo_id)
        if revision == "main" or revision == sha or (len(revision) >= 7 and sha.startswith(revision)):
            return sha
        return None

    # -- fault injection -----------------------------------------------------------------
    def fail_next(self, path_contains: str, times: int = 1, status: int = 500, method: str | None = "GET") -> None:
        """The next ``times`` requests (``method``, None = any) whose path contains
        ``path_contains`` answer ``status`` with an empty body."""
        with self._lock:
            self._faults.append(_Fault(method, path_contains, times, status, None))

    def truncate_next(self, path_contains: str, times: int = 1, keep_bytes: int = 1) -> None:
        """The next ``times`` GETs of a matching file announce the full Content-Length but
        send only ``keep_bytes`` bytes and drop the connection (client sees a broken body)."""
        with self._lock:
            self._faults.append(_Fault("GET", path_contains, times, None, keep_bytes))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.matches(method, path):
                    f.times -= 1
                    return f
        return None

    def bytes_sent(self, contains: str = "") -> int:
        """Body bytes sent for file GETs (whole or ranged) whose path contains ``contains``."""
        return sum(n for p, n in list(self.sent) if contains in p)

    def requested(self, method: str | None = None, contains: str = "") -> list[tuple[str, str]]:
        """Logged requests filtered by method and path substring."""
        return [(m, p) for m, p in list(self.requests) if (method is None or m == method) and contains in p]


# ----------------------------------------------------------------------------------------
_RESOLVE_RE = re.compile(r"^/(?:(?P<plural>datasets|models)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_LFS_BATCH_RE = re.compile(r"^/(?:(?P<plural>datasets|models)/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_API_RE = re.compile(
    r"^/api/(?P<plural>models|datasets)/(?P<repo>[^/]+/[^/]+)"
    r"(?:/(?P<op>revision|tree|preupload|commit|paths-info)/(?P<rev>[^/]+)(?:/(?P<path>.*))?)?$"
)


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "hubserver/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing --------------------------------------------------------------------------
    def _split(self):
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()  # CRLF after each chunk
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        hdrs = {"Content-Type": content_type, "Content-Length": str(len(body))}
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj, status: int = 200, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str | None, message: str, headers: dict | None = None):
        h = {"X-Error-Message": message}
        if code:
            h["X-Error-Code"] = code
        h.update(headers or {})
        self._json({"error": message}, status, h)

    def _dispatch(self):
        # Any request body must be drained for keep-alive to work, even on errors.
        path, query = self._split()
        upath = unquote(path)
        with self.hub._lock:
            self.hub.requests.append((self.command, upath))
            self.hub.request_headers.append({k.lower(): v for k, v in self.headers.items()})
        body = self._body() if self.command in ("POST", "PUT") else b""
        fault = self.hub._take_fault(self.command, upath)
        if fault is not None and fault.status is not None:
            self._error(fault.status, None, f"injected fault {fault.status}")
            return
        try:
            self._route(path, upath, query, body, fault)
        except BrokenPipeError:
            pass
        except Exception as e:  # pragma: no cover - surfaced to the client as 500
            self._error(500, None, f"hubserver internal error: {type(e).__name__}: {e}")

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _repo_or_404(self, plural: str, repo_id: str) -> bool:
        if not self.hub.repo_dir(plural, repo_id).is_dir():
            self._error(404, "RepoNotFound", f"Repository not found: {plural}/{repo_id}")
            return False
        return True

    def _route(self, path, upath, query, body, fault):
        if path == "/api/repos/create" and self.command == "POST":
            return self._create_repo(body)
        if path == "/api/validate-yaml" and self.command == "POST":
            return self._json({"errors": [], "warnings": []})
        if path.startswith("/cdn/") and self.command in ("GET", "HEAD"):
            with self.hub._lock:
                file = self.hub._cdn.get(path[len("/cdn/"):])
            if file is None or not file.is_file():
                return self._error(404, None, "no such blob")
            return self._serve_bytes(file, {"ETag": f'"{path[len("/cdn/"):]}"'}, fault)
        if path.startswith("/lfs-upload/") and self.command == "PUT":
            return self._lfs_put(path[len("/lfs-upload/"):], body)
        m = _LFS_BATCH_RE.match(path)
        if m and self.command == "POST":
            plural = m["plural"] or "models"
            if not self._repo_or_404(plural, unquote(m["repo"])):
                return
            return self._lfs_batch(body)
        m = _RESOLVE_RE.match(path)
        if m and self.command in ("GET", "HEAD"):
            return self._resolve(
                m["plural"] or "models", unquote(m["repo"]), unquote(m["rev"]), unquote(m["path"]), fault
            )
        m = _API_RE.match(path)
        if m:
            plural, repo_id, op = m["plural"], unquote(m["repo"]), m["op"]
            rev = unquote(m["rev"]) if m["rev"] else "main"
            sub = unquote(m["path"] or "")
            if not self._repo_or_404(plural, repo_id):
                return
            sha = self.hub.resolve_revision(plural, repo_id, rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            if op in (None, "revision") and self.command == "GET":
                return self._info(plural, repo_id, sha)
            if op == "tree" and self.command == "GET":
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                return self._tree(plural, repo_id, sub.strip("/"), recursive, sha)
            if op == "paths-info" and self.command == "POST":
                return self._paths_info(plural, repo_id, body)
            if op == "preupload" and self.command == "POST":
                return self._preupload(plural, repo_id, body)
            if op == "commit" and self.command == "POST":
                return self._commit(plural, repo_id, body)
        self._error(404, None, f"hubserver: no route for {self.command} {upath}")

    # -- downloads -----------------------------------------------------------------------------
    def _resolve(self, plural, repo_id, rev, filename, fault):
        if not self._repo_or_404(plural, repo_id):
            return
        sha = self.hub.resolve_revision(plural, repo_id, rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        file = self.hub.repo_dir(plural, repo_id) / filename
        if not file.is_file() or ".." in Path(filename).parts:
            return self._error(
                404, "EntryNotFound", f"{filename} does not exist on \"{rev}\"", {"X-Repo-Commit": sha}
            )
        if self.hub.is_lfs(file):
            digest = self.hub.sha256(file)
            with self.hub._lock:
                self.hub._cdn[digest] = file
            return self._send(302, b"", {
                "X-Repo-Commit": sha,
                "ETag": f'"{self.hub.blob_sha1(file)}"',
                "X-Linked-Etag": f'"{digest}"',
                "X-Linked-Size": str(file.stat().st_size),
                "Location": f"{self.hub.cdn_url}/{digest}",
            })
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{self.hub.blob_sha1(file)}"',
            "Content-Disposition": f'inline; filename="{Path(filename).name}";',
        }
        self._serve_bytes(file, headers, fault)

    def _serve_bytes(self, file: Path, headers: dict, fault):
        size = file.stat().st_size  # only the asked-for span is read (shards can be large)
        headers = {**headers, "Accept-Ranges": "bytes"}
        status, start, end = 200, 0, size
        rng = self.headers.get("Range")
        if rng and self.command == "GET":
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if m and (m[1] or m[2]):
                if m[1]:
                    start = int(m[1])
                    end = min(int(m[2]) + 1, size) if m[2] else size
                else:  # suffix range
                    start = max(size - int(m[2]), 0)
                if start >= size and size > 0:
                    return self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{max(end - 1, start)}/{size}"
        if self.command == "HEAD":
            return self._send(200, b"", {**headers, "Content-Length": str(size)}, "application/octet-stream")
        with open(file, "rb") as fh:
            fh.seek(start)
            chunk = fh.read(max(0, end - start))
        with self.hub._lock:
            self.hub.sent.append((unquote(urlsplit(self.path).path), len(chunk)))
        if fault is not None and fault.truncate_to is not None:
            self.send_response(status)
            for k, v in {**headers, "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(chunk[: fault.truncate_to])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(status, chunk, headers, "application/octet-stream")

    def _file_entry(self, plural, repo_id, rel: str, f: Path) -> dict:
        entry = {"type": "file", "path": rel, "size": f.stat().st_size, "oid": self.hub.blob_sha1(f)}
        if self.hub.is_lfs(f):
            entry["lfs"] = {"oid": self.hub.sha256(f), "size": entry["size"], "pointerSize": 134}
        return entry

    def _info(self, plural, repo_id, sha):
        files = self.hub.files(plural, repo_id)
        self._json(
            {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "private": False,
                "disabled": False,
                "gated": False,
                "tags": [],
                "siblings": [{"rfilename": rel} for rel in files],
            }
        )

    def _tree(self, plural, repo_id, sub, recursive, sha):
        files = self.hub.files(plural, repo_id)
        base = self.hub.repo_dir(plural, repo_id) / sub if sub else self.hub.repo_dir(plural, repo_id)
        if sub and not base.is_dir():
            return self._error(404, "EntryNotFound", f"{sub} does not exist", {"X-Repo-Commit": sha})
        prefix = f"{sub}/" if sub else ""
        out, folders = [], set()
        for rel, f in files.items():
            if not rel.startswith(prefix):
                continue
            rest = rel[len(prefix):]
            parts = rest.split("/")
            # folders on the way
            for i in range(1, len(parts)):
                if not recursive and i > 1:
                    break
                folders.add(prefix + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                out.append(self._file_entry(plural, repo_id, rel, f))
        for d in sorted(folders):
            out.append({"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()})
        out.sort(key=lambda e: e["path"])
        self._json(out)

    def _paths_info(self, plural, repo_id, body):
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        files = self.hub.files(plural, repo_id)
        d = self.hub.repo_dir(plural, repo_id)
        out = []
        for p in paths:
            p = p.strip("/")
            if p in files:
                out.append(self._file_entry(plural, repo_id, p, files[p]))
            elif (d / p).is_dir():
                out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()})
        self._json(out)

    # -- uploads ---------------------------------------------------------------------------------
    def _create_repo(self, body):
        payload = json.loads(body or b"{}")
        name, org = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_TYPES:
            return self._error(400, None, f"hubserver supports model and dataset repos, not {repo_type}")
        repo_id = f"{org}/{name}" if org else f"user/{name}"
        d = self.hub.repo_dir(repo_type, repo_id)
        prefix = "" if repo_type == "model" else "datasets/"
        url = f"{self.hub.url}/{prefix}{repo_id}"
        if d.is_dir():
            return self._json({"error": "You already created this repo", "url": url}, 409)
        d.mkdir(parents=True)
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _preupload(self, plural, repo_id, body):
        payload = json.loads(body or b"{}")
        files = self.hub.files(plural, repo_id)
        out = []
        for f in payload.get("files", []):
            p = f["path"]
            lfs = self.hub.is_lfs(int(f.get("size", 0)))
            oid = None
            if p in files:  # lets the client skip unchanged files (it compares sha256 / git sha1)
                oid = self.hub.sha256(files[p]) if lfs else self.hub.blob_sha1(files[p])
            out.append({"path": p, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": self.hub.commit_sha(plural, repo_id)})

    def _lfs_batch(self, body):
        payload = json.loads(body or b"{}")
        if payload.get("operation") != "upload":
            return self._error(400, None, "hubserver's LFS batch API only supports uploads")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size}
            if not (self.hub.lfs_store() / oid).is_file():
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{oid}", "header": {}}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, oid, body):
        if not re.fullmatch(r"[0-9a-f]{64}", oid) or hashlib.sha256(body).hexdigest() != oid:
            return self._error(400, None, f"LFS object does not match its oid {oid}")
        tmp = self.hub.lfs_store() / f".{oid}.{threading.get_ident()}.part"
        tmp.write_bytes(body)
        os.replace(tmp, self.hub.lfs_store() / oid)
        self._send(200, b"")

    def _commit(self, plural, repo_id, body):
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        d = self.hub.repo_dir(plural, repo_id)
        changed = []
        with self.hub._lock:
            header = next((ln["value"] for ln in lines if ln.get("key") == "header"), {})
            parent = header.get("parentCommit")
            if parent and parent != self.hub.commit_sha(plural, repo_id):
                return self._error(412, None, f"parentCommit {parent} is not the head of main")
            for ln in lines:
                key, val = ln.get("key"), ln.get("value", {})
                if key == "header":
                    continue
                rel = val.get("path", "").strip("/")
                if not rel or ".." in rel.split("/"):
                    return self._error(400, None, f"bad path {rel!r}")
                target = d / rel
                if key == "file":
                    if val.get("encoding", "base64") != "base64":
                        return self._error(400, None, "hubserver only accepts base64 file content")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(base64.b64decode(val["content"]))
                elif key == "deletedFile":
                    if not target.is_file():
                        return self._error(404, "EntryNotFound", "A file with this name doesn't exist")
                    target.unlink()
                elif key == "deletedFolder":
                    shutil.rmtree(target, ignore_errors=True)
                elif key == "lfsFile":
                    blob = self.hub.lfs_store() / str(val.get("oid"))
                    if not blob.is_file():
                        return self._error(400, None, f"LFS object {val.get('oid')} was not uploaded")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(blob, target)
                else:
                    return self._error(400, None, f"unknown commit operation {key!r}")
                changed.append(rel)
            oid = self.hub.commit_sha(plural, repo_id)
            self.hub.commits.append(
                {"repo_type": _PLURAL_TO_TYPE[plural], "repo_id": repo_id, "oid": oid, "paths": changed,
                 "summary": header.get("summary")}
            )
        prefix = "" if plural == "models" else "datasets/"
        self._json({"commitUrl": f"{self.hub.url}/{prefix}{repo_id}/commit/{oid}", "commitOid": oid, "success": True})


def hub_url_for(server: HubServer, repo_type: str, repo_id: str, path: str, revision: str = "main") -> str:
    prefix = "" if _folder(repo_type) == "models" else "datasets/"
    return f"{server.url}/{prefix}{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"
