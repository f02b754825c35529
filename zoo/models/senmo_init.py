"""SeNMo's ``linear_init="coxnet"``: the linear skip path warm-started from a penalised Cox fit.

The zoo's ``coxnet`` (elastic net, alpha by its inner cross-validation) is
fitted on SeNMo's own design: every training row given to ``fit`` (the
early-stopping rows carved out of them included: the penalised Cox has its own
inner CV, and the frozen linear term is the same in every epoch the early
stopping compares; never a validation split the caller named, never test
rows), after SeNMo's preprocessing and screening,
with the presence flags as extra columns when ``use_masks`` (the same input
that :class:`zoo.models.senmo_net.SeNMoNet` sees). Its coefficients become
``skip.weight`` of every ensemble member (one fit shared by the ensemble);
the MLP term then trains as a residual starting at zero.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .. import data as zdata

LINEAR_INITS = (None, "coxnet")
#: the warm-started linear term's learning rate relative to ``lr`` (0: frozen, the default;
#: ``SENMO_LINEAR_INIT_LR_FACTOR`` overrides it, for ablations)
LINEAR_INIT_LR_FACTOR = float(os.environ.get("SENMO_LINEAR_INIT_LR_FACTOR", "0"))


def design_matrix(est, mdata, rows: np.ndarray) -> np.ndarray:
    """SeNMo's preprocessed network input for ``rows`` (features in schema order, then presence flags)."""
    mods = list(est.schema_["modalities"])
    parts = []
    src = zdata.batches(mdata, None, mods, 4096, use_stream=False, rows=np.asarray(rows))
    for raw in src:
        inp = est.preprocessor_(raw)
        cols = [inp[m] for m in mods]
        if est.use_masks:
            cols += [inp[f"{m}_mask"].to(torch.float32).unsqueeze(1) for m in mods]
        parts.append(torch.cat(cols, 1).detach().cpu().numpy().astype(np.float64))
    return np.concatenate(parts, 0)


def coxnet_coef(est, mdata, rows: np.ndarray) -> tuple[np.ndarray, dict]:
    """Coefficients (one per network input) of the zoo's ``coxnet`` fitted on SeNMo's design for ``rows``,
    and a summary (alpha, non-zero count) for ``schema.json``. Constant columns (e.g. presence flags that
    are all 1 on the training rows) are left out of the fit and get coefficient 0."""
    from .coxnet import CoxNet

    tg = est._targets(mdata)
    rows = np.asarray(rows)
    ok = np.asarray(tg["surv_ok"])[rows].astype(bool)
    rows = rows[ok]
    X = design_matrix(est, mdata, rows)
    time, event = np.asarray(tg["time"])[rows], np.asarray(tg["event"])[rows].astype(bool)
    keep = X.std(0) > 1e-12
    coef = np.zeros(X.shape[1], dtype=np.float64)
    if keep.any() and event.sum() >= 2:
        fit = CoxNet(random_state=est.random_state)._fit_arrays(X[:, keep], time, event)
        coef[keep] = fit.coef
        info = {"alpha": fit.meta["alpha"], "n_nonzero": fit.meta["n_nonzero"], "n_rows": int(rows.size)}
    else:
        info = {"alpha": None, "n_nonzero": 0, "n_rows": int(rows.size)}
    return coef, info


def apply_linear_init(module: torch.nn.Module, coef: np.ndarray) -> None:
    """Copy ``coef`` into every ``skip.weight`` of ``module``, frozen unless :data:`LINEAR_INIT_LR_FACTOR` > 0
    (the MLP learns the residual)."""
    w = torch.as_tensor(np.asarray(coef), dtype=torch.float32).reshape(1, -1)
    for name, p in module.named_parameters():
        if name.endswith("skip.weight"):
            if p.shape != w.shape:
                raise ValueError(f"linear_init: {name} has shape {tuple(p.shape)}, coxnet gave {tuple(w.shape)}")
            with torch.no_grad():
                p.copy_(w)
            p.requires_grad_(LINEAR_INIT_LR_FACTOR > 0)
