"""``manifest.json``: read, validate, hash the files it lists, verify a store against it."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..catalog import validate
from ..errors import CorruptStoreError, ManifestError, StoreError
from ..hashing import sha256_file
from ..jsonutil import jsonable  # noqa: F401 (re-exported)
from .layout import MANIFEST, is_bulk_file


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (except the manifest), by relative path."""
    root = Path(root)
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if rel == MANIFEST:
                continue
            out[rel] = sha256_file(p)
    return dict(sorted(out.items()))


def write_manifest(manifest: dict, root: Path, where: str) -> None:
    """Validate ``manifest`` (errors name ``where``) and write it as ``<root>/manifest.json``."""
    validate(manifest, "store", where, error_cls=ManifestError)
    with open(Path(root) / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=False)


def read_manifest(path: str | os.PathLike) -> dict:
    """Read and validate ``<store>/manifest.json``."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise StoreError(f"{path}: not an omicsdata store (no {MANIFEST}); rebuild it with od.build(...)")
    try:
        with open(mpath) as fh:
            manifest = json.load(fh)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{mpath}: not valid JSON ({e}); rebuild the store") from None
    validate(manifest, "store", str(mpath), error_cls=ManifestError)
    return manifest


def read_remote_manifest(url: str) -> dict:
    """Read and validate the manifest of a store URL (fsspec)."""
    import fsspec

    try:
        with fsspec.open(url.rstrip("/") + "/" + MANIFEST, "rt") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise StoreError(f"{url}: not an omicsdata store (no {MANIFEST})") from None
    validate(manifest, "store", f"{url}/{MANIFEST}", error_cls=ManifestError)
    return manifest


def is_store_dir(path) -> bool:
    """True when ``path`` is a folder holding a manifest."""
    p = Path(path)
    return p.is_dir() and (p / MANIFEST).is_file()


def verify_store(path: str | os.PathLike) -> dict:
    """Re-hash every file of a store against its manifest.

    Returns a report ``{"ok": bool, "checked": n, "mismatched": [...],
    "missing": [...], "unexpected": [...]}``. Use :func:`omicsdata.verify`
    for the raising variant.
    """
    path = Path(path)
    manifest = read_manifest(path)
    expected = manifest["files"]
    actual_files = set()
    for dirpath, _, files in os.walk(path):
        for f in files:
            rel = (Path(dirpath) / f).relative_to(path).as_posix()
            if rel != MANIFEST:
                actual_files.add(rel)
    mismatched, missing = [], []
    for rel, digest in expected.items():
        p = path / rel
        if not p.is_file():
            missing.append(rel)
        elif sha256_file(p) != digest:
            mismatched.append(rel)
    unexpected = sorted(actual_files - set(expected))
    return {"ok": not (mismatched or missing or unexpected), "checked": len(expected),
            "mismatched": mismatched, "missing": missing, "unexpected": unexpected}


def check_metadata(path: str | os.PathLike, manifest: dict | None = None) -> None:
    """Re-hash the small files that opening a store reads (metadata, obs, var, obsm, uns).

    Matrix chunks and tables are skipped (``od.verify`` checks those), so this
    stays cheap for stores of any size. Raises :class:`CorruptStoreError`
    naming each bad file, with a hint to rebuild.
    """
    path = Path(path)
    manifest = manifest or read_manifest(path)
    bad = []
    for rel, digest in manifest["files"].items():
        if is_bulk_file(rel):
            continue
        p = path / rel
        if not p.is_file() or sha256_file(p) != digest:
            bad.append(rel)
    if bad:
        raise CorruptStoreError(
            f"{path}: {len(bad)} metadata file(s) missing or not matching the manifest: {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}; the store is corrupt, rebuild it with "
            f"od.build('{manifest.get('dataset', path.name)}', force=True)", bad)


def chunk_location(rel: str) -> tuple[str, str]:
    """``(array, chunk)`` of a store file: ``mod/rna/X/c/3/0`` -> ``("mod/rna/X", "c/3/0")``."""
    head, sep, tail = rel.partition("/c/")
    return (head, "c/" + tail) if sep else (rel.rsplit("/", 1)[0], rel.rsplit("/", 1)[-1])


def _all_files(root: str) -> set[str]:
    """Relative paths (``/``-separated) of every file under ``root``: one ``os.scandir`` walk."""
    out: set[str] = set()
    stack = [("", root)]
    while stack:
        rel, full = stack.pop()
        with os.scandir(full) as it:
            for e in it:
                name = rel + e.name
                if e.is_dir(follow_symlinks=False):
                    stack.append((name + "/", e.path))
                else:
                    out.add(name)
    return out


def check_chunks(path: str | os.PathLike, manifest: dict | None = None) -> int:
    """Every file the manifest lists exists (one directory walk, nothing read or hashed).

    Zarr reads a missing chunk as its fill value (zeros), so a deleted chunk
    would be served as data; this catches it at open. Raises
    :class:`CorruptStoreError` naming the dataset, the array and the chunk,
    with the rebuild hint. Returns how many files were checked.
    """
    path = Path(path)
    manifest = manifest or read_manifest(path)
    present = _all_files(str(path))
    missing = [rel for rel in manifest["files"] if rel not in present]
    if missing:
        name = manifest.get("dataset", path.name)
        array, chunk = chunk_location(missing[0])
        more = f" (and {len(missing) - 1} more missing file(s))" if len(missing) > 1 else ""
        raise CorruptStoreError(
            f"dataset '{name}': store {path}: array '{array}' lacks chunk '{chunk}' ({path / missing[0]}){more}; "
            f"zarr would read it as zeros, so the store is refused; rebuild it with od.build('{name}', force=True)",
            missing)
    return len(manifest["files"])


def store_nbytes(manifest: dict) -> int:
    """Uncompressed bytes of all matrices described by a manifest."""
    total = 0
    for m in manifest["modalities"].values():
        n, p = m["shape"]
        total += n * p * np.dtype(m["dtype"]).itemsize
    return total
