"""Simulated multi-omics classification cohorts in MOGONET's layout (a planted, known signal).

MOGONET's public data (ROSMAP, BRCA) are three views per sample - 1 = mRNA,
2 = DNA methylation, 3 = miRNA - each a matrix of already preprocessed values
in [0, 1], one row per sample, split into train (``*_tr.csv``) and test
(``*_te.csv``). This module draws such cohorts with a planted class signal so
classifiers can be checked without the real files:

* every class has a mean profile over ``n_informative`` features of every
  view (the rest is noise around per-feature baselines);
* every sample has its own signal strength (uniform in [0, 1] times
  ``signal``), so some samples are easy and some are ambiguous - what an
  uncertainty-aware model should tell apart;
* ``shuffle_labels=True`` permutes the labels across samples after drawing
  the features: no model can then beat chance on held-out samples.

:func:`write_mogonet_layout` writes the authors' file layout (comma-separated
floats, no header; ``labels_*.csv`` one float per line; ``<v>_featname.csv``);
:func:`planted_mudata` returns the same cohort as a MuData (modalities
``mrna`` / ``methylation`` / ``mirna``, obs ``label`` and ``split`` in
train / val / test with a seeded stratified ``val`` carved from train);
:func:`read_mogonet_layout` reads a folder in that layout into such a MuData.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FormatError

VIEWS = ("mrna", "methylation", "mirna")  # the authors' views 1, 2, 3


def planted_views(n_samples: int = 300, n_classes: int = 2, n_features=(200, 200, 100), n_informative: int = 20,
                  signal: float = 1.0, noise: float = 0.12, shuffle_labels: bool = False, seed: int = 0):
    """``(views, labels)``: a list of float arrays in [0, 1] (one per view) and int labels 0..n_classes-1."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_samples) % n_classes
    rng.shuffle(labels)
    strength = rng.uniform(0.0, 1.0, n_samples) * signal
    views = []
    for p in n_features:
        base = rng.uniform(0.3, 0.7, p)
        k = min(n_informative, p)
        informative = rng.choice(p, k, replace=False)
        profile = np.zeros((n_classes, p))
        profile[:, informative] = rng.normal(0.0, 0.12, (n_classes, k))
        x = base + strength[:, None] * profile[labels] + rng.normal(0.0, noise, (n_samples, p))
        views.append(np.clip(x, 0.0, 1.0).astype(np.float64))
    if shuffle_labels:
        labels = rng.permutation(labels)
    return views, labels


def _stratified_val(labels: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels[rows]):
        r = rows[labels[rows] == c]
        n = int(round(len(r) * fraction))
        if n:
            val.extend(rng.choice(r, n, replace=False).tolist())
    return np.asarray(sorted(val), dtype=np.int64)


def to_mudata(views_tr, views_te, labels_tr, labels_te, featnames=None, class_names=None,
              val_fraction: float = 0.15, seed: int = 0, modalities=VIEWS):
    """A MuData over train + test rows (``obs['split']`` train / val / test, ``obs['label']`` class names)."""
    import anndata as ad

    from .storage.settings import new_mudata

    n_tr, n_te = len(labels_tr), len(labels_te)
    labels = np.concatenate([np.asarray(labels_tr, int), np.asarray(labels_te, int)])
    names = class_names or [f"class_{c}" for c in range(int(labels.max()) + 1)]
    split = np.array(["train"] * n_tr + ["test"] * n_te, dtype=object)
    if val_fraction:
        split[_stratified_val(labels, np.arange(n_tr), val_fraction, seed)] = "val"
    obs_names = [f"s{i:05d}" for i in range(n_tr + n_te)]
    mods = {}
    for i, m in enumerate(modalities):
        X = np.concatenate([views_tr[i], views_te[i]]).astype(np.float32)
        var = featnames[i] if featnames else [f"{m}_{j}" for j in range(X.shape[1])]
        mods[m] = ad.AnnData(X=X, obs=pd.DataFrame(index=obs_names), var=pd.DataFrame(index=pd.Index(var, dtype=str)))
    mdata = new_mudata(mods)
    mdata.obs["label"] = pd.Categorical([names[c] for c in labels], categories=names)
    mdata.obs["split"] = split
    return mdata


