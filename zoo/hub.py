"""Pretrained models by name: ``catalog/models/NAME.yaml`` -> huggingface_hub -> verified estimator.

All transfers go through :mod:`omicsdata.sources.hf` (``huggingface_hub``
under the hood), so ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_TOKEN`` and the
Hub cache behave as users expect. Every file named in the entry is checked
against its sha256. ``format: zoo`` entries point at a zoo checkpoint in the
repo; ``format: senmo-upstream`` entries point at the SeNMo authors' torch
files, which are converted into ``<OMICSDATA_HOME>/models/NAME/<revision>/``
and never uploaded anywhere.
"""
from __future__ import annotations

import fnmatch
import re
import tempfile
import warnings
from pathlib import Path

from omicsdata import paths
from omicsdata.catalog import model_entries as _model_entries, unknown_message
from omicsdata.errors import SchemaMismatchError, UnknownDatasetError

from .checkpoint import CONFIG, FILES, load_dir

_SHA = re.compile(r"^[0-9a-f]{40}$")


class UnpinnedModelWarning(UserWarning):
    """A catalog model entry has no pinned commit or no sha256 for a file."""


def model_entries() -> dict:
    """``{name: (entry, path)}`` of every model catalog entry (validated)."""
    return _model_entries()


def entry(name: str) -> dict:
    """The validated catalog entry of model ``name``."""
    entries = model_entries()
    if name not in entries:
        raise UnknownDatasetError(unknown_message("model", name, list(entries)))
    return entries[name][0]


def _hf():
    from omicsdata.sources import hf

    return hf


def _warn_unpinned(name: str, e: dict, rev: str, files: list[dict]) -> None:
    problems = []
    if not _SHA.match(rev):
        problems.append(f"revision '{rev}' is not a commit sha")
    nohash = [f["path"] for f in files if not f.get("sha256")]
    if nohash:
        problems.append(f"no sha256 for {', '.join(nohash[:3])}")
    if problems:
        warnings.warn(f"model '{name}': entry is not pinned ({'; '.join(problems)}); what is downloaded may change",
                      UnpinnedModelWarning, stacklevel=3)


def local_dir(name: str, revision: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in revision)
    return paths.home() / "models" / name / safe


def download(name: str, revision: str | None = None, force: bool = False) -> Path:
    """Fetch (and for upstream weights, convert) model ``name``; returns the local checkpoint folder."""
    e = entry(name)
    src = e["source"]
    rev = revision or src["revision"]
    repo_type = src.get("repo_type", "model")
    sub = src.get("subfolder", "").strip("/")
    hf = _hf()
    if e["format"] == "zoo":
        files = e.get("files") or [{"path": f"{sub}/{f}" if sub else f} for f in FILES]
        _warn_unpinned(name, e, rev, files)
        got = {}
        for f in files:
            got[f["path"]] = hf.download_file(src["repo_id"], f["path"], repo_type=repo_type, revision=rev,
                                              sha256=f.get("sha256"))
        cfg = [p for k, p in got.items() if k.endswith(CONFIG)]
        if not cfg:
            raise SchemaMismatchError(f"model '{name}': entry files list no {CONFIG}")
        return Path(cfg[0]).parent
    # senmo-upstream: convert locally, once per revision and fold
    conv = dict(e.get("convert", {}))
    fold = int(conv.get("fold", 1))
    target = local_dir(name, rev) / f"fold-{fold}"
    if (target / CONFIG).is_file() and not force:
        return target
    files = e.get("files") or []
    if not files:
        listed = hf.list_files(src["repo_id"], repo_type=repo_type, revision=rev)
        pts = sorted(p for p in listed if fnmatch.fnmatch(p, "*.pt") or fnmatch.fnmatch(p, "*.pth"))
        if not pts:
            raise SchemaMismatchError(f"model '{name}': repo {src['repo_id']}@{rev} has no .pt files")
        files = [{"path": p, "fold": i + 1} for i, p in enumerate(pts)]
    pick = [f for f in files if f.get("fold", 1) == fold]
    if not pick:
        raise SchemaMismatchError(f"model '{name}': no file for fold {fold} (folds: {[f.get('fold') for f in files]})")
    _warn_unpinned(name, e, rev, pick)
    pt = hf.download_file(src["repo_id"], pick[0]["path"], repo_type=repo_type, revision=rev,
                          sha256=pick[0].get("sha256"))
    features = None
    if conv.get("features_file"):
        from .convert_senmo import read_features_file

        ff = [f for f in (e.get("files") or []) if f["path"] == conv["features_file"]]
        features = read_features_file(hf.download_file(src["repo_id"], conv["features_file"], repo_type=repo_type,
                                                       revision=rev, sha256=ff[0].get("sha256") if ff else None))
    from omicsdata.paths import atomic_path

    from .convert_senmo import convert

    with paths.locked(f"model-{name}-{rev}-{fold}"):
        with atomic_path(target) as tmp:
            convert(pt, tmp, features=features, activation=conv.get("activation", "elu"),
                    source={"repo_id": src["repo_id"], "revision": rev, "file": pick[0]["path"], "fold": fold},
                    license=e.get("license"))
    return target


def load(name: str, revision: str | None = None, expected_cls=None, device: str | None = None, force: bool = False):
    """The estimator of catalog model ``name`` (downloaded, verified, converted if needed)."""
    folder = download(name, revision=revision, force=force)
    est = load_dir(folder, expected_cls=expected_cls, device=device)
    est.catalog_name_ = name
    return est


def snapshot_checkpoint(repo_id: str, revision: str | None = None, repo_type: str = "model") -> Path:
    """Download a zoo checkpoint repo (only its checkpoint files) and return the folder."""
    return _hf().snapshot(repo_id, repo_type=repo_type, revision=revision, allow_patterns=list(FILES))


def push_to_hub(est, repo_id: str, revision: str | None = None, private: bool = False,
                commit_message: str = "Upload zoo checkpoint", **card) -> str:
    """Save ``est`` and upload the checkpoint folder to ``repo_id``; returns the commit sha."""
    est._check_fitted()
    if est.schema_.get("data", {}).get("redistributable") is False:
        raise SchemaMismatchError(f"{type(est).__name__}: converted from weights whose licence forbids sharing "
                                  "derivatives; it is not uploaded")
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "ckpt"
        est.save_pretrained(folder, **card)
        return _hf().upload_folder(folder, repo_id, repo_type="model", revision=revision,
                                   commit_message=commit_message, private=private)
