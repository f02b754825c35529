"""Running a fitted estimator over data: outputs per row, MC dropout, feature alignment, store recipe."""
from __future__ import annotations

import numpy as np
import torch

from . import arrays
from . import data as zdata
from .align import align_mudata
from .preprocess import apply_recipe

_DROPOUTS = (torch.nn.Dropout, torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout)


def enable_dropout(module: torch.nn.Module) -> None:
    """Put every dropout layer of ``module`` in training mode (MC dropout)."""
    for m in module.modules():
        if isinstance(m, _DROPOUTS):
            m.train()


@torch.no_grad()
def collect(est, module, source, alignment, mc_samples: int = 0) -> dict:
    """Run ``module`` over a raw source; outputs as numpy, with ``index``; MC dropout if ``mc_samples``."""
    module.eval()
    if mc_samples:
        enable_dropout(module)
    risks, probas, idx = [], [], []
    for raw in source:
        inputs = est.preprocessor_(raw, alignment)
        idx.append(inputs["index"].cpu().numpy())
        rr, pp = [], []
        for _ in range(max(1, mc_samples)):
            out = est.forward(module, inputs)
            if "risk" in out:
                rr.append(out["risk"].float().cpu().numpy())
            if "logits" in out:
                pp.append(torch.softmax(out["logits"].float(), -1).cpu().numpy())
        if rr:
            risks.append(np.stack(rr, 0))
        if pp:
            probas.append(np.stack(pp, 0))
    module.eval()
    res: dict[str, np.ndarray] = {"index": np.concatenate(idx) if idx else np.zeros(0, np.int64)}
    if risks:
        r = np.concatenate(risks, 1)
        res["risk"], res["risk_std"] = r.mean(0), r.std(0)
    if probas:
        p = np.concatenate(probas, 1)
        res["proba"], res["proba_std"] = p.mean(0), p.std(0)
    return res


def prepare_input(est, data, where: str):
    """The input as a MuData with the model's store recipe applied where it lacks it."""
    return apply_recipe(est.schema_.get("preprocessing", {}).get("recipe"), zdata.resolve(data), where)


def predict_outputs(est, data, split=None, mc_samples: int = 0, required=None) -> tuple[dict, object]:
    """Every output (``risk``, ``proba`` and their MC std) for the ``split`` rows, in row order,
    and the prepared MuData they were computed on."""
    where = type(est).__name__ + ".predict"
    data = arrays.input_of(est, data, None, where)
    arrays.check_width(est, data, where)
    mdata = prepare_input(est, data, where)
    alignment = align_mudata(est.schema_["modalities"], mdata, required=required, min_overlap=est.min_overlap,
                             where=where)
    rows = zdata.select_rows(mdata, split)
    mods = [m for m, a in alignment.items() if a is not None]
    source = zdata.batches(mdata, split, mods, max(est.batch_size, 256), device=est.device_,
                           use_stream=est.use_stream)
    align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
    out = collect(est, est.module_, source, align, mc_samples)
    pos = np.searchsorted(rows, out["index"])
    res = {"index": rows, "obs_names": np.asarray(mdata.obs_names[rows])}
    for k, v in out.items():
        if k == "index":
            continue
        arr = np.empty((len(rows),) + v.shape[1:], dtype=v.dtype)
        arr[pos] = v
        res[k] = arr
    return res, mdata
