"""Helpers of ``auto-survival``: inner folds, relabelled views of the data, Cox stacking weights.

Nothing here fits a zoo model; :mod:`zoo.models.auto_survival` does.
"""
from __future__ import annotations

import numpy as np

from omicsdata.errors import SchemaMismatchError
from omicsdata.jsonutil import jsonable

from ..losses import cox_ph_loss

INNER_TRAIN, INNER_HELD, OUTSIDE = "train", "inner_val", "_outside"


def inner_folds(event: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of each row, stratified by ``event`` and seeded."""
    event = np.asarray(event).astype(bool)
    rng = np.random.default_rng(seed)
    fold = np.empty(event.size, dtype=np.int64)
    for val in (False, True):
        idx = rng.permutation(np.flatnonzero(event == val))
        fold[idx] = (np.arange(idx.size) + rng.integers(k)) % k
    return fold


def relabelled(mdata, labels: np.ndarray):
    """A MuData sharing ``mdata``'s modalities (no copy) whose ``obs["split"]`` is ``labels``.

    The store metadata (``uns``) is kept, so a store-backed input is still read
    from its Zarr arrays; ``mdata`` itself is not changed.
    """
    from omicsdata.storage.settings import new_mudata

    obs = mdata.obs.copy()
    obs["split"] = np.asarray(labels, dtype=object)
    out = new_mudata({m: mdata.mod[m] for m in mdata.mod}, obs)
    out.uns.update(dict(mdata.uns))
    return out


def fold_view(mdata, rows: np.ndarray, fold: np.ndarray, f: int):
    """The data with the training ``rows`` outside fold ``f`` labelled ``train``, fold ``f`` ``inner_val``,
    every other row ``_outside``."""
    labels = np.full(mdata.n_obs, OUTSIDE, dtype=object)
    labels[rows[fold != f]] = INNER_TRAIN
    labels[rows[fold == f]] = INNER_HELD
    return relabelled(mdata, labels)


def standardise(risk: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """``(risk - mean) / sd`` with the (mean, sd) of the model's risks on its own training rows."""
    mean, sd = stats
    return (np.asarray(risk, np.float64) - mean) / (sd if sd > 1e-12 else 1.0)


def risk_stats(risk: np.ndarray) -> tuple[float, float]:
    """(mean, sd) of risks (the standardisation of one fitted model)."""
    r = np.asarray(risk, np.float64)
    return float(r.mean()), float(r.std())


def cox_stack(Z: np.ndarray, time: np.ndarray, event: np.ndarray, group: np.ndarray, ridge: float = 1e-3
              ) -> np.ndarray:
    """Non-negative coefficients ``b`` maximising the Cox partial likelihood of ``Z @ b``.

    ``Z`` (n, K): each candidate's standardised out-of-fold risk; the partial
    likelihood is stratified by ``group`` (the inner fold: each fold's risks
    come from a different fit), plus ``ridge * |b|^2``. Solved by L-BFGS-B
    with bounds ``b >= 0``. The ensemble weights are ``b / b.sum()``.
    """
    import torch
    from scipy.optimize import minimize

    Zt = torch.as_tensor(Z, dtype=torch.float64)
    t = torch.as_tensor(time, dtype=torch.float64)
    e = torch.as_tensor(event, dtype=torch.float64)
    groups = [torch.as_tensor(np.flatnonzero(group == g)) for g in np.unique(group)]
    n_ev = float(e.sum()) or 1.0

    def fun(b):
        bt = torch.as_tensor(b, dtype=torch.float64).requires_grad_(True)
        r = Zt @ bt
        loss = sum(cox_ph_loss(r[g], t[g], e[g], ties="breslow", reduction="sum") for g in groups) / n_ev
        loss = loss + ridge * (bt * bt).sum()
        loss.backward()
        return float(loss.detach()), bt.grad.numpy().copy()

    k = Z.shape[1]
    res = minimize(fun, np.full(k, 1.0 / k), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * k)
    return np.maximum(res.x, 0.0)




def pack_members(members: list, meta: list[dict]) -> tuple[list[dict], dict]:
    """``(member entries for schema.json, tensors prefixed members.<i>.)`` via each member's checkpoint contract."""
    tensors, out = {}, []
    for i, (est, m) in enumerate(zip(members, meta)):
        s, t = est.checkpoint_state()
        tensors.update({f"members.{i}.{k}": v for k, v in t.items()})
        out.append(dict(m, model_type=est.model_type, params=jsonable(est.get_params(deep=False)), schema=s))
    return out, tensors


def unpack_members(mem, tensors: dict, device, name: str) -> list:
    """The members rebuilt from :func:`pack_members` output: class from the registry, strict tensor load."""
    import inspect

    from omicsdata.errors import SchemaMismatchError

    from ..registry import get_model_class

    if not isinstance(mem, list) or not mem:
        raise SchemaMismatchError(f"{name}: schema field 'members' must be a non-empty list")
    members = []
    for i, m in enumerate(mem):
        try:
            cls = get_model_class(m["model_type"])
            params = dict(m["params"])
            if "device" in inspect.signature(cls.__init__).parameters:
                params["device"] = device
            est = cls(**params)
            schema = m["schema"]
        except (KeyError, TypeError) as e:
            raise SchemaMismatchError(f"{name}: schema field members[{i}] is malformed ({e})") from None
        pre = f"members.{i}."
        est.restore_checkpoint(schema, {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
        members.append(est)
    stray = [k for k in tensors if not any(k.startswith(f"members.{i}.") for i in range(len(mem)))]
    if stray:
        raise SchemaMismatchError(f"{name}: model.safetensors holds tensors of no listed member ({stray[0]}...)")
    return members


def format_leaderboard(board, footer: str) -> str:
    """A leaderboard DataFrame as a plain-text table (``*`` marks what was chosen)."""
    lines = [f"{'candidate':<12} {'inner-CV C-index':>17} {'fit s/fold':>10} {'weight':>7}  note"]
    for r in board.to_dict(orient="records"):
        m, sd = r.get("cv_c_index_mean"), r.get("cv_c_index_std")
        c = "-" if m is None or m != m else f"{m:.3f} ± {sd:.3f}"
        fs = r.get("fit_seconds")
        fs = "-" if fs is None or fs != fs else f"{fs:.1f}"
        mark = " *" if r.get("chosen") else ""
        lines.append(f"{r['candidate']:<12} {c:>17} {fs:>10} {r.get('weight') or 0.0:>7.2f}  {r.get('note') or ''}{mark}")
    return "\n".join(lines + [footer])


#: training rows (with a survival target) from which ``cv="auto"`` uses 2 inner folds instead of 3
LARGE_COHORT = 2000


def inner_fold_count(cv, n_rows: int) -> int:
    """Inner folds for ``cv`` (an int, or ``"auto"``: 3, or 2 from :data:`LARGE_COHORT` rows)."""
    if cv == "auto":
        return 2 if n_rows >= LARGE_COHORT else 3
    try:
        return int(cv)
    except (TypeError, ValueError):
        raise SchemaMismatchError(f"auto-survival: cv must be an int >= 2 or 'auto', got {cv!r}") from None


def union_modalities(members) -> dict:
    """``{modality: {"features": [...]}}``: every member's input features (for the model card)."""
    out: dict = {}
    for est in members:
        for m, v in getattr(est, "schema_", {}).get("modalities", {}).items():
            have = out.setdefault(m, {"features": []})
            seen = set(have["features"])
            have["features"] += [f for f in v.get("features", []) if f not in seen]
    return out
