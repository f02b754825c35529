"""The zoo's one preprocessing system, built on :mod:`omicsdata.transforms`.

A model's preprocessing has two parts, both kept in ``schema.json``:

* **the store's build recipe** (``schema["preprocessing"]["recipe"]``): when the
  training store was built with a recipe (``manifest["extra"]["transforms"]``,
  e.g. the SeNMo recipe), its fitted :class:`omicsdata.transforms.Pipeline`
  states are recorded. At predict time an input whose manifest carries the same
  fitted recipe is used as is; a raw input gets the recipe applied (aligned by
  feature name) before the model sees it (:func:`recipe_plan`).
* **the model's own per-modality pipeline** (``schema["modalities"][m]``):
  ``Log1p`` for count data, then ``Standardize``, fitted on the training rows
  only by a streaming pass (:meth:`Preprocessor.fit`) and applied per batch on
  the training device (:meth:`omicsdata.transforms.Pipeline.apply_torch`).

Per-modality entry::

    {"features": [...], "required": true, "fill": "train_mean",
     "transform": "log1p" | "identity", "mean": [...], "scale": [...],
     "n_train_present": int}

``transform``/``mean``/``scale`` are the fitted ``Log1p`` + ``Standardize``
steps (:func:`to_pipeline` gives the :class:`~omicsdata.transforms.Pipeline`).

**Screening to a budget** (optional, any survival model): with
``max_features_per_modality`` set on the estimator (:func:`screen_spec`), the
same streaming pass over the training rows also ranks every feature and keeps
the ``k`` best per modality; the entry then lists only the kept features and
records ``"screen": {"method", "budget", "n_features_in", "min_kept_score"}``.
``method="cox"`` ranks by the univariate Cox score statistic at beta = 0 of
the standardised feature, ``|U_j| / sqrt(V_j)`` with ``U_j = sum_k z_kj m_k``
(``m_k = event_k - H(t_k)``, the martingale residuals under the Nelson-Aalen
estimate ``H`` of the training rows) and ``V_j = sum_k z_kj^2 H(t_k)`` (the
risk-set variance taken about the training mean, so it accumulates in one
pass); ``method="variance"`` keeps the most variable features on the model's
scale (after ``log1p`` for counts). Only training rows enter either statistic.
Features with (near-)zero training variance are dropped first.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

from omicsdata import transforms as T
from omicsdata.errors import SchemaMismatchError

from .checks import check_batch_finite, check_policy

COUNT_MAX_THRESHOLD = 30  # integer data reaching above this is treated as counts (log1p)


def identity_schema(features: dict[str, list[str]]) -> dict:
    """Per-modality preprocessing entries for inputs that are already preprocessed (identity, no scaling)."""
    return {m: {"features": [str(f) for f in names], "transform": "identity", "mean": [0.0] * len(names),
                "scale": [1.0] * len(names), "fill": "train_mean", "required": True}
            for m, names in features.items()}


def to_pipeline(entry: dict) -> T.Pipeline:
    """The fitted :class:`omicsdata.transforms.Pipeline` of one per-modality schema entry."""
    steps: list = [T.Log1p()] if entry.get("transform") == "log1p" else []
    std = T.Standardize()
    std.set_state({"mean": entry["mean"], "std": entry["scale"]})
    steps.append(std)
    pipe = T.Pipeline(steps)
    pipe.features_in = pipe.features_out = list(entry["features"])
    return pipe


def _entry(features: list[str], log1p: bool, std: T.Standardize, n: int) -> dict:
    return {"features": list(features), "transform": "log1p" if log1p else "identity",
            "mean": np.asarray(std.mean_, np.float64).tolist(), "scale": np.asarray(std.std_, np.float64).tolist(),
            "fill": "train_mean", "n_train_present": int(n)}


SCREEN_METHODS = ("cox", "variance")


def nelson_aalen_residuals(time, event) -> tuple[np.ndarray, np.ndarray]:
    """``(m, H)``: martingale residuals ``event - H(t)`` and the Nelson-Aalen cumulative hazard at each time.

    Breslow convention for ties (all tied events share the risk set); NaN
    times (no survival target) get ``m = H = 0`` so they never count.
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.nan_to_num(np.asarray(event, dtype=np.float64)) > 0
    ok = np.isfinite(t)
    H = np.zeros(t.shape[0])
    if ok.any():
        uniq, inv = np.unique(t[ok], return_inverse=True)
        d = np.bincount(inv, weights=e[ok].astype(float), minlength=uniq.size)
        n = np.bincount(inv, minlength=uniq.size).astype(float)
        at_risk = n[::-1].cumsum()[::-1]
        H[ok] = np.cumsum(d / at_risk)[inv]
    m = np.where(ok, e.astype(float) - H, 0.0)
    return m, H


