"""scikit-learn inputs for every zoo estimator: ``(X, y)`` arrays/DataFrames -> MuData, and the ``split`` default.

``X`` (numpy array, scipy sparse matrix, list of rows or pandas DataFrame)
becomes one modality named ``"X"``; its features are the DataFrame's columns
(as strings) or ``x0, x1, ...``; its sample names the DataFrame's index when
unique, else ``"0", "1", ...``.

``y`` becomes the obs columns the estimator reads:

* survival (scikit-survival's structured array, any field names: the bool
  field is the event, the float field the time; or an ``(n, 2)`` array of
  ``(time, event)`` columns) -> ``obs[time_col]``, ``obs[event_col]``;
* anything 1-D -> class labels in ``obs[label_col]``; the original label
  values (ints stay ints) are what ``classes_`` and ``predict`` return.

The ``split`` default (``"auto"``) of ``fit``/``evaluate``/``score``: rows the
caller passed explicitly are all used (arrays, DataFrames, MuData/AnnData
views, and store MuData whose row count differs from the store's: subsets,
CV folds); a catalog name, a store path, a whole store MuData or another
in-memory MuData keeps the split filter (``"train"`` for ``fit``, ``"test"``
for ``evaluate``/``score``), so ``zoo.SeNMo().fit("demo-pancancer")`` trains
on the train split.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from omicsdata.errors import SchemaMismatchError


class InputTypeError(SchemaMismatchError, TypeError):
    """``X`` holds values that are not numbers (objects, strings)."""


#: the ``split`` argument's default: resolved by :func:`default_split`
AUTO = "auto"
MODALITY = "X"


def is_arraylike(data) -> bool:
    """Whether ``data`` is an ``X`` matrix (numpy, scipy sparse, DataFrame, list of rows), not a dataset."""
    import anndata as ad
    import mudata as md

    if isinstance(data, (np.ndarray, pd.DataFrame, list, tuple)):
        return True
    if isinstance(data, (md.MuData, ad.AnnData, str)):
        return False
    if hasattr(data, "__array__"):
        return True
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return sp.issparse(data)


def _matrix(X, where: str):
    """``(matrix, feature names, sample names)`` of ``X``; non-numeric or non-2-D input is an error."""
    import scipy.sparse as sp

    if isinstance(X, pd.DataFrame):
        bad = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if bad:
            raise SchemaMismatchError(f"{where}: X column(s) {bad[:5]} are not numeric")
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            raise SchemaMismatchError(f"{where}: X has duplicate column names")
        obs_names = [str(i) for i in X.index] if X.index.is_unique else None
        mat = X.to_numpy(dtype=np.float32)
    elif sp.issparse(X):
        mat, names, obs_names = sp.csr_matrix(X, dtype=np.float32), None, None
    else:
        raw = np.asarray(X)
        if raw.dtype.kind == "c":
            raise SchemaMismatchError(f"{where}: Complex data not supported in X")
        try:
            mat = raw.astype(np.float32)
        except TypeError as e:
            raise InputTypeError(f"{where}: X is not a numeric matrix ({e})") from None
        except ValueError as e:
            raise SchemaMismatchError(f"{where}: X is not a numeric matrix ({e})") from None
        names, obs_names = None, None
    if mat.ndim != 2:
        raise SchemaMismatchError(f"{where}: X must be 2-D (n_samples, n_features); got shape {mat.shape}. "
                                  "Reshape your data: X.reshape(-1, 1) for one feature, X.reshape(1, -1) for one sample")
    if mat.shape[0] == 0:
        raise SchemaMismatchError(f"{where}: Found array with 0 sample(s) (shape={mat.shape}) while a minimum of 1 "
                                  "is required.")
    if mat.shape[1] == 0:
        raise SchemaMismatchError(f"{where}: Found array with 0 feature(s) (shape={mat.shape}) while a minimum of 1 "
                                  "is required.")
    if where == "fit" and mat.shape[0] < 2:
        raise SchemaMismatchError(f"{where}: X has 1 sample; need at least 2 to fit")
    vals = mat.data if sp.issparse(mat) else mat
    if not np.isfinite(vals).all():
        raise SchemaMismatchError(f"{where}: X contains NaN or inf")
    if names is None:
        names = [f"x{i}" for i in range(mat.shape[1])]
    if obs_names is None or len(set(obs_names)) != len(obs_names):
        obs_names = [str(i) for i in range(mat.shape[0])]
    return mat, names, obs_names


def _survival_columns(y, where: str):
    """``(time, event)`` from a structured array (bool field = event, float field = time) or an ``(n, 2)`` array."""
    y = np.asarray(y)
    if y.dtype.names:
        ev = [f for f in y.dtype.names if y.dtype[f].kind == "b"]
        tm = [f for f in y.dtype.names if y.dtype[f].kind in "fiu"]
        if len(ev) != 1 or len(tm) != 1:
            raise SchemaMismatchError(f"{where}: survival y needs one bool field (event) and one numeric field "
                                      f"(time); got fields {list(y.dtype.names)}")
        return y[tm[0]].astype(np.float64), y[ev[0]].astype(bool)
    time, event = y[:, 0].astype(np.float64), y[:, 1]
    if not np.isin(event, (0, 1)).all():
        raise SchemaMismatchError(f"{where}: an (n, 2) survival y is (time, event) with event 0/1; column 1 "
                                  "has other values")
    return time, event.astype(bool)


def is_survival_y(y) -> bool:
    """Whether ``y`` is a survival target (structured array, or ``(n, 2)``)."""
    arr = np.asarray(y) if not isinstance(y, pd.DataFrame) else y.to_numpy()
    return bool(arr.dtype.names) or (arr.ndim == 2 and arr.shape[1] == 2)


def to_mudata(X, y=None, est=None, where: str = "fit"):
    """A MuData with one modality ``"X"`` from ``X``, and ``y`` as the obs columns ``est`` reads (see module doc)."""
    import anndata as ad
    import mudata as md

    mat, names, obs_names = _matrix(X, where)
    obs = pd.DataFrame(index=pd.Index(obs_names))
    if y is not None:
        if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
            y = y.iloc[:, 0]
        y = y.to_records(index=False) if isinstance(y, pd.DataFrame) else np.asarray(y)
        if len(y) != mat.shape[0]:
            raise SchemaMismatchError(f"{where}: X has {mat.shape[0]} rows but y has {len(y)}")
        name = type(est).__name__ if est is not None else "estimator"
        if is_survival_y(y):
            tc, ec = getattr(est, "time_col", None), getattr(est, "event_col", None)
            if not (tc and ec):
                raise SchemaMismatchError(f"{where}: y is a survival target but {name} has time_col/event_col None")
            obs[tc], obs[ec] = _survival_columns(y, where)
        else:
            if y.ndim == 2 and y.shape[1] == 1:
                import warnings

                from sklearn.exceptions import DataConversionWarning

                warnings.warn(DataConversionWarning(f"A column-vector y was passed when a 1d array was expected "
                                                    f"({where}); it is ravelled"), stacklevel=3)
                y = np.ravel(y)
            if y.ndim != 1:
                raise SchemaMismatchError(f"{where}: y must be class labels (1-D) or a survival target; "
                                          f"got shape {y.shape}")
            lc = getattr(est, "label_col", None)
            if not lc:
                raise SchemaMismatchError(f"{where}: y looks like class labels but {name} has no label_col "
                                          "(pass survival y as a structured array of (event, time))")
            if pd.isna(pd.Series(y, dtype=object)).any():
                raise SchemaMismatchError(f"{where}: y contains missing labels")
            from sklearn.utils.multiclass import type_of_target

            kind = type_of_target(y)
            if kind not in ("binary", "multiclass"):
                raise SchemaMismatchError(f"{where}: Unknown label type: {kind} y for a classifier (class labels "
                                          "expected; survival y is a structured (event, time) array)")
            cats = [str(c) for c in np.unique(y)]
            obs[lc] = pd.Categorical([str(v) for v in y], categories=cats)
            obs.attrs["label_values"] = {str(c): c.item() if hasattr(c, "item") else c for c in np.unique(y)}
    mod = ad.AnnData(X=mat, obs=pd.DataFrame(index=obs.index), var=pd.DataFrame(index=pd.Index(names)))
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({MODALITY: mod})
    mdata.obs = obs.copy()
    mdata.uns["zoo_arrays"] = {"n_features": int(mat.shape[1]), "label_values": obs.attrs.get("label_values")}
    return mdata


def input_of(est, data, y=None, where: str = "fit"):
    """``data`` as the zoo reads it: an array/DataFrame (with ``y``) becomes a MuData; anything else is returned."""
    if is_arraylike(data):
        if where == "fit" and y is None:
            raise SchemaMismatchError(f"fit: {type(est).__name__} requires y to be passed, but the target y is None "
                                      "(with an array/DataFrame X, y holds the labels or survival target)")
        return to_mudata(data, y, est, where)
    return data


def is_subset(data) -> bool:
    """Whether ``data`` holds rows the caller chose (arrays, views, store MuData with fewer/more rows)."""
    import anndata as ad
    import mudata as md

    if is_arraylike(data):
        return True
    if isinstance(data, (md.MuData, ad.AnnData)):
        if data.is_view or "zoo_arrays" in (data.uns or {}):
            return True
        man = (data.uns or {}).get("omicsdata") if isinstance(data, md.MuData) else None
        if isinstance(man, dict) and "n_obs" in man:
            return int(man["n_obs"]) != data.n_obs
    return False


def default_split(data, split, default):
    """``split`` unless it is ``"auto"``: then ``None`` (every row) for caller-chosen rows, else ``default``."""
    if not (isinstance(split, str) and split == AUTO):
        return split
    return None if is_subset(data) else default


def remember_input(est, mdata) -> None:
    """After a fit: ``n_features_in_`` / ``feature_names_in_`` and the label values of an ``(X, y)`` input."""
    info = (getattr(mdata, "uns", None) or {}).get("zoo_arrays")
    for attr in ("n_features_in_", "feature_names_in_"):
        est.__dict__.pop(attr, None)
    if info is None:
        return
    est.n_features_in_ = int(info["n_features"])
    names = list(mdata.mod[MODALITY].var_names)
    if names != [f"x{i}" for i in range(len(names))]:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    labels = info.get("label_values")
    c = est.schema_.get("tasks", {}).get("classification")
    if labels and c:
        c["class_values"] = [labels.get(str(k), k) for k in c["classes"]]


def check_width(est, mdata, where: str) -> None:
    """An array input must have the fitted number of columns (scikit-learn's ``n_features_in_`` contract)."""
    info = (getattr(mdata, "uns", None) or {}).get("zoo_arrays")
    n = getattr(est, "n_features_in_", None)
    if info is not None and n is not None and int(info["n_features"]) != n:
        raise SchemaMismatchError(f"{where}: X has {info['n_features']} features, but {type(est).__name__} "
                                  f"is expecting {n} features as input")


def estimator_type(est) -> str | None:
    """``"classifier"`` when the estimator's only requested target is a class label, else ``None``.

    Survival models stay unset, as scikit-survival's do: declaring them
    regressors would make scikit-learn treat ``y`` as real values (R^2 scoring,
    regressor checks), which a (time, event) target is not.
    """
    from .tasks import get_task

    wanted = [n for n in getattr(est, "task_names", ()) if get_task(n).requested(est) is not None]
    return "classifier" if wanted == ["classification"] else None


def sklearn_inputs(fn, default: str):
    """Wrap a subclass's ``fit``/``evaluate`` so it takes ``(X, y)`` and the ``"auto"`` split rule too.

    :class:`zoo.Estimator` applies this to every subclass's own ``fit`` and
    ``evaluate`` (``__init_subclass__``), so a model that overrides them keeps
    the scikit-learn semantics: an array ``X`` (with ``y``) becomes a MuData,
    and a ``split`` the caller did not pass follows :func:`default_split`
    (``default`` when the subclass's own default is not ``"auto"``).
    """
    import functools
    import inspect

    params = inspect.signature(fn).parameters
    own = params["split"].default if "split" in params else default
    takes_y = "y" in params
    is_fit = fn.__name__ == "fit"

    @functools.wraps(fn)
    def wrapper(self, data, *args, **kwargs):
        if is_fit:
            y = args[0] if args else kwargs.get("y")
            split_given = len(args) > 1 or "split" in kwargs
        else:
            y = kwargs.get("y") if takes_y else kwargs.pop("y", None)
            split_given = bool(args) or "split" in kwargs
        if not split_given and "split" in params:
            kwargs["split"] = default_split(data, AUTO, own if own != AUTO else default)
        data = input_of(self, data, y, fn.__name__)
        out = fn(self, data, *args, **kwargs)
        if is_fit and hasattr(self, "schema_"):
            remember_input(self, data)
        return out

    wrapper._zoo_sklearn = True
    return wrapper


class SklearnInputsMixin:
    """scikit-learn habits of :class:`zoo.Estimator`: its type/tags and the ``(X, y)`` rules in subclasses."""

    def __init_subclass__(cls, **kw):
        """A subclass's own ``fit``/``evaluate`` keep the ``(X, y)`` and ``split="auto"`` rules
        (:func:`sklearn_inputs`)."""
        super().__init_subclass__(**kw)
        for name, default in (("fit", "train"), ("evaluate", "test")):
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_zoo_sklearn", False):
                setattr(cls, name, sklearn_inputs(fn, default))

    @property
    def _estimator_type(self) -> str | None:
        """``"classifier"`` when the only target asked for is a class label; ``None`` (unset) for
        survival models, as in scikit-survival (see :func:`estimator_type`)."""
        return estimator_type(self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = estimator_type(self)
        if tags.estimator_type == "classifier":
            from sklearn.utils import ClassifierTags

            tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        tags.input_tags.sparse = True
        return tags