def planted_mudata(n_train: int = 240, n_test: int = 100, val_fraction: float = 0.15, seed: int = 0, **kw):
    """The planted cohort as a MuData (see the module docstring); ``kw`` go to :func:`planted_views`."""
    views, labels = planted_views(n_train + n_test, seed=seed, **kw)
    return to_mudata([v[:n_train] for v in views], [v[n_train:] for v in views], labels[:n_train], labels[n_train:],
                     val_fraction=val_fraction, seed=seed)


def write_mogonet_layout(folder, n_train: int = 240, n_test: int = 100, seed: int = 0, **kw) -> Path:
    """Write a planted cohort in the authors' layout (``1_tr.csv`` .. ``labels_te.csv``) under ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    views, labels = planted_views(n_train + n_test, seed=seed, **kw)
    for i, x in enumerate(views, start=1):
        np.savetxt(folder / f"{i}_tr.csv", x[:n_train], delimiter=",")
        np.savetxt(folder / f"{i}_te.csv", x[n_train:], delimiter=",")
        (folder / f"{i}_featname.csv").write_text("".join(f"{VIEWS[i - 1]}_{j}\n" for j in range(x.shape[1])))
    np.savetxt(folder / "labels_tr.csv", labels[:n_train].astype(float))
    np.savetxt(folder / "labels_te.csv", labels[n_train:].astype(float))
    return folder


def _load(path: Path, ndim: int) -> np.ndarray:
    try:
        arr = np.loadtxt(path, delimiter=",", ndmin=ndim)
    except FileNotFoundError:
        raise FormatError(path, "file not found (expected MOGONET's layout: 1_tr.csv .. 3_te.csv, "
                                "labels_tr.csv, labels_te.csv)") from None
    except ValueError as e:
        raise FormatError(path, f"not comma-separated numbers ({e})") from None
    return arr


def read_mogonet_layout(folder, val_fraction: float = 0.15, seed: int = 0, class_names=None):
    """A folder in the authors' layout (views 1..3, labels, featnames) as a MuData (see :func:`to_mudata`)."""
    folder = Path(folder)
    tr = [_load(folder / f"{i}_tr.csv", 2) for i in (1, 2, 3)]
    te = [_load(folder / f"{i}_te.csv", 2) for i in (1, 2, 3)]
    y_tr, y_te = _load(folder / "labels_tr.csv", 1), _load(folder / "labels_te.csv", 1)
    for i in range(3):
        if tr[i].shape[0] != len(y_tr) or te[i].shape[0] != len(y_te):
            raise FormatError(folder / f"{i + 1}_tr.csv", f"{tr[i].shape[0]} train / {te[i].shape[0]} test rows but "
                                                          f"{len(y_tr)} / {len(y_te)} labels")
        if tr[i].shape[1] != te[i].shape[1]:
            raise FormatError(folder / f"{i + 1}_te.csv", f"{te[i].shape[1]} columns, train has {tr[i].shape[1]}")
    for path, y in (("labels_tr.csv", y_tr), ("labels_te.csv", y_te)):
        if not np.all(y == np.round(y)) or y.min() < 0:
            raise FormatError(folder / path, "labels must be non-negative integers (written as floats)")
    feats = []
    for i in (1, 2, 3):
        p = folder / f"{i}_featname.csv"
        names = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else None
        if names is not None and len(names) != tr[i - 1].shape[1]:
            raise FormatError(p, f"{len(names)} feature names for {tr[i - 1].shape[1]} columns")
        feats.append(names or [f"{VIEWS[i - 1]}_{j}" for j in range(tr[i - 1].shape[1])])
    # feature names must be unique within a view for the store; keep the first, suffix repeats
    feats = [list(pd.Index(f).where(~pd.Index(f).duplicated(), [f"{n}#{k}" for k, n in enumerate(f)])) for f in feats]
    return to_mudata(tr, te, y_tr.astype(int), y_te.astype(int), feats, class_names, val_fraction, seed)
