"""``zoo.Estimator``: a scikit-learn style wrapper around a torch module.

Users see ``fit`` / ``predict`` / ``predict_risk`` / ``predict_proba`` /
``score`` / ``evaluate`` / ``explain`` / ``save_pretrained`` /
``from_pretrained`` / ``push_to_hub``; ``get_params`` / ``set_params`` come from
:class:`sklearn.base.BaseEstimator`, so ``sklearn.base.clone`` works.

Sign convention: the ``risk`` output is a log-hazard; **higher risk means
shorter survival** (see :mod:`zoo.metrics`).

Extension contract (what a subclass implements)
-----------------------------------------------

A model is one module with one subclass, decorated with
``@zoo.register_model("<name>")`` plus, for a pretrained checkpoint, one
``catalog/models/<name>.yaml``. The subclass:

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
4. may override ``loss(self, outputs, targets) -> Tensor`` (default: Cox
   partial likelihood with ``self.ties`` on ``risk`` + ``cls_weight`` x cross
   entropy on ``logits``, each only where its targets are known),
   ``penalty(self, module) -> Tensor`` (default 0; SeNMo adds L1),
   ``configure_optimizers(self, module, total_steps)`` (default Adam with
   linear decay to 0), ``validation_score(self, outputs, targets)`` (higher
   is better; default C-index, else accuracy) and ``fit_schema_extra(self,
   mdata, rows)`` (extra JSON for ``schema.json``).

The data path (stream or in-memory tensors, preprocessing fitted on the
training split, feature alignment by name) is the base class's; a subclass
that needs other inputs (e.g. a graph) can keep it and add fixed tensors to
its module as buffers.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from omicsdata.errors import OmicsDataError, SchemaMismatchError

from . import data as zdata
from .align import DEFAULT_MIN_OVERLAP, align_mudata
from .losses import breslow_baseline, cox_ph_loss


class NotFittedError(OmicsDataError, AttributeError):
    """The estimator has not been fitted (or loaded) yet."""


def _resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Estimator(BaseEstimator):
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
        raise NotImplementedError(f"{type(self).__name__} must implement build_module()")

    def forward(self, module: torch.nn.Module, inputs: dict) -> dict:
        return module(inputs)

    def loss(self, outputs: dict, targets: dict) -> torch.Tensor:
        total = None
        if self.has_survival_ and "risk" in outputs:
            ok = targets["surv_ok"]
            if bool(ok.any()):
                lc = cox_ph_loss(outputs["risk"][ok], targets["time"][ok], targets["event"][ok], ties=self.ties)
                total = lc
        if self.n_classes_ and "logits" in outputs:
            y = targets["label"]
            ok = y >= 0
            if bool(ok.any()):
                lce = torch.nn.functional.cross_entropy(outputs["logits"][ok], y[ok])
                w = self.cls_weight if self.has_survival_ else 1.0
                total = lce * w if total is None else total + w * lce
        if total is None:
            total = sum(v.sum() for v in outputs.values()) * 0.0
        return total

    def penalty(self, module: torch.nn.Module) -> torch.Tensor | float:
        return 0.0

    def configure_optimizers(self, module: torch.nn.Module, total_steps: int):
        opt = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / max(1, total_steps)))
        return opt, sched

    def validation_score(self, outputs: dict, targets: dict) -> float:
        from .metrics import concordance_index_censored

        if self.has_survival_ and "risk" in outputs:
            ok = targets["surv_ok"]
            try:
                return concordance_index_censored(targets["event"][ok], targets["time"][ok], outputs["risk"][ok])
            except OmicsDataError:
                pass
        if self.n_classes_ and "proba" in outputs:
            ok = targets["label"] >= 0
            return float(np.mean(outputs["proba"][ok].argmax(1) == targets["label"][ok]))
        return 0.0

    def fit_schema_extra(self, mdata, rows: np.ndarray) -> dict:
        return {}

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self):
        if not hasattr(self, "module_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(...) or from_pretrained(...)")

    @property
    def device_(self) -> torch.device:
        return _resolve_device(self.device)

    def _seed(self):
        seed = int(self.random_state or 0)
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))

    def _resolve_tasks(self, mdata) -> dict:
        obs = mdata.obs
        tasks: dict[str, Any] = {}
        wanted = []
        if self.time_col and self.event_col:
            wanted.append("survival")
            if self.time_col in obs.columns and self.event_col in obs.columns:
                tasks["survival"] = {"time_col": self.time_col, "event_col": self.event_col}
        if self.label_col:
            wanted.append("classification")
            if self.label_col in obs.columns:
                tasks["classification"] = {"label_col": self.label_col}
        if not tasks:
            raise SchemaMismatchError(
                f"no target found: obs has none of time/event columns ({self.time_col!r}, {self.event_col!r}) "
                f"or label column {self.label_col!r}; obs columns are {list(obs.columns)[:12]}")
        for t in wanted:
            if t not in tasks:
                warnings.warn(f"{type(self).__name__}: target '{t}' skipped (its obs column is not in the data)",
                              stacklevel=3)
        return tasks

    def _targets(self, mdata) -> dict:
        """Target arrays for every row of ``mdata`` (numpy)."""
        obs = mdata.obs
        n = mdata.n_obs
        out: dict[str, np.ndarray] = {}
        s = self.schema_["tasks"].get("survival")
        if s and s["time_col"] in obs.columns and s["event_col"] in obs.columns:
            t = obs[s["time_col"]].to_numpy(dtype=np.float64, na_value=np.nan)
            e = obs[s["event_col"]].to_numpy(dtype=np.float64, na_value=np.nan)
            out["time"], out["event"] = t, np.nan_to_num(e).astype(np.float64)
            out["surv_ok"] = np.isfinite(t) & np.isfinite(e)
        c = self.schema_["tasks"].get("classification")
        if c and c["label_col"] in obs.columns:
            classes = c["classes"]
            lab = obs[c["label_col"]].astype(object).to_numpy()
            lookup = {str(k): i for i, k in enumerate(classes)}
            out["label"] = np.array([lookup.get(str(v), -1) if v is not None and v == v else -1 for v in lab],
                                    dtype=np.int64)
            out["label_raw"] = lab
        del n
        return out

    def _targets_torch(self, tg: dict, device) -> dict:
        out = {}
        for k, v in tg.items():
            if k == "label_raw":
                continue
            dtype = torch.bool if k == "surv_ok" else (torch.long if k == "label" else torch.float32)
            out[k] = torch.as_tensor(np.asarray(v), dtype=dtype, device=device)
        return out

    @property
    def has_survival_(self) -> bool:
        return "survival" in self.schema_["tasks"]

    @property
    def n_classes_(self) -> int | None:
        c = self.schema_["tasks"].get("classification")
        return len(c["classes"]) if c else None

    @property
    def classes_(self) -> np.ndarray:
        self._check_fitted()
        c = self.schema_["tasks"].get("classification")
        if not c:
            raise SchemaMismatchError(f"{type(self).__name__} was fitted without a classification target")
        return np.asarray(c["classes"], dtype=object)

    @property
    def input_dims_(self) -> dict[str, int]:
        return {m: len(v["features"]) for m, v in self.schema_["modalities"].items()}

    def _raw_source(self, mdata, split, rows=None, shuffle=False, epoch_seed=0, drop_last=False):
        mods = [m for m in self.schema_["modalities"] if m in mdata.mod] if hasattr(self, "schema_") else None
        return zdata.batches(mdata, split, mods, self.batch_size, shuffle=shuffle, seed=epoch_seed,
                             device=self.device_, use_stream=self.use_stream, drop_last=drop_last, rows=rows)

    # ------------------------------------------------------------------ fit
    def fit(self, data, y=None, split: str | list | None = "train", val_split: str | None = "val"):
        """Fit on the ``split`` rows of ``data`` (MuData, AnnData, catalog name or store path).

        Preprocessing (log1p for count modalities, standardisation) is fitted
        on those rows only. Early stopping watches the ``val_split`` rows (or
        ``val_fraction`` of the training rows when there are none) and keeps
        the best epoch's weights. ``y`` is ignored (targets are obs columns).
        """
        mdata = zdata.resolve(data)
        self._seed()
        device = self.device_
        t_start = time.perf_counter()
        mods = list(self.modalities) if self.modalities else list(mdata.mod)
        for m in mods:
            if m not in mdata.mod:
                raise SchemaMismatchError(f"modality '{m}' asked for but the data has only {sorted(mdata.mod)}")
        tasks = self._resolve_tasks(mdata)
        train_rows = zdata.select_rows(mdata, split)
        val_rows = None
        has_val = (val_split is not None and "split" in mdata.obs.columns
                   and bool((mdata.obs["split"].astype(str) == val_split).any()) and split is not None
                   and val_split not in ([split] if isinstance(split, str) else list(split)))
        carve = not has_val and self.val_fraction and self.val_fraction > 0
        if carve:
            rng = np.random.default_rng(int(self.random_state or 0))
            perm = rng.permutation(train_rows)
            n_val = max(1, int(round(len(perm) * self.val_fraction)))
            val_rows, train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        if "classification" in tasks:
            col = mdata.obs[tasks["classification"]["label_col"]]
            lab = col.iloc[train_rows]
            vals = lab.dropna().astype(str)
            if hasattr(col, "cat"):
                classes = [str(c) for c in col.cat.categories if str(c) in set(vals)]
            else:
                classes = sorted(set(vals))
            if len(classes) < 2:
                raise SchemaMismatchError(f"label column '{tasks['classification']['label_col']}' has "
                                          f"{len(classes)} class(es) in the training rows; need at least 2")
            tasks["classification"]["classes"] = classes
        self.schema_ = {"modalities": {}, "tasks": tasks}
        features = {m: [str(f) for f in mdata.mod[m].var_names] for m in mods}
        self.schema_["modalities"] = {m: {"features": features[m]} for m in mods}
        explicit_rows = train_rows if carve else None

        def train_source(shuffle, drop_last=False):
            return zdata.batches(mdata, split, mods, self.batch_size, shuffle=shuffle,
                                 seed=int(self.random_state or 0), device=device, use_stream=self.use_stream,
                                 drop_last=drop_last, rows=explicit_rows)

        self.preprocessor_ = zdata.Preprocessor.fit(train_source(False), features)
        self.schema_["modalities"] = {m: dict(v, required=True) for m, v in self.preprocessor_.to_json().items()}
        self.schema_["data"] = self._data_info(mdata, split)
        self.schema_.update(self.fit_schema_extra(mdata, train_rows))
        tg_all = self._targets(mdata)
        tg_dev = self._targets_torch(tg_all, device)

        self._seed()
        module = self.build_module().to(device)
        self.module_ = module
        source = train_source(True, drop_last=len(train_rows) > self.batch_size)
        steps_per_epoch = max(1, len(source))
        opt, sched = self.configure_optimizers(module, steps_per_epoch * self.max_epochs)
        if carve:
            val_source = zdata.batches(mdata, None, mods, max(self.batch_size, 256), device=device,
                                       use_stream=False, rows=val_rows)
        else:
            val_source = zdata.batches(mdata, val_split, mods, max(self.batch_size, 256), device=device,
                                       use_stream=self.use_stream) if has_val else None
        best, best_state, bad = -math.inf, None, 0
        self.history_ = []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.max_epochs, desc=f"fit {type(self).__name__}", unit="epoch", leave=False)
        try:
            for epoch in range(self.max_epochs):
                module.train()
                source.set_epoch(epoch)
                tot, nb = 0.0, 0
                for raw in source:
                    inputs = self.preprocessor_(raw)
                    targets = {k: v.index_select(0, inputs["index"]) for k, v in tg_dev.items()}
                    out = self.forward(module, inputs)
                    loss = self.loss(out, targets) + self.penalty(module)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    tot += float(loss.detach())
                    nb += 1
                rec = {"epoch": epoch, "train_loss": tot / max(nb, 1)}
                if val_source is not None:
                    outs = self._collect(module, val_source, None)
                    vt = {k: v[outs["index"]] for k, v in tg_all.items()}
                    score = self.validation_score(outs, vt)
                    rec["val_score"] = score
                    if score > best + 1e-6:
                        best, bad = score, 0
                        best_state = copy.deepcopy(module.state_dict())
                        rec["best"] = True
                    else:
                        bad += 1
                self.history_.append(rec)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: round(v, 4) for k, v in rec.items() if isinstance(v, float)})
                if val_source is not None and bad >= self.patience:
                    break
        finally:
            if bar is not None:
                bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        self.best_val_score_ = best if best_state is not None else None
        self.n_epochs_ = len(self.history_)
        if self.has_survival_:
            outs = self._collect(module, zdata.batches(mdata, None, mods, max(self.batch_size, 256), device=device,
                                                       use_stream=False, rows=train_rows), None)
            tr = {k: v[outs["index"]] for k, v in tg_all.items()}
            ok = tr["surv_ok"]
            times, h0 = breslow_baseline(outs["risk"][ok], tr["time"][ok], tr["event"][ok])
            self.schema_["survival"] = {"baseline_times": times.tolist(), "baseline_cumhaz": h0.tolist(),
                                        "train_time": tr["time"][ok].tolist(), "train_event": tr["event"][ok].astype(int).tolist()}
        self.schema_["data"]["fit_seconds"] = round(time.perf_counter() - t_start, 2)
        self.schema_["data"]["best_val_score"] = self.best_val_score_
        self.schema_["data"]["n_epochs"] = self.n_epochs_
        self.metrics_ = {}
        return self

    def _data_info(self, mdata, split) -> dict:
        man = mdata.uns.get("omicsdata", {}) if hasattr(mdata, "uns") else {}
        return {"dataset": man.get("dataset"), "dataset_version": man.get("version"),
                "builder_options": man.get("builder_options"), "split": split,
                "n_train": int(len(zdata.select_rows(mdata, split)))}

    # ------------------------------------------------------------------ predict
    def _enable_dropout(self, module):
        for m in module.modules():
            if isinstance(m, (torch.nn.Dropout, torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout)):
                m.train()

    @torch.no_grad()
    def _collect(self, module, source, alignment, mc_samples: int = 0) -> dict:
        """Run ``module`` over a raw source; outputs as numpy, with ``index``; MC dropout if ``mc_samples``."""
        module.eval()
        if mc_samples:
            self._enable_dropout(module)
        risks, probas, idx = [], [], []
        for raw in source:
            inputs = self.preprocessor_(raw, alignment)
            idx.append(inputs["index"].cpu().numpy())
            reps = max(1, mc_samples)
            rr, pp = [], []
            for _ in range(reps):
                out = self.forward(module, inputs)
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

    def predict_outputs(self, data, split=None, mc_samples: int = 0, required=None) -> dict:
        """Every output (``risk``, ``proba`` and their MC std) for the ``split`` rows, in row order.

        Input features are aligned by name to ``schema.json`` first.
        """
        self._check_fitted()
        mdata = zdata.resolve(data)
        alignment = align_mudata(self.schema_["modalities"], mdata, required=required,
                                 min_overlap=self.min_overlap, where=type(self).__name__ + ".predict")
        rows = zdata.select_rows(mdata, split)
        mods = [m for m, a in alignment.items() if a is not None]
        source = zdata.batches(mdata, split, mods, max(self.batch_size, 256), device=self.device_,
                               use_stream=self.use_stream)
        align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
        out = self._collect(self.module_, source, align, mc_samples)
        pos = np.searchsorted(rows, out["index"])
        res = {"index": rows, "obs_names": np.asarray(mdata.obs_names[rows])}
        for k, v in out.items():
            if k == "index":
                continue
            arr = np.empty((len(rows),) + v.shape[1:], dtype=v.dtype)
            arr[pos] = v
            res[k] = arr
        return res

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
        risk = self.predict_risk(data, split)
        s = self.schema_["survival"]
        bt, bh = np.asarray(s["baseline_times"]), np.asarray(s["baseline_cumhaz"])
        idx = np.searchsorted(bt, np.asarray(times, dtype=float), side="right") - 1
        h0 = np.where(idx >= 0, bh[np.clip(idx, 0, None)], 0.0)
        return np.exp(-np.exp(risk)[:, None] * h0[None, :])

    # ------------------------------------------------------------------ score
    def evaluate(self, data, split="test") -> dict:
        """Every metric on the ``split`` rows: ``c_index``, ``uno_c``, ``ibs`` (survival);
        ``accuracy``, ``auroc`` (classification); ``n``."""
        from . import metrics as M

        self._check_fitted()
        mdata = zdata.resolve(data)
        out = self.predict_outputs(mdata, split)
        tg = self._targets(mdata)
        tg = {k: v[out["index"]] for k, v in tg.items()}
        res: dict[str, Any] = {"split": split, "n": int(len(out["index"]))}
        if "risk" in out and "time" in tg:
            ok = tg["surv_ok"]
            e, t, r = tg["event"][ok], tg["time"][ok], out["risk"][ok]
            res["c_index"] = M.concordance_index_censored(e, t, r)
            s = self.schema_.get("survival")
            if s:
                te, tt = np.asarray(s["train_event"]), np.asarray(s["train_time"])
                try:
                    tau = float(np.quantile(tt[te.astype(bool)], 0.8))
                    res["uno_c"] = M.concordance_index_ipcw(te, tt, e, t, r, tau=tau)
                    grid = np.quantile(t[e.astype(bool)], np.linspace(0.1, 0.8, 8))
                    grid = np.unique(grid)
                    if grid.size >= 2:
                        bt, bh = np.asarray(s["baseline_times"]), np.asarray(s["baseline_cumhaz"])
                        ix = np.searchsorted(bt, grid, side="right") - 1
                        h0 = np.where(ix >= 0, bh[np.clip(ix, 0, None)], 0.0)
                        sp = np.exp(-np.exp(r)[:, None] * h0[None, :])
                        res["ibs"] = M.integrated_brier_score(te, tt, e, t, sp, grid)
                except OmicsDataError:
                    pass
        if "proba" in out and "label" in tg:
            ok = tg["label"] >= 0
            y = tg["label"][ok]
            p = out["proba"][ok]
            res["accuracy"] = float(np.mean(p.argmax(1) == y))
            try:
                res["auroc"] = M.auroc(y, p, list(range(p.shape[1])))
            except (OmicsDataError, ValueError):
                pass
        if not hasattr(self, "metrics_"):
            self.metrics_ = {}
        self.metrics_[str(split)] = res
        return res

    def score(self, data, y=None, split="test") -> float:
        """C-index (survival models) or accuracy (classifiers) on the ``split`` rows."""
        res = self.evaluate(data, split)
        return float(res["c_index"] if "c_index" in res else res["accuracy"])

    # ------------------------------------------------------------------ explain / persist
    def explain(self, data, split=None, method: str = "integrated_gradients", groups: str = "feature",
                target: str | int | None = None, **kw):
        """Attributions as a tidy DataFrame (sample, modality, feature, attribution); see :mod:`zoo.explain`."""
        from .explain import explain

        return explain(self, data, split=split, method=method, groups=groups, target=target, **kw)

    def save_pretrained(self, path, **card) -> str:
        """Write the checkpoint folder (config.json, model.safetensors, schema.json, README.md)."""
        from .checkpoint import save

        return save(self, path, **card)

    @classmethod
    def from_pretrained(cls, name_or_path, revision: str | None = None, **kw):
        """Load a checkpoint folder, a Hub repo id (``revision`` pins it) or a catalog model name."""
        from .checkpoint import load_any

        return load_any(name_or_path, revision=revision, expected_cls=None if cls is Estimator else cls, **kw)

    def push_to_hub(self, repo_id: str, revision: str | None = None, private: bool = False,
                    commit_message: str = "Upload zoo checkpoint", **card) -> str:
        """Save the checkpoint and upload it to the Hub repo ``repo_id``; returns the commit id."""
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, revision=revision, private=private, commit_message=commit_message, **card)
