"""Attributions of an estimator's output to its input features or modalities.

``explain(model, data, method=..., groups=...)`` returns a tidy DataFrame
with columns ``sample, modality, feature, attribution`` (``feature`` is
``"*"`` for ``groups="modality"``). For survival models the explained output
is the risk (log-hazard; positive attribution = pushes towards shorter
survival); for classifiers the logit of ``target`` (a class name or index;
default: each sample's predicted class).

Methods (all in the preprocessed, standardised input space, whose baseline
- all zeros - is the training mean, i.e. "an average patient"):

* ``integrated_gradients``: (x - baseline) x the mean gradient along the
  straight path, ``n_steps`` trapezoid points; attributions sum to
  f(x) - f(baseline) up to the discretisation error.
* ``saliency``: the gradient at x, times the input (gradient x input).
* ``ablation``: f(x) - f(x with the group set to the baseline); one forward
  pass per group, so with ``groups="feature"`` it costs one pass per feature.

Memory is bounded: samples go through in batches of ``batch_size`` and the
integrated-gradient path in chunks of ``chunk_steps`` points.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from omicsdata.errors import SchemaMismatchError

from . import data as zdata
from .align import align_mudata

METHODS = ("integrated_gradients", "saliency", "ablation")


def _output_fn(est, target):
    has_risk = est.has_survival_
    classes = list(est.schema_["tasks"].get("classification", {}).get("classes", []))
    if target in (None, "risk") and has_risk:
        return lambda out: out["risk"]
    if not classes:
        raise SchemaMismatchError(f"target {target!r}: the model has no classification head")
    if target is None:
        return lambda out: out["logits"].gather(1, out["logits"].argmax(1, keepdim=True)).squeeze(1)
    k = classes.index(str(target)) if not isinstance(target, int) else int(target)
    return lambda out: out["logits"][:, k]


def explain(est, data, split=None, method: str = "integrated_gradients", groups: str = "feature",
            target=None, n_steps: int = 32, batch_size: int = 64, chunk_steps: int = 8,
            top_k: int | None = None) -> pd.DataFrame:
    """Tidy attributions (sample, modality, feature, attribution); see the module docstring."""
    if method not in METHODS:
        raise SchemaMismatchError(f"method must be one of {METHODS}, got {method!r}")
    if groups not in ("feature", "modality"):
        raise SchemaMismatchError(f"groups must be 'feature' or 'modality', got {groups!r}")
    est._check_fitted()
    mdata = zdata.resolve(data)
    alignment = align_mudata(est.schema_["modalities"], mdata, min_overlap=est.min_overlap,
                             where=type(est).__name__ + ".explain")
    mods = list(est.schema_["modalities"])
    present = [m for m, a in alignment.items() if a is not None]
    align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
    rows = zdata.select_rows(mdata, split)
    source = zdata.batches(mdata, None, present, batch_size, device=est.device_, use_stream=False, rows=rows)
    module = est.module_.eval()
    f = _output_fn(est, target)
    names = np.asarray(mdata.obs_names)
    frames = []
    for raw in source:
        inp = est.preprocessor_(raw, align)
        x = {m: inp[m] for m in mods}
        rest = {k: v for k, v in inp.items() if k not in x}
        attr = _attribute(est, module, f, x, rest, method, groups, n_steps, chunk_steps)
        samples = names[inp["index"].cpu().numpy()]
        for m in mods:
            a = attr[m]
            if groups == "modality":
                frames.append(pd.DataFrame({"sample": samples, "modality": m, "feature": "*", "attribution": a}))
            else:
                feats = np.asarray(est.schema_["modalities"][m]["features"], dtype=object)
                B, P = a.shape
                frames.append(pd.DataFrame({"sample": np.repeat(samples, P), "modality": m,
                                            "feature": np.tile(feats, B), "attribution": a.ravel()}))
    df = pd.concat(frames, ignore_index=True)
    if top_k:
        df = (df.assign(_abs=df["attribution"].abs()).sort_values(["sample", "_abs"], ascending=[True, False])
                .groupby("sample", sort=False).head(top_k).drop(columns="_abs").reset_index(drop=True))
    return df


def _forward(est, module, f, x, rest):
    return f(est.forward(module, {**x, **rest}))


def _attribute(est, module, f, x, rest, method, groups, n_steps, chunk_steps) -> dict:
    mods = list(x)
    if method == "ablation":
        with torch.no_grad():
            full = _forward(est, module, f, x, rest)
            out = {}
            for m in mods:
                if groups == "modality":
                    z = dict(x, **{m: torch.zeros_like(x[m])})
                    out[m] = (full - _forward(est, module, f, z, rest)).cpu().numpy()
                else:
                    P = x[m].shape[1]
                    cols = []
                    for j in range(P):
                        xm = x[m].clone()
                        xm[:, j] = 0
                        cols.append((full - _forward(est, module, f, dict(x, **{m: xm}), rest)).cpu())
                    out[m] = torch.stack(cols, 1).numpy()
        return _group(out, groups)
    if method == "saliency":
        xs = {m: v.detach().clone().requires_grad_(True) for m, v in x.items()}
        y = _forward(est, module, f, xs, rest)
        grads = torch.autograd.grad(y.sum(), [xs[m] for m in mods])
        return _group({m: (g * x[m]).detach().cpu().numpy() for m, g in zip(mods, grads)}, groups)
    # integrated gradients, baseline 0 (the training mean), trapezoid rule
    alphas = torch.linspace(0, 1, n_steps + 1, device=next(iter(x.values())).device)
    w = torch.ones_like(alphas)
    w[0] = w[-1] = 0.5
    w = w / n_steps
    total = {m: torch.zeros_like(v) for m, v in x.items()}
    B = next(iter(x.values())).shape[0]
    for s in range(0, len(alphas), chunk_steps):
        a = alphas[s:s + chunk_steps]
        k = len(a)
        xs = {m: (a.view(k, 1, 1) * v.unsqueeze(0)).reshape(k * B, -1).detach().requires_grad_(True)
              for m, v in x.items()}
        rr = {kk: vv.repeat(k, *([1] * (vv.dim() - 1))) for kk, vv in rest.items()}
        y = _forward(est, module, f, xs, rr)
        grads = torch.autograd.grad(y.sum(), [xs[m] for m in mods])
        ws = w[s:s + chunk_steps].view(k, 1, 1)
        for m, g in zip(mods, grads):
            total[m] += (g.view(k, B, -1) * ws).sum(0)
    return _group({m: (total[m] * x[m]).detach().cpu().numpy() for m in mods}, groups)


def _group(attr: dict, groups: str) -> dict:
    if groups == "modality":
        return {m: (a.sum(1) if a.ndim == 2 else a) for m, a in attr.items()}
    return attr
