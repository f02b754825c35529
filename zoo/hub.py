"""Hub transfer for the zoo: download, snapshot and upload files, nothing model-specific.

All transfers go through :mod:`omicsdata.sources.hf` (``huggingface_hub``
underneath), so ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and the Hub
cache behave as users expect. A file given with a sha256 is checked after
download (a mismatch raises :class:`omicsdata.errors.ChecksumError` naming the
file). Which files make a checkpoint, and what to do with them, is decided
above this layer (:mod:`zoo.pretrained`).
"""
from __future__ import annotations

import os
from pathlib import Path

from omicsdata.sources import hf

HUB_KWARGS = ("token", "cache_dir", "local_files_only", "force_download")
"""``ModelHubMixin``-style keyword arguments passed through to huggingface_hub (besides ``revision``)."""


def download(repo_id: str, filename: str, *, revision: str | None = None, repo_type: str = "model",
             sha256: str | None = None, **hub_kw) -> Path:
    """One file of ``repo_id`` at ``revision`` (from the Hub cache when there), sha256-checked when given.

    ``hub_kw``: any of :data:`HUB_KWARGS`, passed to ``hf_hub_download``.
    """
    return hf.download_file(repo_id, filename, repo_type=repo_type, revision=revision, sha256=sha256, **hub_kw)


def list_files(repo_id: str, *, revision: str | None = None, repo_type: str = "model", **hub_kw) -> list[str]:
    """Paths of every file in ``repo_id`` at ``revision`` (``token``, ``cache_dir``, ``local_files_only``)."""
    hub_kw.pop("force_download", None)  # a listing has nothing to re-download
    return hf.list_files(repo_id, repo_type=repo_type, revision=revision, **hub_kw)


def snapshot(repo_id: str, *, revision: str | None = None, repo_type: str = "model",
             allow_patterns: list[str] | None = None, **hub_kw) -> Path:
    """Download the files of ``repo_id`` matching ``allow_patterns``; returns the local snapshot folder."""
    return hf.snapshot(repo_id, repo_type=repo_type, revision=revision, allow_patterns=allow_patterns, **hub_kw)


def upload(folder: str | os.PathLike, repo_id: str, *, revision: str | None = None, repo_type: str = "model",
           private: bool = False, commit_message: str = "Upload", token: str | None = None,
           create_pr: bool = False) -> str:
    """Upload every file of ``folder`` to ``repo_id`` (created when missing); returns the commit sha.

    ``revision`` is the target branch (created when missing); ``create_pr`` opens a pull request.
    """
    return hf.upload_folder(folder, repo_id, repo_type=repo_type, revision=revision, commit_message=commit_message,
                            private=private, token=token, create_pr=create_pr)
