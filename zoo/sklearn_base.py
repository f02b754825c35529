"""Base of the zoo's non-torch survival models (``coxnet``, ``rsf``, ``gbsa``): same contract as :class:`zoo.Estimator`.

A subclass supplies two things:

* ``_fit_arrays(X, time, event) -> predictor``: fits on the design matrix of
  the training rows (float64, columns = the screened, preprocessed features of
  every modality in ``schema.json`` order, then one presence flag per modality
  when ``use_masks``) and returns a numpy **predictor**;
* ``predictor_class``: the predictor's class, with ``risk(X)``,
  ``to_state() -> (json dict, {name: ndarray})`` and
  ``from_state(json, arrays)``; optionally ``survival(X, times, pointwise)``
  (its own survival curves; else the Breslow baseline of the risk is used)
  and ``risk_std(X)``.

Everything else is shared with the torch estimators: inputs through
:mod:`omicsdata.storage` (:mod:`zoo.data`), the store recipe and feature
alignment by name (:mod:`zoo.inference`, :mod:`zoo.align`), the per-modality
preprocessing and screening fitted on the training rows only
(:mod:`zoo.preprocess`), the survival task's baseline hazard, censoring
estimate and metrics (:mod:`zoo.tasks.survival`), and the checkpoint folder
(:mod:`zoo.checkpoint`): the predictor's arrays go to ``model.safetensors``,
its scalars to ``schema.json["model"]``; nothing is pickled.

Fitting uses scikit-survival (the ``survival`` extra); loading a checkpoint
and predicting need numpy only.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from omicsdata.errors import OmicsDataError, SchemaMismatchError

from . import arrays
from . import data as zdata
from .align import DEFAULT_MIN_OVERLAP, align_mudata
from .estimator import Estimator
from .inference import prepare_input
from .preprocess import Preprocessor, screen_spec, store_recipe
from .tasks import get_task, resolve_tasks


class MissingDependencyError(OmicsDataError, ImportError):
    """An optional dependency needed for this operation is not installed."""


def require_sksurv(model: str):
    """Import scikit-survival or raise a clear error naming the extra to install."""
    try:
        import sksurv  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            f"fitting '{model}' needs scikit-survival: pip install 'omicszoo[survival]' "
            "(loading a saved checkpoint and predicting do not)") from None


class TabularSurvivalEstimator(Estimator):
    """A survival model fitted on a numpy design matrix (see the module docstring).

    Common parameters: ``modalities``, ``time_col``, ``event_col``,
    ``max_features_per_modality`` (screening budget per modality; ``None``
    keeps all), ``screening`` (``"cox"`` or ``"variance"``), ``use_masks``
    (presence flags as features), ``min_overlap``, ``random_state``,
    ``progress``. Fitting uses the ``split`` rows only (no validation split is
    needed: model selection inside ``fit``, e.g. coxnet's inner CV, splits the
    training rows).
    """

    task_names = ("survival",)
    label_col = None  # survival only
    predictor_class: type = None

    def __init__(self, modalities=None, time_col="os_time", event_col="os_event", max_features_per_modality=500,
                 screening="cox", use_masks=True, min_overlap=DEFAULT_MIN_OVERLAP, random_state=0, progress=False):
        self.modalities = modalities
        self.time_col = time_col
        self.event_col = event_col
        self.max_features_per_modality = max_features_per_modality
        self.screening = screening
        self.use_masks = use_masks
        self.min_overlap = min_overlap
        self.random_state = random_state
        self.progress = progress

    # the torch-side settings the shared data path reads
    batch_size = 512
    use_stream = False
    device = "cpu"

    # ------------------------------------------------------------------ subclass hooks
    def _fit_arrays(self, X: np.ndarray, time: np.ndarray, event: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _fit_arrays()")

    def build_module(self):
        raise SchemaMismatchError(f"{type(self).__name__} is not a torch model")

    # ------------------------------------------------------------------ design matrix
    def _check_fitted(self):
        if not hasattr(self, "model_"):
            from .estimator import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(...) or from_pretrained(...)")

    def _matrix(self, source, alignment) -> tuple[np.ndarray, np.ndarray]:
        """``(X, index)`` from a raw batch source: preprocessed modalities (+ presence flags), float64."""
        mods = list(self.schema_["modalities"])
        xs, idx = [], []
        for raw in source:
            inp = self.preprocessor_(raw, alignment)
            parts = [inp[m] for m in mods]
            if self.use_masks:
                parts += [inp[f"{m}_mask"].to(torch.float32).unsqueeze(1) for m in mods]
            xs.append(torch.cat(parts, 1).double().cpu().numpy())
            idx.append(inp["index"].cpu().numpy())
        if not xs:
            return np.zeros((0, self.n_inputs_)), np.zeros(0, np.int64)
        return np.concatenate(xs), np.concatenate(idx)

    @property
    def n_inputs_(self) -> int:
        """Columns of the design matrix."""
        return sum(self.input_dims_.values()) + (len(self.schema_["modalities"]) if self.use_masks else 0)

    def feature_names_(self) -> list[str]:
        """Column names of the design matrix (``modality:feature``, then ``has_<modality>``)."""
        mods = self.schema_["modalities"]
        names = [f"{m}:{f}" for m, v in mods.items() for f in v["features"]]
        return names + ([f"has_{m}" for m in mods] if self.use_masks else [])

    def design(self, data, split=None) -> tuple[np.ndarray, np.ndarray, object]:
        """``(X, rows, mdata)``: the design matrix of the ``split`` rows, features aligned by name."""
        self._check_fitted()
        where = type(self).__name__ + ".predict"
        data = arrays.input_of(self, data, None, where)
        arrays.check_width(self, data, where)
        mdata = prepare_input(self, data, where)
        alignment = align_mudata(self.schema_["modalities"], mdata, min_overlap=self.min_overlap, where=where)
        rows = zdata.select_rows(mdata, split)
        mods = [m for m, a in alignment.items() if a is not None]
        source = zdata.batches(mdata, None, mods, self.batch_size, rows=rows)
        align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
        X, idx = self._matrix(source, align)
        out = np.empty_like(X)
        out[np.searchsorted(rows, idx)] = X
        return out, rows, mdata

    # ------------------------------------------------------------------ fit
    def fit(self, data, y=None, split: str | list | None = "auto", val_split: str | None = None):
        """Fit on the ``split`` rows of ``data`` (MuData, AnnData, catalog name, store path, or an ``X``
        array/DataFrame with survival ``y``: scikit-survival's structured array or ``(n, 2)`` (time, event)).

        ``split="auto"`` (the default): every row for arrays, DataFrames and
        subsets (views, CV folds; see :mod:`zoo.arrays`), else ``"train"``.
        Preprocessing (``log1p`` for counts, standardisation) and screening to
        ``max_features_per_modality`` are fitted on those rows only; ``y`` is
        used only with an array/DataFrame ``X`` (otherwise targets are obs
        columns); ``val_split`` is ignored (no early stopping).
        """
        t_start = time.perf_counter()
        split = arrays.default_split(data, split, "train")
        data = arrays.input_of(self, data, y, "fit")
        mdata = zdata.resolve(data)
        mods = list(self.modalities) if self.modalities else list(mdata.mod)
        for m in mods:
            if m not in mdata.mod:
                raise SchemaMismatchError(f"modality '{m}' asked for but the data has only {sorted(mdata.mod)}")
        train = zdata.select_rows(mdata, split)
        tasks = {n: get_task(n).fit(spec, mdata.obs, train) for n, spec in resolve_tasks(self, mdata.obs).items()}
        features = {m: [str(f) for f in mdata.mod[m].var_names] for m in mods}
        self.schema_ = {"modalities": {m: {"features": features[m]} for m in mods}, "tasks": tasks}
        source = zdata.batches(mdata, None, mods, self.batch_size, rows=train)
        self.preprocessor_ = Preprocessor.fit(source, features, screen=screen_spec(self, mdata, train))
        self.schema_["modalities"] = {m: dict(v, required=True) for m, v in self.preprocessor_.to_json().items()}
        recipe = {m: r for m, r in store_recipe(mdata).items() if m in mods}
        if recipe:
            self.schema_["preprocessing"] = {"recipe": recipe}
        self.schema_["data"] = self._data_info(mdata, split, len(train))
        X, idx = self._matrix(source, None)
        tg = {k: v[idx] for k, v in self._targets(mdata).items()}
        ok = tg["surv_ok"]
        if int(tg["event"][ok].sum()) < 2:
            raise SchemaMismatchError(f"{type(self).__name__}: the training rows have fewer than 2 observed events "
                                      f"in obs['{self.event_col}']")
        self.model_ = self._fit_arrays(X[ok], tg["time"][ok], tg["event"][ok].astype(bool))
        self.module_ = self.model_
        self.schema_["survival"] = get_task("survival").summarize(self, {"risk": self.model_.risk(X)}, tg)
        self.schema_["data"].update(fit_seconds=round(time.perf_counter() - t_start, 2))
        arrays.remember_input(self, mdata)
        self.metrics_ = {}
        return self

    # ------------------------------------------------------------------ predict
    def _survival_fn(self, X):
        own = getattr(self.model_, "survival", None)
        if own is None:
            return None
        return lambda times, pointwise=False: own(X, np.asarray(times, dtype=np.float64), pointwise)

    def predict_outputs(self, data, split=None, mc_samples: int = 0, required=None) -> dict:
        """``{"index", "obs_names", "risk"}`` for the ``split`` rows, in row order."""
        X, rows, mdata = self.design(data, split)
        return {"index": rows, "obs_names": np.asarray(mdata.obs_names[rows]), "risk": self.model_.risk(X)}

    def predict_risk(self, data, split=None, return_std: bool = False, mc_samples: int = 30):
        """Risk scores (higher = shorter survival); ``return_std`` only where the model has a spread."""
        X, _, _ = self.design(data, split)
        r = self.model_.risk(X)
        if not return_std:
            return r
        std = getattr(self.model_, "risk_std", None)
        if std is None:
            raise SchemaMismatchError(f"{type(self).__name__} gives no uncertainty (return_std=True): use 'rsf' "
                                      "(spread over trees) or a neural model ('deepsurv', 'senmo': MC dropout)")
        return r, std(X)

    def predict_survival_function(self, data, times, split=None) -> np.ndarray:
        """``S(t | x)`` at ``times`` (n_samples, n_times): the model's own curves, else the Breslow baseline."""
        from .tasks.survival import survival_probs

        X, _, _ = self.design(data, split)
        out = {"risk": self.model_.risk(X), "survival_fn": self._survival_fn(X)}
        return survival_probs(self, out, np.asarray(times, dtype=np.float64))

    def evaluate(self, data, split="auto", y=None) -> dict:
        """``c_index``, ``uno_c``, ``ibs``, ``d_calibration_stat``/``_p`` and ``n`` on the ``split`` rows.

        ``split="auto"``: every row for arrays (with survival ``y``) and subsets, else ``"test"``.
        """
        split = arrays.default_split(data, split, "test")
        data = arrays.input_of(self, data, y, "evaluate")
        X, rows, mdata = self.design(data, split)
        out = {"index": rows, "risk": self.model_.risk(X), "survival_fn": self._survival_fn(X)}
        tg = {k: v[rows] for k, v in self._targets(mdata).items()}
        res = {"split": split, "n": int(len(rows))}
        res.update(get_task("survival").metrics(self, out, tg))
        self.metrics_ = dict(getattr(self, "metrics_", {}), **{str(split): res})
        return res

    def explain(self, *a, **kw):
        """Not available for the non-torch models (their coefficients / trees are in ``model_``)."""
        raise SchemaMismatchError(f"{type(self).__name__}.explain is not available: it needs a torch model")

    # ------------------------------------------------------------------ checkpoint contract
    def checkpoint_config(self) -> dict:
        self._check_fitted()
        return {"input_dims": self.input_dims_, "n_classes": None, "survival": True, "n_inputs": self.n_inputs_}

    def checkpoint_state(self) -> tuple[dict, dict]:
        """``(schema, tensors)``: the predictor's scalars under ``schema["model"]``, its arrays as tensors."""
        from .persistence import _jsonable

        self._check_fitted()
        meta, arrays = self.model_.to_state()
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        return _jsonable(dict(self.schema_, model=meta)), tensors

    def restore_checkpoint(self, schema: dict, tensors: dict):
        name = type(self).__name__
        if not isinstance(schema, dict) or not isinstance(schema.get("modalities"), dict) \
                or not isinstance(schema.get("model"), dict):
            raise SchemaMismatchError(f"{name}: schema needs the fields 'modalities' and 'model' (dicts)")
        self.schema_ = {k: v for k, v in schema.items() if k != "model"}
        try:
            self.preprocessor_ = Preprocessor.from_json(schema["modalities"])
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise SchemaMismatchError(f"{name}: schema field 'modalities' is malformed ({e})") from None
        arrays = {k: v.numpy() for k, v in tensors.items()}
        try:
            self.model_ = self.predictor_class.from_state(schema["model"], arrays)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise SchemaMismatchError(f"{name}: the saved model arrays do not fit: {e}") from None
        n_in = getattr(self.model_, "n_features", None)
        if n_in is not None and n_in != self.n_inputs_:
            raise SchemaMismatchError(f"{name}: the saved model expects {n_in} inputs but schema.json gives "
                                      f"{self.n_inputs_}")
        self.module_ = self.model_
        self.metrics_ = {}
        return self
