"""Classification: class encoding fitted on training rows, cross-entropy, and the metrics every classifier reports.

``evaluate`` metrics (:meth:`ClassificationTask.metrics`): ``accuracy``,
``macro_f1``, ``auroc`` (binary, or one-vs-rest macro), ``ece`` (expected
calibration error of the top-class probability, 15 equal-width bins) and
``accuracy_cov50`` / ``accuracy_cov80`` / ``accuracy_cov100``: the accuracy on
the 50 / 80 / 100% of samples the model is most sure of. Sureness is the
model's own ``uncertainty`` output when it has one (lower = surer, e.g.
:class:`zoo.SGUQ`), else the top-class probability.
"""
from __future__ import annotations

import numpy as np
import torch

from omicsdata.errors import OmicsDataError, SchemaMismatchError

from .base import Task, register_task


@register_task("classification")
class ClassificationTask(Task):
    """Target: obs column ``label_col``; outputs ``logits`` (train) / ``proba`` (collected)."""

    target_dtypes = {"label": torch.long}

    def requested(self, est) -> dict | None:
        return {"label_col": est.label_col} if getattr(est, "label_col", None) else None

    def fit(self, spec: dict, obs, train_rows: np.ndarray) -> dict:
        col = obs[spec["label_col"]]
        vals = set(col.iloc[train_rows].dropna().astype(str))
        if hasattr(col, "cat"):
            classes = [str(c) for c in col.cat.categories if str(c) in vals]
        else:
            classes = sorted(vals)
        if len(classes) < 2:
            raise SchemaMismatchError(f"label column '{spec['label_col']}' has {len(classes)} class(es) in the "
                                      "training rows; need at least 2")
        return dict(spec, classes=classes)

    def targets(self, spec: dict, obs) -> dict[str, np.ndarray]:
        if spec["label_col"] not in obs.columns:
            return {}
        lab = obs[spec["label_col"]].astype(object).to_numpy()
        lookup = {str(k): i for i, k in enumerate(spec["classes"])}
        codes = np.array([lookup.get(str(v), -1) if v is not None and v == v else -1 for v in lab], dtype=np.int64)
        return {"label": codes, "label_raw": lab}

    def loss(self, est, outputs: dict, targets: dict):
        if "logits" not in outputs or "label" not in targets:
            return None
        y = targets["label"]
        ok = y >= 0
        if not bool(ok.any()):
            return None
        return torch.nn.functional.cross_entropy(outputs["logits"][ok], y[ok])

    def validation_score(self, est, outputs: dict, targets: dict):
        if "proba" not in outputs or "label" not in targets:
            return None
        ok = targets["label"] >= 0
        return float(np.mean(outputs["proba"][ok].argmax(1) == targets["label"][ok]))

    def metrics(self, est, outputs: dict, targets: dict) -> dict:
        from .. import metrics as M

        if "proba" not in outputs or "label" not in targets:
            return {}
        ok = targets["label"] >= 0
        y, p = targets["label"][ok], outputs["proba"][ok]
        pred = p.argmax(1)
        res = {"accuracy": float(np.mean(pred == y))}
        from sklearn.metrics import f1_score

        res["macro_f1"] = float(f1_score(y, pred, labels=list(range(p.shape[1])), average="macro", zero_division=0))
        try:
            res["auroc"] = M.auroc(y, p, list(range(p.shape[1])))
        except (OmicsDataError, ValueError):
            pass
        res["ece"] = expected_calibration_error(y, p)
        unc = outputs.get("uncertainty")
        conf = -np.asarray(unc)[ok] if unc is not None else p.max(1)
        for cov, acc in zip(COVERAGES, coverage_curve(y, pred, conf, COVERAGES)[1]):
            res[f"accuracy_cov{int(round(cov * 100))}"] = acc
        return res


COVERAGES = (0.5, 0.8, 1.0)


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """ECE of the top-class probability: sum over equal-width bins of |accuracy - confidence| x bin share."""
    y, proba = np.asarray(y), np.asarray(proba, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    conf, correct = proba.max(1), (proba.argmax(1) == y).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        sel = bins == b
        ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def coverage_curve(y, pred, confidence, coverages=None):
    """``(coverages, accuracies)``: accuracy on the ``ceil(c * n)`` most confident samples for each ``c``.

    ``confidence``: higher = surer (ties keep the input order). Default
    coverages: 5% steps from 5% to 100%.
    """
    y, pred, confidence = np.asarray(y), np.asarray(pred), np.asarray(confidence, dtype=np.float64)
    cov = np.asarray(coverages if coverages is not None else np.linspace(0.05, 1.0, 20), dtype=np.float64)
    if len(y) == 0:
        return cov.tolist(), [float("nan")] * len(cov)
    correct = (pred == y)[np.argsort(-confidence, kind="stable")]
    k = np.maximum(1, np.ceil(cov * len(y) - 1e-9).astype(int))
    cum = np.cumsum(correct)
    return cov.tolist(), [float(cum[i - 1] / i) for i in k]