def screen_spec(est, mdata, train_rows) -> dict | None:
    """The screening request of ``est`` for :meth:`Preprocessor.fit` (None when it asks for none).

    Reads ``est.max_features_per_modality`` (an int, or ``{modality: int}``)
    and ``est.screening`` (``"cox"``, the default when the data has the
    survival columns, or ``"variance"``). The survival statistics use the
    ``train_rows`` only: every other row gets zero weight.
    """
    budget = getattr(est, "max_features_per_modality", None)
    if not budget:
        return None
    method = getattr(est, "screening", None) or "cox"
    if method not in SCREEN_METHODS:
        raise SchemaMismatchError(f"{type(est).__name__}: screening must be one of {SCREEN_METHODS}, got {method!r}")
    n = mdata.n_obs
    m, H = np.zeros(n), np.zeros(n)
    tc, ec = getattr(est, "time_col", None), getattr(est, "event_col", None)
    if method == "cox":
        if not tc or not ec or tc not in mdata.obs.columns or ec not in mdata.obs.columns:
            raise SchemaMismatchError(f"{type(est).__name__}: screening='cox' needs the survival columns "
                                      f"{tc!r}/{ec!r} in obs; use screening='variance'")
        rows = np.asarray(train_rows)
        t = mdata.obs[tc].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
        e = mdata.obs[ec].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
        m[rows], H[rows] = nelson_aalen_residuals(np.where(np.isfinite(e), t, np.nan), e)
    return {"budget": budget, "method": method, "m": m, "H": H}


def _budget_of(budget, modality: str) -> int | None:
    if isinstance(budget, dict):
        b = budget.get(modality)
        return int(b) if b else None
    return int(budget)


