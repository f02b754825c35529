"""``zoo.Estimator``: a scikit-learn style wrapper around a torch module.

Users see ``fit`` / ``predict`` / ``predict_risk`` / ``predict_proba`` /
``score`` / ``evaluate`` / ``explain`` / ``save_pretrained`` /
``from_pretrained`` / ``push_to_hub``; ``get_params`` / ``set_params`` come from
:class:`sklearn.base.BaseEstimator`, so ``sklearn.base.clone`` works.

Sign convention: the ``risk`` output is a log-hazard; **higher risk means
shorter survival** (see :mod:`zoo.metrics`).

The estimator is thin: the loop is :class:`zoo.trainer.Trainer`, targets,
losses, fitted summaries and metrics are task objects (:mod:`zoo.tasks`:
survival, classification), preprocessing is :mod:`zoo.preprocess`, batches
come from :mod:`zoo.data`, inference from :mod:`zoo.inference`.

Extension contract (what a subclass implements)
-----------------------------------------------

A model is one module in ``zoo/models/`` with one subclass, decorated with
``@zoo.register_model("<name>")``. The subclass:

1. declares **every** hyper-parameter as an explicit keyword argument of its
   ``__init__`` (scikit-learn reads the signature) and stores each unchanged
   as ``self.<name>``; it passes the common ones below to ``super().__init__``.
   Values must be JSON-serialisable (they go to ``config.json``).
2. implements ``build_module(self) -> torch.nn.Module``. It may read
   ``self.input_dims_`` (``{modality: n_features}`` after alignment),
   ``self.n_classes_`` (``None`` without a classification target),
   ``self.has_survival_`` and ``self.schema_`` (everything fitted on train).
3. implements (or inherits) ``forward(self, module, inputs) -> dict`` where
   ``inputs`` is a preprocessed batch: ``{modality: float32 (B, p),
   "<modality>_mask": bool (B,), "index": int64 (B,)}`` on the training
   device. The default calls ``module(inputs)``. It returns a dict with
   ``"risk"`` (B,) for survival and/or ``"logits"`` (B, C) for classification.
4. may override ``loss(self, outputs, targets) -> Tensor`` (default: the sum
   of the tasks' losses, classification weighted by ``cls_weight`` when
   survival trains too), ``penalty(self, module) -> Tensor`` (default 0;
   SeNMo adds L1), ``configure_optimizers(self, module, total_steps)``
   (default Adam with linear decay to 0), ``validation_score(self, outputs,
   targets)`` (higher is better; default the first task's: C-index, else
   accuracy), ``fit_schema_extra(self, mdata, rows)`` (extra JSON for
   ``schema.json``) and ``task_names`` (the tasks it may train).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SkNotFittedError

from omicsdata.errors import OmicsDataError, SchemaMismatchError

from . import arrays, inference
from . import data as zdata
from .align import DEFAULT_MIN_OVERLAP
from .checks import check_survival_targets
from .persistence import PersistenceMixin
from .preprocess import Preprocessor, screen_spec, store_recipe
from .tasks import get_task, resolve_tasks
from .tasks.survival import require_survival, survival_function
from .trainer import Trainer


class NotFittedError(OmicsDataError, SkNotFittedError):
    """The estimator has not been fitted (or loaded) yet."""


def _resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Estimator(arrays.SklearnInputsMixin, PersistenceMixin, BaseEstimator):
    """Base class of the zoo's models; see the module docstring for the extension contract.

    Common parameters
    -----------------
    modalities: modalities to use (``None``: all the training data has).
    time_col, event_col: obs columns of the survival target (``None`` disables).
    label_col: obs column of the classification target (``None`` disables).
        A target whose column the data lacks is dropped (with a warning) unless
        it was the only one.
    batch_size, max_epochs, patience, lr, weight_decay: training loop.
    val_fraction: held out of the training rows when the data has no
        ``val_split`` rows.
    ties: ``"efron"`` or ``"breslow"`` for the Cox loss.
    cls_weight: weight of the classification loss when both heads train.
    device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
    use_stream: read through ``omicsdata.torch.stream`` when available.
    min_overlap: least fraction of a modality's features an input must have.
    random_state: seeds the weights, shuffling and dropout.
    progress: show a tqdm progress bar while fitting.
    """

    model_type: str | None = None
    #: the tasks (:mod:`zoo.tasks`) this model may train, in order of precedence
    task_names: tuple = ("survival", "classification")

    def __init__(self, modalities=None, time_col="os_time", event_col="os_event", label_col="cancer_type",
                 batch_size=128, max_epochs=100, patience=10, lr=1e-3, weight_decay=0.0, val_fraction=0.15,
                 ties="efron", cls_weight=1.0, device="auto", use_stream=True, min_overlap=DEFAULT_MIN_OVERLAP,
                 random_state=0, progress=True):
        self.modalities = modalities
        self.time_col = time_col
        self.event_col = event_col
        self.label_col = label_col
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.ties = ties
        self.cls_weight = cls_weight
        self.device = device
        self.use_stream = use_stream
        self.min_overlap = min_overlap
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ subclass hooks
    def build_module(self) -> torch.nn.Module:  # pragma: no cover - abstract
        """The torch module (see the extension contract)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_module()")

    def forward(self, module: torch.nn.Module, inputs: dict) -> dict:
        """The module's outputs on a preprocessed batch."""
        return module(inputs)

    def loss(self, outputs: dict, targets: dict) -> torch.Tensor:
        """Sum of the tasks' losses (classification x ``cls_weight`` when survival trains too)."""
        total = None
        for name in self.schema_["tasks"]:
            part = get_task(name).loss(self, outputs, targets)
            if part is None:
                continue
            if name == "classification":
                part = part * (self.cls_weight if self.has_survival_ else 1.0)
            total = part if total is None else total + part
        if total is None:
            total = sum(v.sum() for v in outputs.values()) * 0.0
        return total

    def penalty(self, module: torch.nn.Module) -> torch.Tensor | float:
        """Regularisation added to the loss (default 0)."""
        return 0.0

    def configure_optimizers(self, module: torch.nn.Module, total_steps: int):
        """Adam with linear decay of the learning rate to 0 over ``total_steps``."""
        opt = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(1, total_steps)))
        return opt, sched

    def validation_score(self, outputs: dict, targets: dict) -> float:
        """The first task's validation score that is defined (higher is better)."""
        for name in self.schema_["tasks"]:
            score = get_task(name).validation_score(self, outputs, targets)
            if score is not None:
                return score
        return 0.0

    def fit_schema_extra(self, mdata, rows: np.ndarray) -> dict:
        """Extra JSON for ``schema.json`` (default none)."""
        return {}

    # ------------------------------------------------------------------ fitted state
    def _check_fitted(self):
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(...) or from_pretrained(...)")

    @property
    def device_(self) -> torch.device:
        """The torch device the estimator runs on."""
        return _resolve_device(self.device)

    def _seed(self):
        seed = int(self.random_state or 0)
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))

    @property
    def has_survival_(self) -> bool:
        """Whether a survival head was fitted."""
        return "survival" in self.schema_["tasks"]

    @property
    def n_classes_(self) -> int | None:
        """Number of classes of the classification head (None without one)."""
        c = self.schema_["tasks"].get("classification")
        return len(c["classes"]) if c else None

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in the order of ``predict_proba``'s columns."""
        self._check_fitted()
        c = self.schema_["tasks"].get("classification")
        if not c:
            raise SchemaMismatchError(f"{type(self).__name__} was fitted without a classification target")
        if c.get("class_values") is not None:  # fitted on (X, y): the labels as given (ints stay ints)
            return np.asarray(c["class_values"])
        return np.asarray(c["classes"], dtype=object)


    @property
    def input_dims_(self) -> dict[str, int]:
        """``{modality: n_features}`` of the schema."""
        return {m: len(v["features"]) for m, v in self.schema_["modalities"].items()}

    def _resolve_tasks(self, mdata) -> dict:
        return resolve_tasks(self, mdata.obs)

    def _targets(self, mdata) -> dict:
        """Target arrays of every task for every row of ``mdata`` (numpy)."""
        out: dict[str, np.ndarray] = {}
        for name, spec in self.schema_["tasks"].items():
            out.update(get_task(name).targets(spec, mdata.obs))
        return out

    def _targets_torch(self, tg: dict, device) -> dict:
        """The target arrays as tensors on ``device`` (host-only ``*_raw`` arrays left out)."""
        dtypes = {k: d for name in self.schema_["tasks"] for k, d in get_task(name).target_dtypes.items()}
        return {k: torch.as_tensor(np.asarray(v), dtype=dtypes.get(k, torch.float32), device=device)
                for k, v in tg.items() if not k.endswith("_raw")}

    # ------------------------------------------------------------------ fit
    def fit(self, data, y=None, split: str | list | None = "auto", val_split: str | None = "val"):
        """Fit on the ``split`` rows of ``data``: a MuData, AnnData, catalog name, store path, or an
        ``X`` array/DataFrame (one modality ``"X"``) with ``y`` (class labels, or survival as
        scikit-survival's structured array / an ``(n, 2)`` (time, event) array; see :mod:`zoo.arrays`).

        ``split="auto"`` (the default) uses every row the caller passed for
        arrays, DataFrames and subsets (MuData/AnnData views, CV folds, store
        MuData whose rows differ from the store's) and ``"train"`` for catalog
        names, store paths and whole MuData, as before. Preprocessing (log1p
        for count modalities, standardisation) is fitted on the training rows
        only. Early stopping watches the ``val_split`` rows (or
        ``val_fraction`` of the training rows when there are none, e.g. with
        ``split=None``) and keeps the best epoch's weights. ``y`` is used only
        with an array/DataFrame ``X`` (otherwise targets are obs columns).
        """
        split = arrays.default_split(data, split, "train")
        data = arrays.input_of(self, data, y, "fit")
        mdata = zdata.resolve(data)
        self._seed()
        device, t_start = self.device_, time.perf_counter()
        mods = list(self.modalities) if self.modalities else list(mdata.mod)
        for m in mods:
            if m not in mdata.mod:
                raise SchemaMismatchError(f"modality '{m}' asked for but the data has only {sorted(mdata.mod)}")
        tasks = self._resolve_tasks(mdata)
        plan = zdata.plan_rows(mdata, split, val_split, self.val_fraction, int(self.random_state or 0))
        tasks = {n: get_task(n).fit(spec, mdata.obs, plan.train) for n, spec in tasks.items()}
        if "survival" in tasks:  # NaN/inf times, all censored: clear errors (issue 15)
            check_survival_targets(mdata.obs, tasks["survival"]["time_col"], tasks["survival"]["event_col"], plan.train)
        features = {m: [str(f) for f in mdata.mod[m].var_names] for m in mods}
        self.schema_ = {"modalities": {m: {"features": features[m]} for m in mods}, "tasks": tasks}
        seed = int(self.random_state or 0)

        def train_source(shuffle, drop_last=False):
            return zdata.batches(mdata, split, mods, self.batch_size, shuffle=shuffle, seed=seed, device=device,
                                 use_stream=self.use_stream, drop_last=drop_last, rows=plan.explicit_train)

        self.preprocessor_ = Preprocessor.fit(train_source(False), features, screen=screen_spec(self, mdata, plan.train),
                                              sample_names=mdata.obs_names, nan_policy=getattr(self, "nan_policy", "error"))
        self.schema_["modalities"] = {m: dict(v, required=True) for m, v in self.preprocessor_.to_json().items()}
        recipe = {m: r for m, r in store_recipe(mdata).items() if m in mods}
        if recipe:
            self.schema_["preprocessing"] = {"recipe": recipe}
        self.schema_["data"] = self._data_info(mdata, split, len(plan.all_train))
        self._fit_all_train_rows = plan.all_train  # train + carved early-stopping rows, for fit_schema_extra
        self.schema_.update(self.fit_schema_extra(mdata, plan.train))
        tg_all = self._targets(mdata)

        self._seed()
        module = self.module_ = self.build_module().to(device)
        source = train_source(True, drop_last=len(plan.train) > self.batch_size)
        val_source = None
        if plan.val is not None:
            val_source = zdata.batches(mdata, None, mods, max(self.batch_size, 256), device=device,
                                       use_stream=False, rows=plan.val)
        elif plan.has_val:
            val_source = zdata.batches(mdata, val_split, mods, max(self.batch_size, 256), device=device,
                                       use_stream=self.use_stream)
        trainer = Trainer(self.max_epochs, self.patience, self.progress, desc=f"fit {type(self).__name__}")
        result = trainer.run(self, module, source, self._targets_torch(tg_all, device), val_source, tg_all)
        self.history_, self.best_val_score_, self.n_epochs_ = result.history, result.best_score, result.n_epochs
        self._summarize_tasks(mdata, mods, plan.train, tg_all)
        self.schema_["data"].update(fit_seconds=round(time.perf_counter() - t_start, 2),
                                    best_val_score=self.best_val_score_, n_epochs=self.n_epochs_)
        arrays.remember_input(self, mdata)
        self.metrics_ = {}
        return self

    def _summarize_tasks(self, mdata, mods, train_rows, tg_all) -> None:
        """Each task's aggregate fitted state (e.g. the Breslow baseline) from the training rows."""
        outs = None
        for name in self.schema_["tasks"]:
            task = get_task(name)
            if not task.has_summary:
                continue
            if outs is None:
                src = zdata.batches(mdata, None, mods, max(self.batch_size, 256), device=self.device_,
                                    use_stream=False, rows=train_rows)
                outs = self._collect(self.module_, src, None)
            summary = task.summarize(self, outs, {k: v[outs["index"]] for k, v in tg_all.items()})
            if summary is not None:
                self.schema_[name] = summary

    def _data_info(self, mdata, split, n_train: int) -> dict:
        man = mdata.uns.get("omicsdata", {}) if hasattr(mdata, "uns") else {}
        return {"dataset": man.get("dataset"), "dataset_version": man.get("version"),
                "builder_options": man.get("builder_options"), "split": split, "n_train": int(n_train)}

    # ------------------------------------------------------------------ predict
    def _collect(self, module, source, alignment, mc_samples: int = 0) -> dict:
        """Run ``module`` over a raw source (see :func:`zoo.inference.collect`)."""
        return inference.collect(self, module, source, alignment, mc_samples)

    def predict_outputs(self, data, split=None, mc_samples: int = 0, required=None) -> dict:
        """Every output (``risk``, ``proba`` and their MC std) for the ``split`` rows, in row order.

        Input features are aligned by name to ``schema.json`` first; the
        training store's recipe is applied to inputs that do not carry it.
        """
        self._check_fitted()
        return inference.predict_outputs(self, data, split, mc_samples, required)[0]

    def predict_risk(self, data, split=None, return_std: bool = False, mc_samples: int = 30):
        """Risk scores (log-hazard; higher = shorter survival); ``return_std`` by MC dropout."""
        self._check_fitted()
        if not self.has_survival_:
            raise SchemaMismatchError(f"{type(self).__name__} was fitted without a survival target")
        out = self.predict_outputs(data, split, mc_samples=mc_samples if return_std else 0)
        return (out["risk"], out["risk_std"]) if return_std else out["risk"]

    def predict_proba(self, data, split=None, return_std: bool = False, mc_samples: int = 30):
        """Class probabilities (columns in ``classes_`` order); ``return_std`` by MC dropout."""
        self._check_fitted()
        if not self.n_classes_:
            raise SchemaMismatchError(f"{type(self).__name__} was fitted without a classification target")
        out = self.predict_outputs(data, split, mc_samples=mc_samples if return_std else 0)
        return (out["proba"], out["proba_std"]) if return_std else out["proba"]

    def predict(self, data, split=None, return_std: bool = False, mc_samples: int = 30):
        """Risk scores if the model has a survival head, else class labels.

        ``return_std=True`` returns ``(mean, std)`` over ``mc_samples`` MC-dropout
        passes (of the risk, or of the class probabilities for a classifier).
        """
        self._check_fitted()
        if self.has_survival_:
            return self.predict_risk(data, split, return_std, mc_samples)
        if return_std:
            return self.predict_proba(data, split, True, mc_samples)
        return self.classes_[self.predict_proba(data, split).argmax(1)]

    def predict_survival_function(self, data, times, split=None) -> np.ndarray:
        """``S(t | x)`` at ``times`` (n_samples, n_times), Breslow baseline from the training rows."""
        self._check_fitted()
        summary = require_survival(self)
        return survival_function(summary, self.predict_risk(data, split), times)

    # ------------------------------------------------------------------ score
    def evaluate(self, data, split="auto", y=None) -> dict:
        """Every metric on the ``split`` rows: ``c_index``, ``uno_c``, ``ibs`` (survival);
        ``accuracy``, ``auroc`` (classification); ``n``.

        ``split="auto"`` (the default): every row for arrays/DataFrames (with
        ``y`` as for :meth:`fit`) and subsets, else ``"test"``.
        """
        self._check_fitted()
        split = arrays.default_split(data, split, "test")
        data = arrays.input_of(self, data, y, "evaluate")
        out, mdata = inference.predict_outputs(self, data, split)
        tg = {k: v[out["index"]] for k, v in self._targets(mdata).items()}
        res = {"split": split, "n": int(len(out["index"]))}
        for name in self.schema_["tasks"]:
            res.update(get_task(name).metrics(self, out, tg))
        if not hasattr(self, "metrics_"):
            self.metrics_ = {}
        self.metrics_[str(split)] = res
        return res

    def score(self, data, y=None, split="auto") -> float:
        """C-index (survival models) or accuracy (classifiers) on the ``split`` rows.

        ``data``/``y``/``split`` as for :meth:`evaluate`: an ``(X, y)`` pair or a
        subset (a CV fold) is scored on every row; a catalog name or whole
        store on its ``"test"`` rows.
        """
        split = arrays.default_split(data, split, "test")
        data = arrays.input_of(self, data, y, "score")  # resolved here: subclasses' evaluate() take no y
        res = self.evaluate(data, split)
        return float(res["c_index"] if "c_index" in res else res["accuracy"])

    # ------------------------------------------------------------------ explain / persist
    def explain(self, data, split=None, method: str = "integrated_gradients", groups: str = "feature",
                target: str | int | None = None, **kw):
        """Attributions as a tidy DataFrame (sample, modality, feature, attribution); see :mod:`zoo.explain`."""
        from .explain import explain

        return explain(self, data, split=split, method=method, groups=groups, target=target, **kw)
