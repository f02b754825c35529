"""The usual scverse preprocessing of raw counts, streamed and fitted on train rows only.

The recipe is scanpy's defaults (``sc.pp.normalize_total``, ``sc.pp.log1p``,
``sc.pp.highly_variable_genes(flavor="seurat", n_top_genes=...)``), computed
over row blocks so the matrix is never in memory whole:

1. *fit* (train rows only, two streamed passes): the median total count of the
   train cells is the normalisation target (scanpy's ``target_sum=None``
   takes the median over the cells it is given: here the train cells); then
   per-gene mean and unbiased variance of the normalised counts of the train
   cells give scanpy's seurat-flavour normalised dispersion (log dispersion,
   z-scored within 20 equal-width bins of log1p mean; a bin with one gene gets
   1, genes with zero dispersion are never chosen), and the ``n_top_genes``
   highest are kept;
2. *transform* (every row, block by block): ``log1p(counts / total * target)``
   on the kept genes.

scanpy's own functions need the matrix in memory, so they are not called on
the stream; ``tests/test_import_anndata.py`` checks this module against them
(same target, same genes, same values) when scanpy is installed (extra
``omicszoo[scverse]``). What was fitted goes to the store's manifest.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

RECIPE = "scverse: normalize_total(target_sum=median of train totals) -> log1p -> " \
         "highly_variable_genes(flavor='seurat', n_top_genes) fitted on train rows; subset to those genes"


def _totals(block) -> np.ndarray:
    return np.asarray(block.sum(axis=1), dtype=np.float64).ravel()


def _normalise(block, totals: np.ndarray, target: float):
    """``block / total * target`` per row (rows with total 0 stay 0), float32 like scanpy."""
    scale = np.zeros_like(totals)
    nz = totals > 0
    scale[nz] = target / totals[nz]
    if sp.issparse(block):
        out = sp.csr_matrix(block, dtype=np.float32, copy=True)
        out.data *= np.repeat(scale, np.diff(out.indptr)).astype(np.float32)
        return out
    return (np.asarray(block, dtype=np.float32) * scale[:, None].astype(np.float32))


def seurat_hvg(mean: np.ndarray, var: np.ndarray, n_top_genes: int, n_bins: int = 20) -> pd.DataFrame:
    """scanpy's seurat-flavour selection from per-gene mean and unbiased variance of normalised counts."""
    mean = np.array(mean, dtype=np.float64)
    mean[mean == 0] = 1e-12
    disp = np.asarray(var, dtype=np.float64) / mean
    disp[disp == 0] = np.nan
    disp = np.log(disp)
    lmean = np.log1p(mean)
    df = pd.DataFrame({"means": lmean, "dispersions": disp})
    df["mean_bin"] = pd.cut(df["means"], bins=n_bins)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0.0
    per_gene = stats.loc[df["mean_bin"]].set_index(df.index)
    df["dispersions_norm"] = (df["dispersions"] - per_gene["avg"]) / per_gene["dev"]
    norm = df["dispersions_norm"].to_numpy(dtype=np.float64)
    finite = norm[~np.isnan(norm)]
    n = min(int(n_top_genes), finite.size)
    cut = np.sort(finite)[::-1][n - 1] if n > 0 else np.inf
    df["highly_variable"] = np.nan_to_num(norm, nan=-np.inf) >= cut
    return df.drop(columns="mean_bin")


def fit(train_blocks: Callable[[], Iterable], n_genes: int, n_top_genes: int = 2000) -> dict:
    """Fit the recipe on the train rows. ``train_blocks()`` yields row blocks (CSR or ndarray) of train
    cells only; it is called twice (totals, then gene moments). Returns what :func:`transform` needs."""
    totals = np.concatenate([_totals(b) for b in train_blocks()] or [np.zeros(0)])
    nonzero = totals[totals > 0]
    if nonzero.size == 0:
        raise ValueError("every train cell has zero counts")
    target = float(np.median(nonzero))
    s1 = np.zeros(n_genes)
    s2 = np.zeros(n_genes)
    n = 0
    for b in train_blocks():
        x = _normalise(b, _totals(b), target)
        if sp.issparse(x):
            s1 += np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
            s2 += np.asarray(x.multiply(x).sum(axis=0), dtype=np.float64).ravel()
        else:
            x64 = x.astype(np.float64)
            s1 += x64.sum(axis=0)
            s2 += (x64 * x64).sum(axis=0)
        n += x.shape[0]
    mean = s1 / max(n, 1)
    var = s2 / max(n, 1) - mean ** 2
    if n > 1:
        var *= n / (n - 1)
    hvg = seurat_hvg(mean, var, min(n_top_genes, n_genes))
    keep = np.flatnonzero(hvg["highly_variable"].to_numpy())
    return {"target_sum": target, "n_train_cells": int(n), "n_top_genes": int(n_top_genes),
            "keep": keep, "stats": hvg}


def transform(block, fitted: dict):
    """``log1p(normalised counts)`` of a row block, on the kept genes (CSR stays CSR)."""
    x = _normalise(block, _totals(block), fitted["target_sum"])
    keep = fitted["keep"]
    if sp.issparse(x):
        x = x[:, keep]
        x.data = np.log1p(x.data)
        return sp.csr_matrix(x)
    return np.log1p(x[:, keep])


def manifest_record(fitted: dict, var_names) -> dict:
    """What the manifest keeps: the recipe, the fitted target and the genes kept."""
    keep = fitted["keep"]
    return {"recipe": RECIPE, "target_sum": fitted["target_sum"], "log1p_base": "e",
            "hvg_flavor": "seurat", "n_top_genes": fitted["n_top_genes"], "n_bins": 20,
            "fitted_on": "train", "n_train_cells": fitted["n_train_cells"], "n_genes_in": int(len(var_names)),
            "n_genes_kept": int(len(keep)), "genes_kept": [str(var_names[i]) for i in keep]}