class _ScreenAcc:
    """Per-modality sums for the Cox score screen, on the raw and the ``log1p`` scale (float64)."""

    def __init__(self):
        self.s = {}

    def add(self, key: str, x: np.ndarray, m: np.ndarray, H: np.ndarray) -> None:
        parts = {"xm": m @ x, "m": m.sum(), "xH": H @ x, "x2H": H @ (x * x), "H": H.sum()}
        acc = self.s.setdefault(key, {k: 0.0 for k in parts})
        for k, v in parts.items():
            acc[k] = acc[k] + v

    def scores(self, key: str, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
        a = self.s.get(key)
        if a is None:
            return np.zeros_like(mean)
        u = (a["xm"] - mean * a["m"]) / scale
        v = (a["x2H"] - 2 * mean * a["xH"] + mean * mean * a["H"]) / (scale * scale)
        return np.divide(np.abs(u), np.sqrt(np.maximum(v, 0)), out=np.zeros_like(u), where=v > 1e-12)


def _select(scores: np.ndarray, keep_ok: np.ndarray, k: int) -> np.ndarray:
    """Indices (sorted) of the ``k`` best ``scores`` among ``keep_ok`` features (ties: lower index)."""
    cand = np.flatnonzero(keep_ok)
    order = cand[np.lexsort((cand, -scores[cand]))]
    return np.sort(order[:k])


class Preprocessor:
    """Per-modality fitted pipelines (``Log1p`` for counts, ``Standardize``) applied to torch batches.

    Features absent from an input are filled with their training mean (0
    after standardisation); rows of an absent modality (mask False) are all
    zeros after preprocessing.
    """

    def __init__(self, modalities: dict, fit_columns: dict | None = None):
        self.modalities = modalities  # name -> schema entry (see module docstring)
        self.pipelines = {m: to_pipeline(v) for m, v in modalities.items()}
        # after a screening fit: {modality: (n_input_features, kept column indices)} for the raw training
        # batches (not saved: a loaded model always aligns its inputs by name)
        self.fit_columns = dict(fit_columns or {})

    # -- fitting
    @classmethod
    def fit(cls, raw_batches: Iterable[dict], features: dict[str, list[str]], screen: dict | None = None,
            sample_names=None, nan_policy: str = "error") -> "Preprocessor":
        """One streaming pass over raw training batches; statistics over present rows only, in float64.

        Both candidate statistics (raw and ``log1p``) are accumulated with
        :meth:`omicsdata.transforms.Standardize.partial_fit`; a modality of
        non-negative integers reaching above 30 is treated as counts (``log1p``).
        ``screen`` (from :func:`screen_spec`) keeps the best features per
        modality up to its budget (see the module docstring).
        """
        scr = {m: _ScreenAcc() for m in features} if screen and screen["method"] == "cox" else {}
        acc = {m: {"raw": T.Standardize(), "log": T.Standardize(), "n": 0, "min": math.inf, "max": -math.inf,
                   "integer": True} for m in features}
        for batch in raw_batches:
            for m, a in acc.items():
                x = batch[m][batch[f"{m}_mask"]].detach().to("cpu", torch.float64)
                if x.shape[0] == 0:
                    continue
                x = check_batch_finite(x, None, batch["index"][batch[f"{m}_mask"]], m, features[m], sample_names,
                                       "training data", check_policy(nan_policy))  # NaN checks (issue 15)
                a["n"] += x.shape[0]
                xn = x.numpy()
                a["raw"].partial_fit(xn)
                xl = np.log1p(np.maximum(xn, 0))
                a["log"].partial_fit(xl)
                if m in scr:
                    rows = batch["index"][batch[f"{m}_mask"]].detach().cpu().numpy()
                    scr[m].add("raw", xn, screen["m"][rows], screen["H"][rows])
                    scr[m].add("log", xl, screen["m"][rows], screen["H"][rows])
                a["min"] = min(a["min"], float(x.min()))
                a["max"] = max(a["max"], float(x.max()))
                a["integer"] = a["integer"] and bool(torch.all(x == torch.round(x)))
        mods, fit_columns = {}, {}
        for m, a in acc.items():
            if a["n"] == 0:
                raise SchemaMismatchError(f"modality '{m}': no training sample has it (has_{m} all False)")
            counts = a["integer"] and a["min"] >= 0 and a["max"] > COUNT_MAX_THRESHOLD
            std = (a["log"] if counts else a["raw"]).finish_partial_fit(min_scale=1e-6)
            mods[m] = _entry(features[m], counts, std, a["n"])
            if nan_policy != "error":  # recorded in schema.json: predict-time inputs follow it (issue 15)
                mods[m]["nan_policy"] = nan_policy
            k = _budget_of(screen["budget"], m) if screen else None
            if k is not None and k < len(features[m]):
                key = "log" if counts else "raw"
                mean, scale = np.asarray(std.mean_, np.float64), np.asarray(std.std_, np.float64)
                var_ok = scale > 1e-6  # Standardize floors the scale at min_scale: those are constant
                score = scr[m].scores(key, mean, scale) if m in scr else scale ** 2
                keep = _select(score, var_ok, k)
                fit_columns[m] = (len(features[m]), keep)
                e = mods[m]
                mods[m] = dict(e, features=[e["features"][i] for i in keep], mean=[e["mean"][i] for i in keep],
                               scale=[e["scale"][i] for i in keep],
                               screen={"method": screen["method"], "budget": k, "n_features_in": len(features[m]),
                                       "min_kept_score": float(score[keep].min()) if keep.size else None})
        return cls(mods, fit_columns)

    def to_json(self) -> dict:
        """The per-modality schema entries (JSON)."""
        return {m: dict(v) for m, v in self.modalities.items()}

    @classmethod
    def from_json(cls, d: dict) -> "Preprocessor":
        """Rebuild from :meth:`to_json` output (``schema.json``'s ``modalities``)."""
        return cls({m: dict(v) for m, v in d.items()})

    @property
    def dims(self) -> dict[str, int]:
        """``{modality: n_features}``."""
        return {m: len(v["features"]) for m, v in self.modalities.items()}

    # -- applying
    def __call__(self, raw: dict, alignment: dict | None = None) -> dict:
        """Preprocess one raw batch; ``alignment[m]`` (from :mod:`zoo.align`) gathers input columns by name."""
        out = {"index": raw["index"]}
        for m, v in self.modalities.items():
            n_feat = len(v["features"])
            if m not in raw:  # modality absent from the input: not measured for any sample
                B, dev = raw["index"].shape[0], raw["index"].device
                out[m] = torch.zeros(B, n_feat, dtype=torch.float32, device=dev)
                out[f"{m}_mask"] = torch.zeros(B, dtype=torch.bool, device=dev)
                continue
            x, mask = raw[m], raw[f"{m}_mask"]
            al = (alignment or {}).get(m)
            if al is not None:
                src, dst = al.tensors(x.device)
                y = self.pipelines[m].apply_torch(x.index_select(1, src), columns=dst)
                full = torch.zeros(x.shape[0], n_feat, dtype=torch.float32, device=x.device)
                full[:, dst] = y
                y = full
            else:
                if x.shape[1] != n_feat and m in self.fit_columns and x.shape[1] == self.fit_columns[m][0]:
                    x = x.index_select(1, torch.as_tensor(self.fit_columns[m][1], dtype=torch.long, device=x.device))
                elif x.shape[1] != n_feat:
                    raise SchemaMismatchError(f"modality '{m}': batch has {x.shape[1]} features, the fitted "
                                              f"preprocessing expects {n_feat} (align inputs by name first)")
                y = self.pipelines[m].apply_torch(x)
            y = check_batch_finite(y, mask, raw["index"], m, v["features"], None, "model input (after "
                                   "preprocessing)", v.get("nan_policy", "error"))  # NaN checks (issue 15)
            out[m] = y * mask.unsqueeze(1).to(y.dtype)
            out[f"{m}_mask"] = mask
        return out


# --- the store's build recipe ---------------------------------------------------------------

def store_recipe(mdata) -> dict:
    """``{modality: fitted Pipeline dict}`` the store was built with (``manifest["extra"]["transforms"]``)."""
    man = mdata.uns.get("omicsdata", {}) if hasattr(mdata, "uns") else {}
    rec = ((man or {}).get("extra") or {}).get("transforms") or {}
    return {str(m): v for m, v in dict(rec).items()}


def _same_fit(a: dict, b: dict) -> bool:
    import json

    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def apply_recipe(recipe: dict, mdata, where: str = "input"):
    """``mdata`` with the model's recorded store recipe applied to modalities that do not carry it.

    A modality whose input manifest records the same fitted recipe is used as
    is; one without a recipe is transformed (aligned by feature name, absent
    rows left zero); one recorded with a *different* recipe is an error.
    Returns ``mdata`` itself when nothing needed applying.
    """
    if not recipe:
        return mdata
    have = store_recipe(mdata)
    todo = {}
    for m, state in recipe.items():
        if m not in mdata.mod:
            continue
        if m in have:
            if not _same_fit(have[m], state):
                raise SchemaMismatchError(f"{where}: modality '{m}' was built with another fitted preprocessing "
                                          "recipe than the model's training store; give the raw data instead")
            continue
        todo[m] = T.Pipeline.from_dict(state)
    if not todo:
        return mdata
    from omicsdata import storage
    from omicsdata.storage.settings import new_mudata

    st = storage.open(mdata)
    mods = {}
    for m in mdata.mod:
        a = mdata.mod[m]
        if m in todo:
            present = st.presence(m)
            X = todo[m].transform_array(st.read_rows(m, np.arange(a.n_obs)), [str(v) for v in a.var_names])
            X[~present] = 0
            import anndata as ad
            import pandas as pd

            a = ad.AnnData(X=X, obs=pd.DataFrame(index=a.obs_names),
                           var=pd.DataFrame(index=pd.Index(todo[m].features_out, dtype=str)))
        mods[m] = a
    out = new_mudata(mods, mdata.obs.copy())
    man = dict(mdata.uns.get("omicsdata", {}) or {})
    man["extra"] = dict(man.get("extra") or {}, transforms={**have, **{m: recipe[m] for m in todo}})
    out.uns["omicsdata"] = man
    return out
