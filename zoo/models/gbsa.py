"""``gbsa``: gradient-boosted regression trees on the Cox partial likelihood.

Fitting uses scikit-survival's ``GradientBoostingSurvivalAnalysis`` with
``loss="coxph"``, so the prediction is a log-hazard:
``risk = sum_i lr_i * value_i(leaf of x in tree i)`` (the init is zero for
this loss; ``lr_i`` is the learning rate, times the tree's scale when
``dropout_rate > 0``). What is saved: every tree's node arrays
(:mod:`zoo.models._trees`), the leaf values and the per-tree factors as
safetensors; prediction walks the trees in numpy and equals scikit-survival's
to float precision (a test checks it). Survival curves: the Breslow baseline
of the training rows (as scikit-survival's own for this loss).
"""
from __future__ import annotations

import numpy as np

from omicsdata.errors import SchemaMismatchError

from ..registry import register_model
from ..sklearn_base import TabularSurvivalEstimator, require_sksurv
from . import _trees


class BoostedTrees:
    """``risk = sum_i factor_i * value[leaf_i(x)]``, trees added in order (as scikit-learn does)."""

    def __init__(self, nodes: dict, value: np.ndarray, factor: np.ndarray, n_features: int):
        self.nodes, self.value, self.factor, self.n_features = nodes, value, factor, int(n_features)

    def risk(self, X) -> np.ndarray:
        leaves = _trees.apply(self.nodes, X)
        out = np.zeros(leaves.shape[0], dtype=np.float64)
        for i in range(leaves.shape[1]):
            out += self.factor[i] * self.value[leaves[:, i]]
        return out

    def to_state(self):
        return {"n_features": self.n_features, "n_trees": int(self.factor.shape[0])}, \
            dict(self.nodes, value=self.value, factor=self.factor)

    @classmethod
    def from_state(cls, meta: dict, arrays: dict) -> "BoostedTrees":
        nodes = {k: np.asarray(arrays[k]) for k in _trees.NODE_ARRAYS}
        _trees.check(nodes, int(meta["n_features"]))
        value, factor = np.asarray(arrays["value"], np.float64), np.asarray(arrays["factor"], np.float64)
        if value.shape != nodes["feature"].shape or factor.shape != nodes["roots"].shape:
            raise ValueError("'value' must have one entry per node and 'factor' one per tree")
        return cls(nodes, value, factor, meta["n_features"])


@register_model("gbsa")
class GradientBoostedSurvival(TabularSurvivalEstimator):
    """Gradient-boosted Cox trees (``n_estimators``, ``learning_rate``, ``max_depth``, ``subsample``,
    ``min_samples_leaf``, ``max_features``, ``dropout_rate``); other parameters:
    :class:`zoo.sklearn_base.TabularSurvivalEstimator`."""

    predictor_class = BoostedTrees

    def __init__(self, n_estimators=200, learning_rate=0.05, max_depth=3, subsample=0.8, min_samples_leaf=5,
                 max_features="sqrt", dropout_rate=0.0, modalities=None, time_col="os_time", event_col="os_event",
                 max_features_per_modality=500, screening="cox", use_masks=True, min_overlap=0.5, random_state=0,
                 progress=False):
        super().__init__(modalities=modalities, time_col=time_col, event_col=event_col,
                         max_features_per_modality=max_features_per_modality, screening=screening,
                         use_masks=use_masks, min_overlap=min_overlap, random_state=random_state, progress=progress)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.dropout_rate = dropout_rate

    def _fit_arrays(self, X, time, event):
        require_sksurv("gbsa")
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis
        from sksurv.util import Surv

        gb = _fast_cox_boosting(GradientBoostingSurvivalAnalysis)(
            loss="coxph", n_estimators=int(self.n_estimators), learning_rate=float(self.learning_rate),
            max_depth=self.max_depth, subsample=float(self.subsample), min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, dropout_rate=float(self.dropout_rate),
            random_state=int(self.random_state or 0))
        gb.fit(X, Surv.from_arrays(event, time))
        if gb.init_ != "zero" or gb.estimators_.shape[1] != 1:
            raise SchemaMismatchError("GradientBoostedSurvival: unexpected boosting layout (init or several trees "
                                      "per stage); refusing to save what numpy could not reproduce")
        trees = [e.tree_ for e in gb.estimators_[:, 0]]
        scale = np.asarray(getattr(gb, "_scale", np.ones(len(trees))), dtype=np.float64)[:len(trees)]
        factor = gb.learning_rate * scale if hasattr(gb, "_scale") else np.full(len(trees), gb.learning_rate)
        self.sk_model_ = gb
        value = np.concatenate([t.value[:, 0, 0] for t in trees]).astype(np.float64)
        return BoostedTrees(_trees.pack(trees), value, factor, X.shape[1])


def _fast_cox_boosting(base):
    """scikit-survival's booster with the O(n log n) Cox loss of :mod:`zoo.models.gbsa_loss` (same values)."""
    from .gbsa_loss import fast_coxph_class

    loss_cls = fast_coxph_class()

    class FastCoxBoosting(base):
        def _get_loss(self, sample_weight):
            return loss_cls() if self.loss == "coxph" else super()._get_loss(sample_weight)

    FastCoxBoosting.__name__ = base.__name__
    return FastCoxBoosting
