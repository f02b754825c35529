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
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

from omicsdata import transforms as T
from omicsdata.errors import SchemaMismatchError

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


class Preprocessor:
    """Per-modality fitted pipelines (``Log1p`` for counts, ``Standardize``) applied to torch batches.

    Features absent from an input are filled with their training mean (0
    after standardisation); rows of an absent modality (mask False) are all
    zeros after preprocessing.
    """

    def __init__(self, modalities: dict):
        self.modalities = modalities  # name -> schema entry (see module docstring)
        self.pipelines = {m: to_pipeline(v) for m, v in modalities.items()}

    # -- fitting
    @classmethod
    def fit(cls, raw_batches: Iterable[dict], features: dict[str, list[str]]) -> "Preprocessor":
        """One streaming pass over raw training batches; statistics over present rows only, in float64.

        Both candidate statistics (raw and ``log1p``) are accumulated with
        :meth:`omicsdata.transforms.Standardize.partial_fit`; a modality of
        non-negative integers reaching above 30 is treated as counts (``log1p``).
        """
        acc = {m: {"raw": T.Standardize(), "log": T.Standardize(), "n": 0, "min": math.inf, "max": -math.inf,
                   "integer": True} for m in features}
        for batch in raw_batches:
            for m, a in acc.items():
                x = batch[m][batch[f"{m}_mask"]].detach().to("cpu", torch.float64)
                if x.shape[0] == 0:
                    continue
                a["n"] += x.shape[0]
                xn = x.numpy()
                a["raw"].partial_fit(xn)
                a["log"].partial_fit(np.log1p(np.maximum(xn, 0)))
                a["min"] = min(a["min"], float(x.min()))
                a["max"] = max(a["max"], float(x.max()))
                a["integer"] = a["integer"] and bool(torch.all(x == torch.round(x)))
        mods = {}
        for m, a in acc.items():
            if a["n"] == 0:
                raise SchemaMismatchError(f"modality '{m}': no training sample has it (has_{m} all False)")
            counts = a["integer"] and a["min"] >= 0 and a["max"] > COUNT_MAX_THRESHOLD
            std = (a["log"] if counts else a["raw"]).finish_partial_fit(min_scale=1e-6)
            mods[m] = _entry(features[m], counts, std, a["n"])
        return cls(mods)

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
                y = self.pipelines[m].apply_torch(x)
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
    import mudata as md

    from omicsdata import storage

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
    md.set_options(pull_on_update=False)
    out = md.MuData(mods)
    out.obs = mdata.obs.copy()
    man = dict(mdata.uns.get("omicsdata", {}) or {})
    man["extra"] = dict(man.get("extra") or {}, transforms={**have, **{m: recipe[m] for m in todo}})
    out.uns["omicsdata"] = man
    return out
