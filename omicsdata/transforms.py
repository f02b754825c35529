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

import dataclasses
import warnings
from typing import Any

import numpy as np

from .errors import SchemaMismatchError

_STEPS: dict[str, type] = {}


def _step(cls):
    _STEPS[cls.__name__] = cls
    return cls


def _dense(X) -> np.ndarray:
    if hasattr(X, "compute"):
        X = X.compute()
    if hasattr(X, "toarray"):
        X = X.toarray()
    return np.asarray(X, dtype=np.float32)


class Step:
    """Base: ``fit(X) -> self``, ``transform(X) -> X``, ``keep`` (kept feature positions or None)."""

    keep: np.ndarray | None = None

    def config(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        pass

    def fit(self, X: np.ndarray) -> "Step":
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X


def _nanvar(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanvar(X.astype(np.float64), axis=0), nan=0.0)


@_step
@dataclasses.dataclass
class Log1p(Step):
    def transform(self, X):
        return np.log1p(np.maximum(X, 0, where=~np.isnan(X), out=X.copy()))


@_step
@dataclasses.dataclass
class MissingFilter(Step):
    max_frac: float = 0.1

    def fit(self, X):
        frac = np.isnan(X).mean(axis=0) if len(X) else np.zeros(X.shape[1])
        self.keep = np.flatnonzero(frac <= self.max_frac)
        return self


@_step
@dataclasses.dataclass
class Impute(Step):
    mean_: Any = None

    def config(self):
        return {}

    def fit(self, X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(X, axis=0) if len(X) else np.zeros(X.shape[1])
        self.mean_ = np.nan_to_num(m, nan=0.0).astype(np.float32)
        return self

    def state(self):
        return {"mean": self.mean_.tolist()}

    def set_state(self, s):
        self.mean_ = np.asarray(s["mean"], np.float32)

    def transform(self, X):
        bad = np.isnan(X)
        if bad.any():
            X = X.copy()
            X[bad] = np.broadcast_to(self.mean_, X.shape)[bad]
        return X


@_step
@dataclasses.dataclass
class DropNearConstant(Step):
    min_std: float = 1e-3

    def fit(self, X):
        self.keep = np.flatnonzero(np.sqrt(_nanvar(X)) >= self.min_std)
        return self


@_step
@dataclasses.dataclass
class VarianceFilter(Step):
    threshold: float | None = None
    top_k: int | None = None
    min_frac_nonzero: float | None = None

    def fit(self, X):
        var = _nanvar(X)
        ok = np.ones(X.shape[1], bool)
        if self.threshold is not None:
            ok &= var >= self.threshold
        if self.min_frac_nonzero is not None:
            ok &= (np.nan_to_num(X) != 0).mean(axis=0) >= self.min_frac_nonzero if len(X) else ok
        idx = np.flatnonzero(ok)
        if self.top_k is not None and len(idx) > self.top_k:
            order = np.argsort(-var[idx], kind="stable")[: self.top_k]
            idx = np.sort(idx[order])
        self.keep = idx
        return self


@_step
@dataclasses.dataclass
class CorrelationPrune(Step):
    threshold: float = 0.9
    block: int = 512

    def fit(self, X):
        n, p = X.shape
        if n < 3 or p < 2:
            self.keep = np.arange(p)
            return self
        Xc = np.nan_to_num(X - np.nanmean(X, axis=0), nan=0.0)
        sd = np.sqrt((Xc ** 2).sum(axis=0))
        sd[sd == 0] = 1
        Z = (Xc / sd).astype(np.float32)  # unit-norm columns: Z.T @ Z = Pearson r
        order = np.argsort(-sd, kind="stable")  # most variable first
        kept: list[int] = []
        K = np.zeros((n, 0), np.float32)
        for s in range(0, p, self.block):
            cand = order[s:s + self.block]
            C = Z[:, cand]
            drop = np.zeros(len(cand), bool)
            if K.shape[1]:
                drop |= (np.abs(K.T @ C) > self.threshold).any(axis=0)
            inner = np.abs(C.T @ C)
            new = []
            for i in range(len(cand)):
                if drop[i]:
                    continue
                if any(inner[i, j] > self.threshold for j in new):
                    drop[i] = True
                    continue
                new.append(i)
            kept.extend(cand[new].tolist())
            K = np.concatenate([K, C[:, new]], axis=1)
        self.keep = np.sort(np.asarray(kept, dtype=np.int64))
        return self


@_step
@dataclasses.dataclass
class Standardize(Step):
    mean_: Any = None
    std_: Any = None

    def config(self):
        return {}

    def fit(self, X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            X64 = X.astype(np.float64)
            m = np.nanmean(X64, axis=0) if len(X) else np.zeros(X.shape[1])
            s = np.nanstd(X64, axis=0) if len(X) else np.ones(X.shape[1])
        m = np.nan_to_num(m, nan=0.0)
        s = np.nan_to_num(s, nan=1.0)
        s[s < 1e-6 * np.maximum(1.0, np.abs(m))] = 1.0  # constant feature: centre only
        self.mean_ = np.nan_to_num(m, nan=0.0).astype(np.float32)
        self.std_ = s.astype(np.float32)
        return self

    def state(self):
        return {"mean": self.mean_.tolist(), "std": self.std_.tolist()}

    def set_state(self, s):
        self.mean_ = np.asarray(s["mean"], np.float32)
        self.std_ = np.asarray(s["std"], np.float32)

    def transform(self, X):
        return (X - self.mean_) / self.std_


class Pipeline:
    """An ordered list of steps, fitted on training rows; see the module docstring."""

    def __init__(self, steps: list[Step] | None = None):
        self.steps = list(steps or [])
        self.features_in: list[str] | None = None
        self.features_out: list[str] | None = None

    @property
    def fitted(self) -> bool:
        return self.features_in is not None

    def fit(self, data, rows=None, features=None) -> "Pipeline":
        """Fit on ``data`` (AnnData or array) restricted to ``rows`` (bool mask or indices).

        ``features``: names when ``data`` is an array (AnnData uses ``var_names``).
        """
        X, names = self._matrix(data, features)
        if rows is not None:
            X = X[np.asarray(rows)]
        X = X.copy()
        self.features_in = list(names)
        cur = np.arange(len(names))
        for st in self.steps:
            st.fit(X)
            if st.keep is not None:
                X = X[:, st.keep]
                cur = cur[st.keep]
            X = st.transform(X)
        self.features_out = [names[i] for i in cur]
        return self

    @staticmethod
    def _matrix(data, features):
        if hasattr(data, "var_names") and hasattr(data, "X"):
            return _dense(data.X), list(map(str, data.var_names))
        X = _dense(data)
        if features is None:
            features = [str(i) for i in range(X.shape[1])]
        return X, list(map(str, features))

    def align(self, X: np.ndarray, names: list[str]) -> np.ndarray:
        """Reorder columns of ``X`` to ``features_in``; missing features become NaN (warned)."""
        if names == self.features_in:
            return X
        pos = {n: i for i, n in enumerate(names)}
        idx = np.array([pos.get(f, -1) for f in self.features_in])
        hit = idx >= 0
        if not hit.any():
            raise SchemaMismatchError(f"none of the {len(self.features_in)} fitted features is in the input "
                                      f"({len(names)} features, e.g. {names[:3]})")
        if not hit.all():
            warnings.warn(f"{int((~hit).sum())} of {len(hit)} fitted features are missing from the input; "
                          "they are filled by the pipeline (Impute: training mean; otherwise NaN)")
        out = np.full((X.shape[0], len(self.features_in)), np.nan, np.float32)
        out[:, hit] = X[:, idx[hit]]
        return out

    def transform_array(self, X, features) -> np.ndarray:
        """Apply the fitted steps to array ``X`` whose columns are named ``features``."""
        if not self.fitted:
            raise SchemaMismatchError("pipeline is not fitted: call fit() on the training rows first")
        X = self.align(_dense(X).copy(), list(map(str, features)))
        for st in self.steps:
            if st.keep is not None:
                X = X[:, st.keep]
            X = st.transform(X)
        return X.astype(np.float32, copy=False)

    def transform(self, data, present=None):
        """Transform an AnnData (returns a new AnnData over ``features_out``) or an array.

        Rows where ``present`` is False stay zero rows.
        """
        import anndata as ad

        if hasattr(data, "var_names") and hasattr(data, "X"):
            X = self.transform_array(data.X, list(map(str, data.var_names)))
            if present is not None:
                X[~np.asarray(present, bool)] = 0
            import pandas as pd
            return ad.AnnData(X=X, obs=data.obs.copy(), var=pd.DataFrame(index=pd.Index(self.features_out, dtype=str)))
        return self.transform_array(data, self.features_in)

    def fit_transform(self, data, rows=None, present=None):
        return self.fit(data, rows=rows).transform(data, present=present)

    def to_dict(self) -> dict:
        """JSON-serialisable fitted state (kept features are stored by position)."""
        return {"format": "omicsdata-transforms/1",
                "features_in": self.features_in, "features_out": self.features_out,
                "steps": [{"name": type(s).__name__, "config": s.config(),
                           "keep": None if s.keep is None else np.asarray(s.keep).tolist(),
                           "state": s.state()} for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict) -> "Pipeline":
        """Rebuild a fitted pipeline from :meth:`to_dict` output."""
        steps = []
        for sd in d["steps"]:
            if sd["name"] not in _STEPS:
                raise SchemaMismatchError(f"unknown transform step '{sd['name']}' (known: {', '.join(_STEPS)})")
            st = _STEPS[sd["name"]](**sd.get("config", {}))
            st.keep = None if sd.get("keep") is None else np.asarray(sd["keep"], dtype=np.int64)
            st.set_state(sd.get("state") or {})
            steps.append(st)
        p = cls(steps)
        p.features_in = d.get("features_in")
        p.features_out = d.get("features_out")
        return p

    def __repr__(self) -> str:
        inner = ", ".join(f"{type(s).__name__}({', '.join(f'{k}={v}' for k, v in s.config().items())})" for s in self.steps)
        return f"Pipeline([{inner}])"


def senmo_pipeline(modality: str) -> Pipeline:
    """The SeNMo-style recipe for one modality (thresholds in the module docstring)."""
    if modality == "mutation":
        return Pipeline([VarianceFilter(min_frac_nonzero=0.01), DropNearConstant(1e-3), Standardize()])
    steps: list[Step] = [MissingFilter(0.1), Impute()]
    if modality in ("rna", "mirna"):
        steps += [Log1p(), DropNearConstant(1e-3), VarianceFilter(threshold=0.2, top_k=5000)]
    elif modality == "methylation":
        steps += [DropNearConstant(1e-3), VarianceFilter(threshold=0.001, top_k=5000)]
    else:
        steps += [DropNearConstant(1e-3)]
    steps += [CorrelationPrune(0.9), Standardize()]
    return Pipeline(steps)


def pipelines_from_spec(spec, modalities: list[str]) -> dict[str, Pipeline]:
    """``"senmo"`` -> the recipe for every modality; a dict maps modality -> ``"senmo"``,
    a :class:`Pipeline`, or a list of ``{"name": step, **config}``."""
    out = {}
    if spec == "senmo":
        return {m: senmo_pipeline(m) for m in modalities}
    if not isinstance(spec, dict):
        raise SchemaMismatchError(f"preprocess spec must be 'senmo' or a dict modality -> steps, got {spec!r}")
    for m, s in spec.items():
        if m not in modalities:
            raise SchemaMismatchError(f"preprocess spec names modality '{m}', not in {modalities}")
        if s == "senmo":
            out[m] = senmo_pipeline(m)
        elif isinstance(s, Pipeline):
            out[m] = s
        else:
            steps = []
            for d in s:
                d = dict(d)
                name = d.pop("name")
                if name not in _STEPS:
                    raise SchemaMismatchError(f"unknown transform step '{name}' (known: {', '.join(_STEPS)})")
                steps.append(_STEPS[name](**d))
            out[m] = Pipeline(steps)
    return out
