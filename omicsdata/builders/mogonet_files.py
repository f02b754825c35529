"""The MOGONET authors' data layout: fetch it over HTTP and read it into a MuData.

Shared by the ``mogonet-rosmap`` and ``mogonet-brca`` builders (and usable on a
local copy, e.g. by benchmarks). The layout, per dataset folder ``<DS>``
(``ROSMAP``, ``BRCA``) under a base URL or folder::

    <DS>/1_tr.csv  <DS>/1_te.csv  ... <DS>/3_tr.csv  <DS>/3_te.csv   comma-separated floats, no header,
                                                                     one row per sample
    <DS>/1_featname.csv ... <DS>/3_featname.csv                       one feature name per line, no header
    <DS>/labels_tr.csv  <DS>/labels_te.csv                            one float class code per line

Views: 1 = mRNA, 2 = DNA methylation, 3 = miRNA. Rows of ``<v>_tr.csv`` and
``labels_tr.csv`` are the same samples in the same order (likewise ``_te``).
No sample identifiers are published: samples are named ``train-0000`` ...,
``test-0000`` ... in file order.

Every file is downloaded through :func:`omicsdata.sources.http.download`
(resume, retries, ``$OMICSDATA_HTTP_MIRROR``) and checked against the sha256
the catalog card pins for it (``source.files``: ``{"<DS>/<file>": sha256}``);
files without a pin are hashed and reported in the build report (``unpinned``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import paths
from ..errors import BuildError, FormatError
from ..sources import http
from ..splits import assign_splits

VIEWS = {1: "mrna", 2: "methylation", 3: "mirna"}
FEATURE_KINDS = {"mrna": "mRNA expression (preprocessed by the authors)",
                 "methylation": "DNA methylation (preprocessed by the authors)",
                 "mirna": "miRNA expression (preprocessed by the authors)"}


def file_names(views=VIEWS) -> list[str]:
    """The file names of one dataset folder, in download order."""
    out = []
    for v in views:
        out += [f"{v}_tr.csv", f"{v}_te.csv", f"{v}_featname.csv"]
    return out + ["labels_tr.csv", "labels_te.csv"]


def _is_local(base: str) -> bool:
    return base.startswith("file://") or "://" not in base


def _local_path(base: str) -> Path:
    return Path(base[len("file://"):] if base.startswith("file://") else base).expanduser()


def fetch(base_url: str, folder: str, pins: dict | None = None, cache: Path | None = None) -> tuple[dict, dict]:
    """Download (or locate, for a local folder / ``file://``) the files of ``<base_url>/<folder>/``.

    Returns ``({file name: local Path}, {"sha256": {relpath: digest}, "unpinned": [relpath, ...]})``.
    Pinned files are checked (a mismatch raises :class:`~omicsdata.errors.ChecksumError`
    naming the file; nothing is kept); unpinned ones are hashed for the report.
    """
    pins = dict(pins or {})
    base = str(base_url).rstrip("/")
    got, digests, unpinned = {}, {}, []
    if cache is None and not _is_local(base):
        key = hashlib.sha1(base.encode()).hexdigest()[:12]
        cache = paths.raw_dir("url") / "mogonet" / key
    for name in file_names():
        rel = f"{folder}/{name}"
        sha = pins.get(rel)
        if _is_local(base):
            p = _local_path(base) / folder / name
            if not p.is_file():
                raise BuildError(f"{p}: file of the MOGONET layout not found (expected {rel} under {base})")
            if sha:
                http.verify_file(p, sha256=sha, name=str(p))
        else:
            p = http.download(f"{base}/{rel}", Path(cache) / folder / name, sha256=sha)
        got[name] = p
        digests[rel] = sha or _sha256(p)
        if not sha:
            unpinned.append(rel)
    return got, {"sha256": digests, "unpinned": unpinned}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _first_bad_line(path: Path, n_cols: int | None) -> tuple[int, str]:
    with open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                return i, "empty line"
            cells = line.rstrip("\r\n").split(",")
            if n_cols is not None and len(cells) != n_cols:
                return i, f"{len(cells)} values, expected {n_cols} (as on line 1)"
            for j, c in enumerate(cells):
                try:
                    float(c)
                except ValueError:
                    return i, f"value {j + 1} '{c[:30]}' is not a number"
    return 0, "unreadable"


def read_matrix(path) -> np.ndarray:
    """A comma-separated float matrix without header (float32); errors name the file and line."""
    path = Path(path)
    try:
        with open(path) as fh:
            first = fh.readline()
    except OSError as e:
        raise FormatError(path, f"cannot read: {e}") from None
    if not first.strip():
        raise FormatError(path, "empty file: expected comma-separated numbers, one sample per line", line=1)
    n_cols = len(first.rstrip("\r\n").split(","))
    try:
        X = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        line, why = _first_bad_line(path, n_cols)
        raise FormatError(path, why, line=line or None) from None
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise FormatError(path, f"value {c + 1} is {X[r, c]} (not finite)", line=int(r) + 1)
    return X.astype(np.float32)


def read_labels(path) -> np.ndarray:
    """Class codes (int64) from a one-float-per-line file; non-integral or negative codes are refused."""
    path = Path(path)
    y = read_matrix(path)
    if y.shape[1] != 1:
        raise FormatError(path, f"{y.shape[1]} values per line, expected one label per line", line=1)
    y = y[:, 0].astype(np.float64)
    bad = np.flatnonzero((y != np.round(y)) | (y < 0))
    if bad.size:
        raise FormatError(path, f"label {float(y[bad[0]])!r} is not a class code (a non-negative integer)",
                          line=int(bad[0]) + 1)
    return y.astype(np.int64)


def read_featnames(path) -> list[str]:
    """Feature names, one per line (blank lines refused)."""
    path = Path(path)
    names = path.read_text().splitlines()
    while names and not names[-1].strip():
        names.pop()
    for i, n in enumerate(names, 1):
        if not n.strip():
            raise FormatError(path, "empty feature name", line=i)
    return [n.strip() for n in names]


def unique_names(names: list[str]) -> tuple[list[str], int]:
    seen: dict[str, int] = {}
    out, dup = [], 0
    for n in names:
        if n in seen:
            seen[n] += 1
            dup += 1
            out.append(f"{n}-{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out, dup


def assemble(files: dict, classes: list[str], val_fraction: float = 0.2, seed: int = 0, where: str = "dataset"):
    """Read the fetched files into a MuData: one modality per view, obs ``label`` / ``label_code`` /
    ``split`` (``train``/``val``/``test``) / ``published_split`` (``train``/``test``).

    ``val`` is carved from the published training samples, stratified by label and seeded;
    ``val_fraction=0`` keeps the published training set whole. Returns ``(mdata, report)``.
    """
    import anndata as ad

    from ..storage.settings import new_mudata

    if not 0 <= val_fraction < 1:
        raise BuildError(f"{where}: val_fraction must be in [0, 1), got {val_fraction}")
    y_tr, y_te = read_labels(files["labels_tr.csv"]), read_labels(files["labels_te.csv"])
    n_tr, n_te = len(y_tr), len(y_te)
    for part, y in (("labels_tr.csv", y_tr), ("labels_te.csv", y_te)):
        if y.size and y.max() >= len(classes):
            raise FormatError(files[part], f"class code {int(y.max())} but the card names {len(classes)} classes "
                                           f"({', '.join(classes)})")
    names = [f"train-{i:04d}" for i in range(n_tr)] + [f"test-{i:04d}" for i in range(n_te)]
    mods, report = {}, {"n_train": n_tr, "n_test": n_te, "features": {}, "duplicate_feature_names": {}}
    for v, mod in VIEWS.items():
        tr, te = read_matrix(files[f"{v}_tr.csv"]), read_matrix(files[f"{v}_te.csv"])
        feats = read_featnames(files[f"{v}_featname.csv"])
        for part, X, n in ((f"{v}_tr.csv", tr, n_tr), (f"{v}_te.csv", te, n_te)):
            if X.shape[0] != n:
                raise FormatError(files[part], f"{X.shape[0]} rows but labels_{part[2:4]}.csv has {n} labels")
            if X.shape[1] != len(feats):
                raise FormatError(files[part], f"{X.shape[1]} columns but {v}_featname.csv names {len(feats)} "
                                               "features")
        feats, dup = unique_names(feats)
        if dup:
            report["duplicate_feature_names"][mod] = dup
        report["features"][mod] = len(feats)
        mods[mod] = ad.AnnData(X=np.vstack([tr, te]), obs=pd.DataFrame(index=names), var=pd.DataFrame(index=feats))
    codes = np.concatenate([y_tr, y_te])
    published = np.array(["train"] * n_tr + ["test"] * n_te, dtype=object)
    split = published.copy()
    if val_fraction > 0:
        split[:n_tr] = assign_splits(np.array(names[:n_tr], dtype=object), y_tr,
                                     {"train": 1 - val_fraction, "val": val_fraction}, seed)
    obs = pd.DataFrame({
        "sample_id": np.array(names, dtype=object),
        "label": pd.Categorical.from_codes(codes, categories=list(classes)),
        "label_code": codes.astype(np.int64),
        "published_split": pd.Categorical(published, categories=["train", "test"]),
        "split": pd.Categorical(split, categories=["train", "val", "test"]),
    }, index=names)
    mdata = new_mudata(mods, obs)
    report["split_counts"] = {k: int((split == k).sum()) for k in ("train", "val", "test")}
    report["class_counts"] = {c: int((codes == i).sum()) for i, c in enumerate(classes)}
    return mdata, report


def read_folder(folder, dataset: str, classes: list[str], val_fraction: float = 0.2, seed: int = 0):
    """A local copy of the layout (``<folder>/<dataset>/...``) as a MuData (see :func:`assemble`)."""
    files, _ = fetch(os.fspath(folder), dataset)
    return assemble(files, classes, val_fraction=val_fraction, seed=seed, where=str(folder))[0]


def build_from_card(card, folder: str, classes: list[str], base_url: str | None = None,
                    val_fraction: float = 0.2, seed: int = 0):
    """What both builders do: fetch ``<base_url>/<folder>/`` with the card's pins, assemble, report.

    ``classes``: the class names in code order. The card gives the default base URL
    (``source.location``) and the sha256 pins (``source.files``).
    """
    from . import BuildResult

    base = base_url or card["source"]["location"]
    files, fetched = fetch(base, folder, pins=card["source"].get("files"))
    mdata, report = assemble(files, classes, val_fraction=val_fraction, seed=seed, where=card.name)
    report.update({"base_url": base, "mirror": http.mirror_url(f"{base}/{folder}/") if not _is_local(base) else None,
                   **fetched})
    return BuildResult(mdata=mdata, report=report, feature_kinds=dict(FEATURE_KINDS))


def write_synthetic(root, dataset: str = "ROSMAP", n_train: int = 60, n_test: int = 30,
                    n_features=(20, 20, 10), n_classes: int = 2, signal: float = 1.5, seed: int = 0,
                    informative: int = 3) -> dict:
    """Write a SIMULATED dataset in exactly the authors' layout under ``<root>/<dataset>/``.

    For tests and benchmarks (no real data). Each view holds non-negative
    features; in every view the first ``informative`` features of class ``k``
    are shifted by ``signal`` times a class-specific pattern, the rest are noise.
    Floats are written as ``np.savetxt`` does by default (``%.18e``, comma
    separated), as the authors' labels files are. Returns ``{"labels_tr",
    "labels_te", "views": {v: (X_tr, X_te)}, "featnames": {v: [...]}}``.
    """
    rng = np.random.default_rng(seed)
    out = Path(root) / dataset
    out.mkdir(parents=True, exist_ok=True)
    y_tr = np.arange(n_train) % n_classes
    y_te = np.arange(n_test) % n_classes
    rng.shuffle(y_tr)
    rng.shuffle(y_te)
    res: dict = {"labels_tr": y_tr, "labels_te": y_te, "views": {}, "featnames": {}}
    for v, p in zip(VIEWS, n_features):
        k = min(informative, p)
        pattern = rng.normal(size=(n_classes, k))
        mats = []
        for y in (y_tr, y_te):
            X = rng.normal(size=(len(y), p))
            X[:, :k] += signal * pattern[y]
            mats.append(np.abs(X + 3.0))  # positive, like expression / beta values
        names = [f"{VIEWS[v]}_{j:04d}" for j in range(p)]
        np.savetxt(out / f"{v}_tr.csv", mats[0], delimiter=",")
        np.savetxt(out / f"{v}_te.csv", mats[1], delimiter=",")
        (out / f"{v}_featname.csv").write_text("\n".join(names) + "\n")
        res["views"][v] = (mats[0].astype(np.float32), mats[1].astype(np.float32))
        res["featnames"][v] = names
    np.savetxt(out / "labels_tr.csv", y_tr.astype(float))
    np.savetxt(out / "labels_te.csv", y_te.astype(float))
    return res
