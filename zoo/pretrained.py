"""Pretrained models: a catalog entry -> fetched files -> a verified estimator.

The top of the zoo's three persistence layers (it points down only):
:mod:`zoo.checkpoint` (the folder format) <- :mod:`zoo.hub` (transfer) <- here.

An entry (:mod:`zoo.catalog`) names a ``source``; its ``kind`` picks a
:class:`Source` class from :data:`SOURCE_KINDS`: ``hf`` (a Hugging Face Hub
repo, through ``huggingface_hub``: ``HF_ENDPOINT`` picks the server) or ``http``
(plain files under a base URL, through :mod:`omicsdata.sources.http`: resume,
retries, ``$OMICSDATA_HTTP_MIRROR``). Without ``convert`` the source holds a zoo
checkpoint, fetched file by file and sha256-checked. With ``convert: {name:
<converter>, ...options}`` the converter registered under that name
(:mod:`zoo.converters`) turns the upstream files into a zoo checkpoint in
``<OMICSDATA_HOME>/models/<name>/<revision>/<variant>/``, once; converted
weights are never uploaded anywhere.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path

from omicsdata import paths
from omicsdata.errors import SchemaMismatchError
from omicsdata.sources import http as od_http

from . import hub
from .catalog import entry as catalog_entry
from .catalog import model_entries
from .checkpoint import CONFIG, FILES, load_dir, save
from .converters import get_converter

_SHA = re.compile(r"^[0-9a-f]{40}$")


class UnpinnedModelWarning(UserWarning):
    """A catalog model entry has no pinned commit or no sha256 for a file it fetched."""


class Source:
    """Where an entry's files come from. Subclasses implement ``list_files`` and ``_fetch``.

    ``fetch(path)`` checks the sha256 the entry lists for ``path`` (if any) and
    remembers the files it fetched without one, for :meth:`warn_unpinned`.
    """

    kind = ""

    def __init__(self, name: str, spec: dict, files: list[dict], revision: str | None = None,
                 hub_kw: dict | None = None):
        self.name, self.spec = name, spec
        self.hub_kw = dict(hub_kw or {})  # token / cache_dir / local_files_only / force_download
        self.revision = revision or spec.get("revision") or "main"
        self.files = files
        self._sha = {f["path"]: f.get("sha256") for f in files}
        self.unhashed: list[str] = []

    def list_files(self) -> list[str]:  # pragma: no cover - abstract
        """Every file path the source offers at this revision."""
        raise NotImplementedError

    def _fetch(self, path: str, sha256: str | None) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    def fetch(self, path: str) -> Path:
        """The local copy of ``path``, verified against the entry's sha256 for it when listed."""
        sha = self._sha.get(path)
        if not sha:
            self.unhashed.append(path)
        return self._fetch(path, sha)

    def describe(self) -> dict:
        """A small JSON dict naming the source (recorded in converted checkpoints)."""
        return {"kind": self.kind, "revision": self.revision}

    def pinned(self) -> bool:
        """True when the revision is an immutable id."""
        return False

    def warn_unpinned(self) -> None:
        """Warn once if the revision is not pinned or a fetched file had no sha256."""
        problems = []
        if not self.pinned():
            problems.append(f"revision '{self.revision}' is not a commit sha")
        if self.unhashed:
            problems.append(f"no sha256 for {', '.join(self.unhashed[:3])}")
        if problems:
            warnings.warn(f"model '{self.name}': entry is not pinned ({'; '.join(problems)}); "
                          "what is downloaded may change", UnpinnedModelWarning, stacklevel=4)


class HFSource(Source):
    """``source: {kind: hf, repo_id, revision, repo_type?, subfolder?}``: a Hugging Face Hub repo."""

    kind = "hf"

    @property
    def repo_id(self) -> str:
        return self.spec["repo_id"]

    @property
    def repo_type(self) -> str:
        return self.spec.get("repo_type", "model")

    def list_files(self) -> list[str]:
        return hub.list_files(self.repo_id, revision=self.revision, repo_type=self.repo_type, **self.hub_kw)

    def _fetch(self, path: str, sha256: str | None) -> Path:
        return hub.download(self.repo_id, path, revision=self.revision, repo_type=self.repo_type, sha256=sha256,
                            **self.hub_kw)

    def describe(self) -> dict:
        return {"repo_id": self.repo_id, "revision": self.revision}

    def pinned(self) -> bool:
        return bool(_SHA.match(self.revision))


