"""The transform steps and :class:`Pipeline` (see :mod:`omicsdata.transforms` for the overview)."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from ..errors import SchemaMismatchError

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

    def apply_torch(self, x, columns=None):
        """The fitted step on a torch batch (``columns``: the fitted feature positions of ``x``'s columns)."""
        raise SchemaMismatchError(f"step {type(self).__name__} has no torch path; apply it with transform()")


def _nanvar(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanvar(X.astype(np.float64), axis=0), nan=0.0)


@_step
@dataclasses.dataclass
class Log1p(Step):
    def transform(self, X):
        return np.log1p(np.maximum(X, 0, where=~np.isnan(X), out=X.copy()))

    def apply_torch(self, x, columns=None):
        return x.clamp(min=0).log1p()


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
        self.__dict__.pop("_dev", None)

    def transform(self, X):
        return (X - self.mean_) / self.std_

    def partial_fit(self, X) -> "Standardize":
        """Accumulate float64 sums of one block of rows (NaN-free); close with :meth:`finish_partial_fit`."""
        X = np.asarray(X, np.float64)
        acc = getattr(self, "_acc", None) or {"n": 0, "s": 0.0, "ss": 0.0}
        acc["n"] += X.shape[0]
        acc["s"] = acc["s"] + X.sum(0)
        acc["ss"] = acc["ss"] + (X * X).sum(0)
        self._acc = acc
        return self

    def finish_partial_fit(self, min_scale: float = 1e-6) -> "Standardize":
        """Mean and std from the accumulated sums; a std below ``min_scale`` becomes 1 (centre only)."""
        acc = self.__dict__.pop("_acc")
        m = acc["s"] / acc["n"]
        s = np.sqrt(np.clip(acc["ss"] / acc["n"] - m * m, 0, None))
        self.mean_, self.std_ = m, np.where(s < min_scale, 1.0, s)
        return self

    def apply_torch(self, x, columns=None):
        import torch

        cache = self.__dict__.setdefault("_dev", {})
        key = str(x.device)
        if key not in cache:
            cache[key] = (torch.as_tensor(np.asarray(self.mean_, np.float32), device=x.device),
                          torch.as_tensor(np.asarray(self.std_, np.float32), device=x.device))
        mean, std = cache[key]
        if columns is not None:
            mean, std = mean.index_select(0, columns), std.index_select(0, columns)
        return (x - mean) / std


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

    def apply_torch(self, x, columns=None):
        """Apply the fitted steps to a float32 torch batch on its device (steps that keep every feature).

        ``columns`` (int64 tensor): positions in ``features_in`` of ``x``'s
        columns, when ``x`` holds only some of the fitted features.
        """
        for st in self.steps:
            if st.keep is not None and len(st.keep) != len(self.features_in or st.keep):
                raise SchemaMismatchError(f"step {type(st).__name__} selects features: apply it with transform()")
            x = st.apply_torch(x, columns)
        return x

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
