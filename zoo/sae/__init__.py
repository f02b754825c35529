"""Sparse autoencoders over the hidden layers of zoo models (issue 17): :class:`SparseAutoencoder`.

Modules: :mod:`.core` (the estimator-like class), :mod:`.net` (the top-k
module), :mod:`.activations` (hooks and activation streams),
:mod:`.attribution` (gradient x input per latent), :mod:`.enrichment`
(label enrichment and its permutation null).
"""
from .core import SparseAutoencoder
from .enrichment import auroc_table, max_auroc, max_auroc_null

__all__ = ["SparseAutoencoder", "auroc_table", "max_auroc", "max_auroc_null"]
