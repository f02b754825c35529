"""Simulated single-cell counts with planted cell types, rare types and donors.

:func:`make_cells` draws a raw-count AnnData (what a user's ``.h5ad`` holds
before any preprocessing) whose truth is known, for the tests of the importer,
the cell classifiers and the sparse autoencoder:

* every cell type has its own ``n_markers`` marker genes whose expression is
  multiplied by ``signal`` in that type (``var['marker_of']`` names the type a
  gene marks, ``""`` for background genes);
* the last ``n_rare`` types are rare: each is drawn ``rare_weight`` times as
  often as a common type (with 6 types, 2 rare, ``rare_weight=0.1``: ~2.4 %
  of cells each);
* every donor has a mild gene-wise batch effect (log-normal, sd
  ``donor_effect``) and every cell its own library size (log-normal around
  ``depth``), so a model must see through depth and donor;
* counts are gamma-Poisson (negative binomial, ``dispersion``) - sparse and
  over-dispersed like UMI counts;
* ``shuffle_labels=True`` permutes ``cell_type`` across cells after drawing
  the counts: no classifier can then beat chance on held-out cells.

X is a ``scipy.sparse.csr_matrix`` of float32 integer counts; obs has
``cell_type`` and ``donor`` (categoricals) and ``n_counts``; ``uns['synth']``
records the parameters. Cells are drawn in blocks so large data sets do not
need a dense ``n_cells x n_genes`` array.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["make_cells", "type_weights"]


def type_weights(n_types: int, n_rare: int, rare_weight: float) -> np.ndarray:
    """Probabilities of the cell types: common types weigh 1, the last ``n_rare`` weigh ``rare_weight``."""
    n_rare = max(0, min(int(n_rare), n_types - 1))
    w = np.ones(n_types, dtype=np.float64)
    if n_rare:
        w[n_types - n_rare:] = float(rare_weight)
    return w / w.sum()


def make_cells(n_cells: int = 2000, n_genes: int = 500, n_types: int = 6, n_donors: int = 4, seed: int = 0, *,
               n_rare: int | None = None, rare_weight: float = 0.1, n_markers: int = 10, signal: float = 4.0,
               depth: float = 1500.0, dispersion: float = 0.3, donor_effect: float = 0.2,
               shuffle_labels: bool = False, block: int = 20000):
    """A raw-count AnnData with planted cell types (see the module docstring).

    ``n_rare`` defaults to ``n_types // 3`` (0 for fewer than 3 types).
    Every type has at least 2 cells when ``n_cells >= 2 * n_types``.
    """
    import anndata as ad

    if n_cells < 1 or n_genes < 1 or n_types < 1 or n_donors < 1:
        raise ValueError("make_cells: n_cells, n_genes, n_types and n_donors must be >= 1")
    if n_types * n_markers > n_genes:
        raise ValueError(f"make_cells: n_types * n_markers = {n_types * n_markers} > n_genes = {n_genes}")
    rng = np.random.default_rng(seed)
    if n_rare is None:
        n_rare = n_types // 3 if n_types >= 3 else 0
    probs = type_weights(n_types, n_rare, rare_weight)

    # labels: guarantee every type a few cells, then draw the rest by weight
    floor = 2 if n_cells >= 2 * n_types else 0
    labels = np.concatenate([np.repeat(np.arange(n_types), floor),
                             rng.choice(n_types, n_cells - floor * n_types, p=probs)])
    rng.shuffle(labels)
    donors = rng.integers(0, n_donors, n_cells)

    # gene profiles: heavy-tailed baseline proportions, marker genes per type
    base = rng.lognormal(mean=0.0, sigma=1.5, size=n_genes)
    marker_genes = rng.permutation(n_genes)[: n_types * n_markers].reshape(n_types, n_markers)
    fold = np.ones((n_types, n_genes))
    for t in range(n_types):
        fold[t, marker_genes[t]] = signal
        # markers should be visible: lift very low baselines to at least the median
    base[marker_genes.ravel()] = np.maximum(base[marker_genes.ravel()], np.median(base))
    donor_fx = rng.lognormal(mean=0.0, sigma=donor_effect, size=(n_donors, n_genes))

    blocks = []
    for start in range(0, n_cells, block):
        stop = min(start + block, n_cells)
        lab, don = labels[start:stop], donors[start:stop]
        prof = base[None, :] * fold[lab] * donor_fx[don]
        prof /= prof.sum(axis=1, keepdims=True)
        lib = rng.lognormal(mean=np.log(depth), sigma=0.4, size=stop - start)
        mu = prof * lib[:, None]
        lam = rng.gamma(shape=1.0 / dispersion, scale=mu * dispersion)
        counts = rng.poisson(lam).astype(np.float32)
        blocks.append(sp.csr_matrix(counts))
    X = sp.vstack(blocks, format="csr").astype(np.float32)

    type_names = np.array([f"type_{t}" for t in range(n_types)])
    if shuffle_labels:
        labels = rng.permutation(labels)
    obs = pd.DataFrame({
        "cell_type": pd.Categorical(type_names[labels], categories=list(type_names)),
        "donor": pd.Categorical([f"donor_{d}" for d in donors], categories=[f"donor_{d}" for d in range(n_donors)]),
        "n_counts": np.asarray(X.sum(axis=1)).ravel().astype(np.float32),
    }, index=[f"cell_{i:06d}" for i in range(n_cells)])
    marker_of = np.array([""] * n_genes, dtype=object)
    for t in range(n_types):
        marker_of[marker_genes[t]] = type_names[t]
    var = pd.DataFrame({"marker_of": marker_of.astype(str)}, index=[f"gene_{g:05d}" for g in range(n_genes)])
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.uns["synth"] = {
        "generator": "omicsdata.synth_cells.make_cells", "seed": int(seed), "n_types": int(n_types),
        "n_rare": int(n_rare), "rare_weight": float(rare_weight), "n_markers": int(n_markers),
        "signal": float(signal), "depth": float(depth), "dispersion": float(dispersion),
        "donor_effect": float(donor_effect), "shuffle_labels": bool(shuffle_labels),
        "rare_types": [str(t) for t in type_names[n_types - n_rare:]] if n_rare else [],
    }
    return adata