class HTTPSource(Source):
    """``source: {kind: http, url, revision?}``: files at ``<url>/<path>`` for the entry's ``files``.

    ``{revision}`` in ``url`` is replaced by the revision (so ``zoo.load(name, revision=...)``
    works for URLs that embed a commit). Downloads go through
    :func:`omicsdata.sources.http.download` (``$OMICSDATA_HTTP_MIRROR`` applies; resumed,
    retried, sha256-checked) into ``<OMICSDATA_HOME>/raw/http-models/``. HTTP has no
    listing: :meth:`list_files` is the entry's ``files``.
    """

    kind = "http"

    @property
    def url(self) -> str:
        return self.spec["url"].replace("{revision}", self.revision).rstrip("/")

    def list_files(self) -> list[str]:
        return [f["path"] for f in self.files]

    def _fetch(self, path: str, sha256: str | None) -> Path:
        parts = path.split("/")
        if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise SchemaMismatchError(f"model '{self.name}': file path '{path}' must be relative, without '..'")
        if self.url.startswith("file://"):  # a local copy of the layout: checked in place, not copied
            local = Path(self.url[len("file://"):]) / path
            if not local.is_file():
                raise SchemaMismatchError(f"model '{self.name}': {local} not found")
            od_http.verify_file(local, sha256=sha256, name=str(local))
            return local
        key = hashlib.sha1(self.url.encode()).hexdigest()[:12]
        dest = paths.raw_dir("http-models") / key / path
        return od_http.download(f"{self.url}/{path}", dest, sha256=sha256)

    def describe(self) -> dict:
        return {"kind": "http", "url": self.url, "revision": self.revision}

    def pinned(self) -> bool:
        return bool(_SHA.match(self.revision)) and self.revision in self.url


SOURCE_KINDS: dict[str, type[Source]] = {"hf": HFSource, "http": HTTPSource}


def _hub_kwargs(kw: dict) -> dict:
    """Split ``ModelHubMixin``'s download keywords out of ``kw`` (removed from it)."""
    return {k: kw.pop(k) for k in hub.HUB_KWARGS if k in kw}


def open_source(name: str, e: dict, revision: str | None = None, **hub_kw) -> Source:
    """The :class:`Source` of catalog entry ``e`` (named ``name``) at ``revision`` (default: the entry's).

    ``hub_kw`` (``token``, ``cache_dir``, ``local_files_only``, ``force_download``) reach huggingface_hub
    for ``hf`` sources; an ``http`` source accepts and ignores them.
    """
    kind = e["source"]["kind"]
    if kind not in SOURCE_KINDS:
        raise SchemaMismatchError(f"model '{name}': source kind '{kind}' is not supported "
                                  f"(supported: {', '.join(sorted(SOURCE_KINDS))})")
    return SOURCE_KINDS[kind](name, e["source"], list(e.get("files") or []), revision=revision, hub_kw=hub_kw)


