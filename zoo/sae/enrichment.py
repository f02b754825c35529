"""Which labels a latent tracks: one-vs-rest AUROC per (class, latent) with a Mann-Whitney z statistic.

For latent ``j`` and class ``c``, the AUROC is the probability that a random
sample of class ``c`` has a higher activation than a random sample of the
other classes (ties count one half); ``z`` is the Mann-Whitney U statistic's
normal approximation with the tie correction (sparse codes tie heavily at 0),
``p`` its one-sided upper-tail p-value (activation higher in the class).
A latent that never fires has AUROC 0.5 and z 0.

:func:`max_auroc_null` gives the permutation null of the largest AUROC over
all (class, latent) pairs: the labels are shuffled, the ranks kept.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from omicsdata.errors import SchemaMismatchError


def _labels(labels) -> tuple[np.ndarray, np.ndarray]:
    lab = pd.Series(np.asarray(labels, dtype=object))
    ok = lab.notna().to_numpy()
    classes, codes = np.unique(lab[ok].astype(str).to_numpy(), return_inverse=True)
    full = np.full(len(lab), -1, dtype=np.int64)
    full[ok] = codes
    return classes, full


def _tie_terms(acts: np.ndarray) -> np.ndarray:
    """Per column: sum over tie groups of t^3 - t."""
    out = np.zeros(acts.shape[1])
    s = np.sort(acts, axis=0)
    for j in range(acts.shape[1]):
        _, t = np.unique(s[:, j], return_counts=True)
        t = t[t > 1].astype(np.float64)
        out[j] = float((t ** 3 - t).sum())
    return out


def auroc_table(acts: np.ndarray, labels) -> pd.DataFrame:
    """Tidy one-vs-rest enrichment of every (latent, label): ``latent, label, n_in, mean_in, mean_out,
    auroc, z, p``. Rows with a missing label are left out."""
    acts = np.asarray(acts, dtype=np.float64)
    classes, codes = _labels(labels)
    if acts.ndim != 2 or acts.shape[0] != len(codes):
        raise SchemaMismatchError(f"activations {acts.shape} and labels ({len(codes)}) do not match")
    keep = codes >= 0
    acts, codes = acts[keep], codes[keep]
    if len(classes) < 2:
        raise SchemaMismatchError(f"labels have {len(classes)} class(es); enrichment needs at least 2")
    n, L = acts.shape
    ranks = rankdata(acts, axis=0)
    ties = _tie_terms(acts)
    onehot = np.eye(len(classes))[codes]                      # (n, C)
    n1 = onehot.sum(0)[:, None]                                # (C, 1)
    n0 = n - n1
    U = onehot.T @ ranks - n1 * (n1 + 1) / 2                   # (C, L)
    auroc = U / np.maximum(n1 * n0, 1)
    var = n1 * n0 / 12.0 * ((n + 1) - ties[None, :] / max(n * (n - 1), 1))
    z = np.where(var > 1e-12, (U - n1 * n0 / 2.0) / np.sqrt(np.maximum(var, 1e-12)), 0.0)
    auroc = np.where(var > 1e-12, auroc, 0.5)
    s_in = onehot.T @ acts
    mean_in = s_in / np.maximum(n1, 1)
    mean_out = (acts.sum(0)[None, :] - s_in) / np.maximum(n0, 1)
    C = len(classes)
    return pd.DataFrame({
        "latent": np.tile(np.arange(L), C), "label": np.repeat(classes, L),
        "n_in": np.repeat(n1[:, 0].astype(int), L), "mean_in": mean_in.ravel(), "mean_out": mean_out.ravel(),
        "auroc": auroc.ravel(), "z": z.ravel(), "p": norm.sf(z).ravel()})


def max_auroc(acts: np.ndarray, labels) -> float:
    """The largest one-vs-rest AUROC over all (class, latent) pairs."""
    return float(auroc_table(acts, labels)["auroc"].max())


def max_auroc_null(acts: np.ndarray, labels, n_perm: int = 200, seed: int = 0) -> np.ndarray:
    """``n_perm`` draws of :func:`max_auroc` with the labels shuffled (seeded)."""
    acts = np.asarray(acts, dtype=np.float64)
    classes, codes = _labels(labels)
    keep = codes >= 0
    acts, codes = acts[keep], codes[keep]
    n = len(codes)
    ranks = rankdata(acts, axis=0)
    live = acts.max(0) > acts.min(0)                           # constant columns have AUROC 0.5
    rng = np.random.default_rng(seed)
    eye = np.eye(len(classes))
    out = np.empty(n_perm)
    for b in range(n_perm):
        oh = eye[rng.permutation(codes)]
        n1 = oh.sum(0)[:, None]
        U = oh.T @ ranks[:, live] - n1 * (n1 + 1) / 2
        a = U / np.maximum(n1 * (n - n1), 1)
        out[b] = max(float(a.max()) if a.size else 0.5, 0.5)
    return out
