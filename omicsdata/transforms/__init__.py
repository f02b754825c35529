"""Preprocessing transforms: fitted on the training split only, stored, re-applied at predict time.

A :class:`Pipeline` is a list of steps. ``fit`` sees only the rows you pass
(the training split's rows that have the modality); ``transform`` applies the
*fitted* parameters to any data, aligning it by feature name first; the
fitted state is plain JSON (``to_dict`` / ``from_dict``), kept in the store
manifest (``mdata.uns["omicsdata"]["extra"]["transforms"][modality]``) so a
model can apply exactly the same preprocessing to new samples::

    from omicsdata.transforms import Pipeline, senmo_pipeline
    pipe = senmo_pipeline("rna")                   # or Pipeline([Log1p(), Standardize()])
    pipe.fit(adata_rna, rows=train_mask)           # statistics from training rows only
    out = pipe.transform(adata_rna)                # AnnData, features filtered + scaled
    state = pipe.to_dict()                         # JSON-serialisable
    same = Pipeline.from_dict(state)               # at predict time
    X_new = same.transform(adata_new).X            # new data aligned to state["features_in"]

Steps (all fit on training rows, NaN-aware):

===========================  =================================================================
``Log1p()``                  ``log(1 + max(x, 0))``; stateless
``MissingFilter(max_frac)``  drop features missing (NaN) in more than ``max_frac`` of rows
``Impute()``                 NaN -> training mean of the feature (0 if all missing)
``DropNearConstant(min_std)`` drop features whose training std is below ``min_std``
``VarianceFilter(...)``      keep features with variance >= ``threshold`` and/or the ``top_k`` most variable
``CorrelationPrune(thr)``    greedy: in order of decreasing variance, drop a feature whose |Pearson r|
                             with an already kept one exceeds ``thr``
``Standardize()``            ``(x - mean) / std`` with training mean and std
===========================  =================================================================

Rows of samples that lack the modality (``present=False``) are left as zero
rows and never used to fit.

The SeNMo recipe (:func:`senmo_pipeline`): drop features missing in >10 % of
training samples, impute the rest with the training mean, ``log1p`` for count
modalities (rna, mirna), drop near-constant features (std < 1e-3), keep
features with variance >= 0.2 (rna, mirna, log scale) / >= 0.001 (methylation
beta values) / all (protein), at most 5,000 most variable (mutation: genes
mutated in >= 1 % of training samples), prune correlated features at
|r| > 0.9, and standardise. SeNMo's paper describes the same sequence
(missing-value removal, low-variance and high-correlation filtering,
standardisation); the thresholds above are this package's documented
defaults, not values copied from the paper's code.
"""
from __future__ import annotations

from .core import (  # noqa: F401
    _STEPS,
    CorrelationPrune,
    DropNearConstant,
    Impute,
    Log1p,
    MissingFilter,
    Pipeline,
    Standardize,
    Step,
    VarianceFilter,
)
from .recipes import pipelines_from_spec, senmo_pipeline  # noqa: F401