def local_dir(name: str, revision: str) -> Path:
    """``<OMICSDATA_HOME>/models/<name>/<revision>``: where converted checkpoints are cached."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in revision)
    return paths.home() / "models" / name / safe


def _fetch_checkpoint(name: str, src: Source) -> Path:
    sub = src.spec.get("subfolder", "").strip("/")
    listed = [f["path"] for f in src.files] or [f"{sub}/{f}" if sub else f for f in FILES]
    got = {p: src.fetch(p) for p in listed}
    src.warn_unpinned()
    cfg = [p for k, p in got.items() if k.endswith(CONFIG)]
    if not cfg:
        raise SchemaMismatchError(f"model '{name}': entry files list no {CONFIG}")
    return Path(cfg[0]).parent


def _convert(name: str, e: dict, src: Source, force: bool) -> Path:
    options = {k: v for k, v in e["convert"].items() if k != "name"}
    conv = get_converter(e["convert"]["name"])
    conv.check_options(options, f"model '{name}'")
    target = local_dir(name, src.revision) / conv.variant(options)
    if (target / CONFIG).is_file() and not force:
        return target
    with paths.locked(f"model-{name}-{src.revision}-{target.name}"):
        with paths.atomic_path(target) as tmp:
            conv(src, tmp, options, e)
    src.warn_unpinned()
    return target


def download(name: str, revision: str | None = None, force: bool = False, **hub_kw) -> Path:
    """Fetch (and, for an upstream format, convert) catalog model ``name``; returns the checkpoint folder.

    ``hub_kw``: ``token``, ``cache_dir``, ``local_files_only``, ``force_download`` (huggingface_hub's);
    ``force_download`` also redoes the conversion.
    """
    e = catalog_entry(name)
    src = open_source(name, e, revision, **hub_kw)
    if e.get("convert"):
        return _convert(name, e, src, force or bool(hub_kw.get("force_download")))
    return _fetch_checkpoint(name, src)


def load(name: str, revision: str | None = None, expected_cls=None, device: str | None = None, force: bool = False,
         **hub_kw):
    """The estimator of catalog model ``name`` (downloaded, verified, converted if needed).

    Accepts ``ModelHubMixin``'s keywords: ``token``, ``cache_dir``, ``local_files_only``, ``force_download``.
    """
    _check_hub_kwargs(hub_kw)
    est = load_dir(download(name, revision=revision, force=force, **hub_kw), expected_cls=expected_cls, device=device)
    est.catalog_name_ = name
    return est


def _check_hub_kwargs(kw: dict) -> None:
    bad = sorted(set(kw) - set(hub.HUB_KWARGS))
    if bad:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(bad)}; accepted: revision, device, "
                        f"{', '.join(hub.HUB_KWARGS)}")


def snapshot_checkpoint(repo_id: str, revision: str | None = None, repo_type: str = "model", **hub_kw) -> Path:
    """Download a zoo checkpoint repo (only its checkpoint files) and return the folder."""
    return hub.snapshot(repo_id, revision=revision, repo_type=repo_type, allow_patterns=list(FILES), **hub_kw)


def load_any(name_or_path, revision: str | None = None, expected_cls=None, **kw):
    """A checkpoint folder, a catalog model name, or a Hub repo id (``owner/name``).

    ``kw``: ``device`` and ``ModelHubMixin``'s ``token``, ``cache_dir``, ``local_files_only``,
    ``force_download`` (passed to huggingface_hub).
    """
    hub_kw = _hub_kwargs(kw)
    device = kw.pop("device", None)
    _check_hub_kwargs(kw)
    p = Path(os.fspath(name_or_path)).expanduser()
    if p.is_dir():
        return load_dir(p, expected_cls=expected_cls, device=device)
    s = str(name_or_path)
    if s in model_entries():
        return load(s, revision=revision, expected_cls=expected_cls, device=device, **hub_kw)
    if s.count("/") == 1 and not s.startswith((".", "/")):
        return load_dir(snapshot_checkpoint(s, revision=revision, **hub_kw), expected_cls=expected_cls, device=device)
    raise SchemaMismatchError(f"{s}: not a checkpoint folder, a catalog model name or a Hub repo id (owner/name)")


def push_to_hub(est, repo_id: str, revision: str | None = None, private: bool = False,
                commit_message: str = "Upload zoo checkpoint", *, branch: str | None = None,
                create_pr: bool = False, token: str | None = None, **card) -> str:
    """Save fitted ``est`` as a checkpoint and upload it to ``repo_id``; returns the commit sha.

    ``branch`` (or ``revision``) is the target branch, ``create_pr`` opens a pull request,
    ``token`` and ``private`` go to huggingface_hub, as with ``ModelHubMixin.push_to_hub``.
    Refuses estimators converted from weights whose licence forbids sharing derivatives.
    """
    if branch and revision and branch != revision:
        raise ValueError(f"push_to_hub: branch={branch!r} and revision={revision!r} disagree; give one")
    schema = getattr(est, "schema_", None) or {}
    if schema.get("data", {}).get("redistributable") is False:
        raise SchemaMismatchError(f"{type(est).__name__}: converted from weights whose licence forbids sharing "
                                  "derivatives; it is not uploaded")
    with tempfile.TemporaryDirectory() as d:
        folder = save(est, Path(d) / "ckpt", **card)
        return hub.upload(folder, repo_id, revision=branch or revision, private=private,
                          commit_message=commit_message, token=token, create_pr=create_pr)
