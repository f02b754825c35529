"""The NCI Genomic Data Commons (GDC) API: query ``/files`` and ``/cases``, download ``/data``.

The API base is ``$OMICSDATA_GDC_API`` (default: the public GDC API,
``https://api.gdc.cancer.gov``). Everything goes through
:mod:`omicsdata.sources.http` (retries with backoff, resume, md5 check).

* :meth:`GDCClient.query` POSTs JSON filters to ``/files`` or ``/cases`` and
  pages with ``size``/``from`` and an explicit ``sort`` until
  ``pagination.total`` hits are in hand (a page that comes back short of the
  total raises, instead of silently returning a partial listing).
* :meth:`GDCClient.download` fetches files into the raw cache
  ``<home>/raw/gdc/<file_id>/<file_name>``: large files one by one with
  ``GET /data/{id}`` (resumable with ``Range``), small files in batches with
  ``POST /data {"ids": [...]}`` (a ``tar.gz`` holding ``<id>/<file_name>``,
  extracted safely by :mod:`omicsdata.sources.archive`). Every file is checked
  against the API's ``md5sum`` and ``file_size`` before it gets its final name;
  files already in the cache are verified and not downloaded again, so an
  interrupted build resumes where it stopped.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable

from .. import paths
from ..errors import ChecksumError, DownloadError
from . import http
from .archive import DEFAULT_MAX_TOTAL, safe_extract

DEFAULT_API = "https://api.gdc.cancer.gov"
#: bytes allowed per file of a /data batch beyond the files themselves (MANIFEST.txt lines, tar headers)
BATCH_OVERHEAD = 64 << 10

#: GDC ``/files`` fields the builders need.
FILE_FIELDS = [
    "file_id", "file_name", "md5sum", "file_size", "data_type", "data_format", "data_category",
    "analysis.workflow_type", "access", "cases.submitter_id", "cases.project.project_id",
    "cases.samples.sample_type", "cases.samples.submitter_id",
    "associated_entities.entity_submitter_id", "associated_entities.entity_type",
]

#: GDC ``/cases`` fields for the clinical table (``diagnoses.age_at_diagnosis`` is in days). Current data
#: model: ``demographic.gender`` was removed (data dictionary v4.0.3; ``sex_at_birth`` replaces it) and since
#: data release 42 some TCGA follow-up times live in ``follow_ups.days_to_follow_up``.
CASE_FIELDS = [
    "case_id", "submitter_id", "project.project_id",
    "demographic.vital_status", "demographic.days_to_death", "demographic.sex_at_birth", "demographic.race",
    "diagnoses.days_to_last_follow_up", "diagnoses.age_at_diagnosis", "diagnoses.ajcc_pathologic_stage",
    "follow_ups.days_to_follow_up",
]


def api_base() -> str:
    """``$OMICSDATA_GDC_API`` or the public GDC API, without a trailing slash."""
    return os.environ.get("OMICSDATA_GDC_API", DEFAULT_API).rstrip("/")


def f_in(field: str, values: Iterable) -> dict:
    """GDC filter ``{"op": "in", "content": {"field": ..., "value": [...]}}``."""
    return {"op": "in", "content": {"field": field, "value": list(values)}}


def f_and(*parts: dict) -> dict:
    """GDC filter conjunction of ``parts`` (``None`` parts are skipped)."""
    return {"op": "and", "content": [p for p in parts if p]}


class GDCClient:
    """A small client of the GDC API.

    >>> c = GDCClient()                                   # base from $OMICSDATA_GDC_API
    >>> hits = c.files(["TCGA-BRCA"], "Gene Expression Quantification", "STAR - Counts")
    >>> local = c.download(hits)                          # {file_id: Path}
    """

    def __init__(self, base: str | None = None, *, page_size: int = 500,
                 policy: http.RetryPolicy = http.DEFAULT_POLICY, workers: int = 4,
                 batch_file_bytes: int = 4 << 20, batch_max_files: int = 200,
                 batch_max_bytes: int = 200 << 20, cache_dir: str | os.PathLike | None = None):
        self.base = (base or api_base()).rstrip("/")
        self.page_size = int(page_size)
        self.policy = policy
        self.workers = max(1, int(workers))
        self.batch_file_bytes = int(batch_file_bytes)
        self.batch_max_files = int(batch_max_files)
        self.batch_max_bytes = int(batch_max_bytes)
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self.sess = http.session()
        self.stats = {"downloaded": 0, "cached": 0, "batches": 0, "bytes": 0}

    @property
    def cache_dir(self) -> Path:
        return self._cache_dir or paths.raw_dir("gdc")

    # ------------------------------------------------------------------ queries
    def query(self, endpoint: str, filters: dict | None, fields: list[str], *, sort: str | None = None,
              expand: list[str] | None = None) -> list[dict]:
        """All hits of ``POST /<endpoint>`` with ``filters``, paged until ``pagination.total``."""
        sort = sort or ("file_id:asc" if endpoint == "files" else "case_id:asc")
        url = f"{self.base}/{endpoint}"
        out: list[dict] = []
        total = None
        while total is None or len(out) < total:
            body = {"filters": filters or {}, "fields": ",".join(fields), "format": "JSON",
                    "size": self.page_size, "from": len(out), "sort": sort}
            if expand:
                body["expand"] = ",".join(expand)
            doc = http.request_json("POST", url, json=body, policy=self.policy, sess=self.sess)
            try:
                data = doc["data"]
                hits = data["hits"]
                total = int(data["pagination"]["total"])
            except (KeyError, TypeError, ValueError):
                raise DownloadError(f"POST {url}: unexpected response (no data.hits / data.pagination.total): "
                                    f"{str(doc)[:200]}") from None
            if not hits and len(out) < total:
                raise DownloadError(f"POST {url}: page from={len(out)} is empty but pagination.total is {total}; "
                                    "the listing changed while paging, retry the build")
            out.extend(hits)
        return out

    def files(self, projects: Iterable[str], data_type: str, workflow_type: str | None = None,
              data_format: str | None = None, access: str = "open") -> list[dict]:
        """File hits (with :data:`FILE_FIELDS`) of one data type in ``projects``."""
        filt = f_and(
            f_in("cases.project.project_id", projects),
            f_in("data_type", [data_type]),
            f_in("analysis.workflow_type", [workflow_type]) if workflow_type else None,
            f_in("data_format", [data_format]) if data_format else None,
            f_in("access", [access]) if access else None,
        )
        return self.query("files", filt, FILE_FIELDS, sort="file_id:asc")

    def cases(self, projects: Iterable[str], fields: list[str] | None = None) -> list[dict]:
        """Case hits (clinical: demographic, diagnoses, project) of ``projects``."""
        filt = f_in("project.project_id", projects)
        return self.query("cases", filt, fields or CASE_FIELDS, sort="submitter_id:asc")

    # ---------------------------------------------------------------- downloads
    def local_path(self, hit: dict) -> Path:
        """Cache path of a file hit: ``<raw>/gdc/<file_id>/<file_name>``."""
        fid, fname = hit["file_id"], hit["file_name"]
        if "/" in fid or "/" in fname or fname in ("", ".", ".."):
            raise DownloadError(f"GDC file {fid!r}: unsafe file name {fname!r}")
        return self.cache_dir / fid / fname

    def _cached(self, hit: dict) -> bool:
        p = self.local_path(hit)
        if not p.is_file():
            return False
        try:
            http.verify_file(p, md5=hit.get("md5sum"), size=hit.get("file_size"), name=str(p))
            return True
        except ChecksumError:
            p.unlink()
            return False

    def download_one(self, hit: dict) -> Path:
        """``GET /data/{file_id}`` into the cache (resumable), md5-checked."""
        dest = self.local_path(hit)
        http.download(f"{self.base}/data/{hit['file_id']}", dest, md5=hit.get("md5sum"),
                      size=hit.get("file_size"), policy=self.policy, sess=self.sess,
                      name=f"GDC file {hit['file_id']} ({hit['file_name']})")
        self.stats["downloaded"] += 1
        self.stats["bytes"] += int(hit.get("file_size") or dest.stat().st_size)
        return dest

    def download_batch(self, hits: list[dict]) -> list[Path]:
        """``POST /data {"ids": [...]}`` -> tar.gz, safely extracted, each member md5-checked."""
        if len(hits) == 1:
            return [self.download_one(hits[0])]
        tmpdir = self.cache_dir / f"{paths.TMP_MARK}batch-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmpdir.mkdir(parents=True)
        try:
            tgz = tmpdir / "batch.tar.gz"
            expected = {f"{h['file_id']}/{h['file_name']}": int(h["file_size"])
                        for h in hits if h.get("file_size") is not None}
            # the archive holds the files (sizes known when the API gave them) plus MANIFEST.txt and tar headers
            cap = (2 * sum(expected.values()) + BATCH_OVERHEAD * (len(hits) + 4)) if len(expected) == len(hits) \
                else None
            http.download(f"{self.base}/data", tgz, method="POST",
                          json={"ids": [h["file_id"] for h in hits]}, policy=self.policy, sess=self.sess,
                          name=f"GDC batch of {len(hits)} files", max_bytes=cap)
            files = safe_extract(tgz, tmpdir / "x", expected=expected, max_member_bytes=BATCH_OVERHEAD * len(hits),
                                 max_total_bytes=sum(expected.values()) + BATCH_OVERHEAD * len(hits)
                                 if len(expected) == len(hits) else DEFAULT_MAX_TOTAL)
            by_rel = {f.relative_to(tmpdir / "x").as_posix(): f for f in files}
            out = []
            for h in hits:
                rel = f"{h['file_id']}/{h['file_name']}"
                src = by_rel.get(rel)
                if src is None:
                    raise DownloadError(f"GDC batch: archive lacks member '{rel}' (has: {', '.join(sorted(by_rel)[:5])})")
                http.verify_file(src, md5=h.get("md5sum"), size=h.get("file_size"),
                                 name=f"GDC file {h['file_id']} ({h['file_name']}) in a /data batch")
                dest = self.local_path(h)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dest)
                out.append(dest)
                self.stats["downloaded"] += 1
                self.stats["bytes"] += int(h.get("file_size") or dest.stat().st_size)
            self.stats["batches"] += 1
            return out
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def plan(self, hits: list[dict]) -> list[list[dict]]:
        """Group hits into download jobs: small files batched, large ones alone."""
        jobs, cur, cur_bytes = [], [], 0
        for h in sorted(hits, key=lambda h: h["file_id"]):
            size = int(h.get("file_size") or 0)
            if size > self.batch_file_bytes or self.batch_max_files <= 1:
                jobs.append([h])
                continue
            if cur and (len(cur) >= self.batch_max_files or cur_bytes + size > self.batch_max_bytes):
                jobs.append(cur)
                cur, cur_bytes = [], 0
            cur.append(h)
            cur_bytes += size
        if cur:
            jobs.append(cur)
        return jobs

    def download(self, hits: list[dict], progress: bool = False) -> dict[str, Path]:
        """Download every hit not yet in the cache; return ``{file_id: local path}``."""
        out: dict[str, Path] = {}
        todo = []
        for h in hits:
            if self._cached(h):
                out[h["file_id"]] = self.local_path(h)
                self.stats["cached"] += 1
            else:
                todo.append(h)
        jobs = self.plan(todo)
        bar = None
        if progress and jobs:
            from ..progress import bar as progress_bar
            bar = progress_bar(total=len(todo), desc="GDC download", unit="file")
        with cf.ThreadPoolExecutor(self.workers) as ex:
            futs = {ex.submit(self.download_batch, job): job for job in jobs}
            try:
                for fut in cf.as_completed(futs):
                    job = futs[fut]
                    for h, p in zip(job, fut.result()):
                        out[h["file_id"]] = p
                    if bar:
                        bar.update(len(job))
            except BaseException:
                for f in futs:
                    f.cancel()
                raise
            finally:
                if bar:
                    bar.close()
        return out
