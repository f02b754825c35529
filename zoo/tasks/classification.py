"""Classification: class encoding fitted on training rows, cross-entropy, accuracy / AUROC."""
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
        res = {"accuracy": float(np.mean(p.argmax(1) == y))}
        try:
            res["auroc"] = M.auroc(y, p, list(range(p.shape[1])))
        except (OmicsDataError, ValueError):
            pass
        return res
