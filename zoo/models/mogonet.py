"""``zoo.MOGONET``: multi-omics graph convolutional networks (Wang et al. 2021, Nature Communications).

One GCN encoder per omics view over a cosine patient-similarity graph, a
linear head per view, and a View Correlation Discovery Network (VCDN) that
fuses the views' predictions through their cross-view outer product. The
torch module and the graphs are :mod:`zoo.models.mogonet_net` (parameter
names follow the authors' ``E<i>.pth`` / ``C<i>.pth`` / ``C.pth`` files).

Training follows the authors' ``train_test.py``: full-batch on the training
graph; ``pretrain_epochs`` of per-view pre-training (encoder + head of each
view, Adam at ``lr_pretrain``), then ``max_epochs`` of joint training where
every epoch first steps each view (Adam at ``lr``) and then the VCDN alone
(Adam at ``lr_vcdn``); losses are cross-entropy weighted per sample
(``sample_weighting``). No early stopping: the authors train a fixed schedule.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from omicsdata.errors import SchemaMismatchError

from .. import data as zdata
from ..estimator import Estimator
from ..preprocess import Preprocessor, identity_schema, store_recipe
from ..registry import register_model
from ..tasks import get_task
from .mogonet_net import MOGONETNet, adaptive_threshold

_CONTRACT = ("encoders.", "heads.", "vcdn.")


def sample_weights(y: np.ndarray, n_classes: int, how: str) -> np.ndarray:
    """Per-sample loss weights: ``"frequency"`` (the authors': class count / n), ``"balanced"``, ``"none"``."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if how == "frequency":
        return counts[y] / counts.sum()
    if how == "balanced":
        return counts.sum() / (n_classes * counts[y])
    if how == "none":
        return np.ones(len(y))
    raise SchemaMismatchError(f"sample_weighting must be 'frequency', 'balanced' or 'none', got {how!r}")


@register_model("mogonet")
class MOGONET(Estimator):
    """MOGONET classifier over any number of omics views (one view per modality, ``n_views`` = their number).

    Parameters
    ----------
    hidden: the three GCN widths (authors: ROSMAP ``(200, 200, 100)``, BRCA ``(400, 400, 200)``).
    adj_parameter: edges per node of the adaptive cosine graph (authors: ROSMAP 2, BRCA 10).
    hvcdn: VCDN hidden width (None: ``n_classes ** n_views``, as the authors).
    dropout: GCN dropout (0.5); also what ``predict_proba(return_std=True)`` samples (MC dropout).
    lr_pretrain, lr, lr_vcdn: Adam rates of view pre-training, joint view training and the VCDN.
    pretrain_epochs, max_epochs: the schedule (authors: 500 and 2500).
    sample_weighting: ``"frequency"`` (the authors' per-class weight), ``"balanced"`` or ``"none"``.
    standardize: z-score features with training statistics before the graph. False (default) feeds
        values as they are (after ``log1p`` for count data), as the authors do with their
        [0, 1]-scaled files and as their weights expect.
    test_graph: how new samples join the graph (see below).

    The graph is transductive. The fitted model keeps the **training samples'
    preprocessed features** (no labels) in its checkpoint (``graph.x_<v>``
    buffers) together with each view's adaptive distance threshold. At predict
    time (``test_graph="attach"``, default) every new sample is linked to the
    training samples whose cosine distance is within the threshold - the
    authors' test-time rule - with cosine weights, a self-loop and row
    normalisation, while training samples keep their training graph; so a
    prediction depends only on the sample and the stored training set, and
    predicting a set at once or one sample at a time gives the same answer.
    ``test_graph="authors"`` instead builds the authors' own test graph over
    the training samples plus all samples predicted together (up to
    ``batch_size`` per call): it reproduces their code's outputs, but a
    sample's prediction then depends on its batch.
    """

    task_names = ("classification",)

    def __init__(self, hidden=(200, 200, 100), adj_parameter=2, hvcdn=None, dropout=0.5, lr_pretrain=1e-3, lr=5e-4,
                 lr_vcdn=1e-3, pretrain_epochs=500, max_epochs=2500, sample_weighting="frequency", standardize=False,
                 test_graph="attach", modalities=None, label_col="label", batch_size=4096, val_fraction=0.15,
                 device="auto", use_stream=False, min_overlap=0.5, random_state=0, progress=False):
        super().__init__(modalities=modalities, time_col=None, event_col=None, label_col=label_col,
                         batch_size=batch_size, max_epochs=max_epochs, patience=None, lr=lr, weight_decay=0.0,
                         val_fraction=val_fraction, device=device, use_stream=use_stream, min_overlap=min_overlap,
                         random_state=random_state, progress=progress)
        self.hidden = hidden
        self.adj_parameter = adj_parameter
        self.hvcdn = hvcdn
        self.dropout = dropout
        self.lr_pretrain = lr_pretrain
        self.lr_vcdn = lr_vcdn
        self.pretrain_epochs = pretrain_epochs
        self.sample_weighting = sample_weighting
        self.standardize = standardize
        self.test_graph = test_graph

    # ------------------------------------------------------------------ module
    def build_module(self) -> MOGONETNet:
        g = self.schema_.get("mogonet") or {}
        if "n_train" not in g:
            raise SchemaMismatchError(f"{type(self).__name__}: schema field 'mogonet.n_train' is missing")
        return MOGONETNet(list(self.schema_["modalities"]), self.input_dims_, self.n_classes_, int(g["n_train"]),
                          tuple(self.hidden), self.hvcdn, self.dropout, self.test_graph)

    def card_notes(self) -> str:
        """Model-card text: what of the training data this checkpoint holds (features, never labels)."""
        n = (getattr(self, "schema_", None) or {}).get("mogonet", {}).get("n_train")
        return (f"Transductive graph model: besides its parameters this checkpoint holds the preprocessed features "
                f"of the {n} training samples (buffers graph.x_<view>; no labels) and each view's adaptive "
                "distance threshold, because new samples are linked to the training samples at predict time.")

    # ------------------------------------------------------------------ fit
    def _prepare(self, mdata, split, val_split):
        """Schema, preprocessing and the training rows' preprocessed features; returns ``(plan, xs, y)``."""
        mods = list(self.modalities) if self.modalities else list(mdata.mod)
        for m in mods:
            if m not in mdata.mod:
                raise SchemaMismatchError(f"modality '{m}' asked for but the data has only {sorted(mdata.mod)}")
        tasks = self._resolve_tasks(mdata)
        seed = int(self.random_state or 0)
        plan = zdata.plan_rows(mdata, split, val_split, self.val_fraction, seed)
        tasks = {n: get_task(n).fit(spec, mdata.obs, plan.train) for n, spec in tasks.items()}
        features = {m: [str(f) for f in mdata.mod[m].var_names] for m in mods}
        self.schema_ = {"modalities": {m: {"features": features[m]} for m in mods}, "tasks": tasks}
        src = zdata.batches(mdata, None, mods, max(len(plan.train), 1), device=self.device_, use_stream=False,
                            rows=plan.train)
        pre = Preprocessor.fit(src, features)
        entries = pre.to_json()
        if not self.standardize:
            for e in entries.values():
                e.update(mean=[0.0] * len(e["features"]), scale=[1.0] * len(e["features"]))
        self.preprocessor_ = Preprocessor.from_json(entries)
        self.schema_["modalities"] = {m: dict(v, required=True) for m, v in entries.items()}
        recipe = {m: r for m, r in store_recipe(mdata).items() if m in mods}
        if recipe:
            self.schema_["preprocessing"] = {"recipe": recipe}
        self.schema_["data"] = self._data_info(mdata, split, len(plan.train))
        batch = self.preprocessor_(next(iter(src)))  # one batch, rows in plan.train order
        xs = [batch[m].float() for m in mods]
        y = self._targets(mdata)["label"][plan.train]
        return plan, xs, y

    def fit(self, data, y=None, split: str | list | None = "train", val_split: str | None = "val"):
        """Fit on the ``split`` rows (the training graph); ``val_split`` rows (or a carved ``val_fraction``)
        are only scored at the end (``best_val_score_``), never trained on. ``y`` is ignored."""
        mdata = zdata.resolve(data)
        t0 = time.perf_counter()
        self._seed()
        plan, xs, y = self._prepare(mdata, split, val_split)
        thresholds = [adaptive_threshold(x, int(self.adj_parameter)) for x in xs]
        self.schema_["mogonet"] = {"n_train": int(len(y)), "adj_parameter": int(self.adj_parameter)}
        self._seed()
        module = self.module_ = self.build_module().to(self.device_)
        module.set_training_graph(xs, thresholds)
        self.history_ = train_mogonet(self, module, y)
        module.eval()
        self.n_epochs_ = int(self.pretrain_epochs) + int(self.max_epochs)
        self.best_val_score_ = None
        val_rows = plan.val if plan.val is not None else (
            zdata.select_rows(mdata, val_split) if plan.has_val else None)
        if val_rows is not None and len(val_rows):
            self.best_val_score_ = self._accuracy_on_rows(mdata, val_rows)
        self.schema_["data"].update(fit_seconds=round(time.perf_counter() - t0, 2), n_epochs=self.n_epochs_,
                                    best_val_score=self.best_val_score_)
        self.metrics_ = {}
        return self

    def _accuracy_on_rows(self, mdata, rows) -> float:
        src = zdata.batches(mdata, None, list(self.schema_["modalities"]), self.batch_size, device=self.device_,
                            use_stream=False, rows=np.asarray(rows))
        out = self._collect(self.module_, src, None)
        yv = self._targets(mdata)["label"][out["index"]]
        ok = yv >= 0
        return float(np.mean(out["proba"][ok].argmax(1) == yv[ok])) if ok.any() else None

    # ------------------------------------------------------------------ the authors' weights
    @classmethod
    def from_weights(cls, state: dict, train_features: dict, classes, adj_parameter: int = 2, **params):
        """A fitted MOGONET from tensors named as :class:`MOGONETNet`'s (``encoders.*``, ``heads.*``,
        ``vcdn.*``) and the training samples' features ``{modality: DataFrame or (n, p) array}``, in view
        order. Preprocessing is the identity (inputs must be preprocessed as the training features were);
        ``hidden`` and ``hvcdn`` are read from the tensors; each view's threshold is computed from its
        training features with ``adj_parameter`` (authors: ROSMAP 2, BRCA 10)."""
        import pandas as pd

        state = {k: torch.as_tensor(v) for k, v in state.items() if k.startswith(_CONTRACT)}
        try:
            hidden = [int(state[f"encoders.0.gc{i}.weight"].shape[1]) for i in (1, 2, 3)]
        except KeyError as e:
            raise SchemaMismatchError(f"MOGONET.from_weights: tensor {e} is missing") from None
        if "vcdn.model.0.weight" in state:
            params.setdefault("hvcdn", int(state["vcdn.model.0.weight"].shape[0]))
        est = cls(hidden=tuple(hidden), adj_parameter=adj_parameter, **params)
        names, xs = {}, []
        for m, x in train_features.items():
            if isinstance(x, pd.DataFrame):
                names[m] = [str(c) for c in x.columns]
                x = x.to_numpy()
            else:
                names[m] = [f"{m}_{j}" for j in range(np.shape(x)[1])]
            xs.append(torch.as_tensor(np.asarray(x, dtype=np.float32)))
        schema = {"modalities": identity_schema(names),
                  "tasks": {"classification": {"label_col": est.label_col, "classes": [str(c) for c in classes]}},
                  "mogonet": {"n_train": int(xs[0].shape[0]), "adj_parameter": int(adj_parameter)},
                  "data": {"dataset": None, "split": "authors' training samples", "n_train": int(xs[0].shape[0])}}
        thresholds = [adaptive_threshold(x, int(adj_parameter)) for x in xs]
        full = dict(state)
        for v, x in enumerate(xs):
            full[f"graph.x_{v}"] = x
        full["graph.threshold"] = torch.tensor(thresholds, dtype=torch.float32)
        est.restore_checkpoint(schema, {k: v.float() for k, v in full.items()})
        return est


def _weighted_ce(logits, y, w):
    return torch.mean(F.cross_entropy(logits, y, reduction="none") * w)


def train_mogonet(est, module: MOGONETNet, y: np.ndarray) -> list:
    """The authors' schedule on the training graph, in place; returns a short loss history."""
    dev = module.graph.threshold.device
    lab = np.asarray(y) >= 0  # unlabelled training samples stay in the graph but out of the loss
    yt = torch.as_tensor(np.where(lab, y, 0), dtype=torch.long, device=dev)
    w = np.zeros(len(y))
    w[lab] = sample_weights(np.asarray(y)[lab], module.n_classes, est.sample_weighting)
    wt = torch.as_tensor(w, dtype=torch.float32, device=dev)
    V, history = module.n_views, []

    def view_opts(lr):
        return [torch.optim.Adam(list(module.encoders[v].parameters()) + list(module.heads[v].parameters()), lr=lr)
                for v in range(V)]

    def step_views(opts) -> float:
        tot = 0.0
        for v, opt in enumerate(opts):
            opt.zero_grad(set_to_none=True)
            loss = _weighted_ce(module.view_logits_train(v), yt, wt)
            loss.backward()
            opt.step()
            tot += float(loss.detach())
        return tot / V

    module.train()
    opts = view_opts(est.lr_pretrain)
    for epoch in range(int(est.pretrain_epochs)):
        loss = step_views(opts)
        if epoch % 50 == 0 or epoch == est.pretrain_epochs - 1:
            history.append({"stage": "pretrain", "epoch": epoch, "view_loss": loss})
    opts = view_opts(est.lr)
    opt_c = torch.optim.Adam(module.vcdn.parameters(), lr=est.lr_vcdn) if module.vcdn is not None else None
    for epoch in range(int(est.max_epochs)):
        loss = step_views(opts)
        rec = {"stage": "joint", "epoch": epoch, "view_loss": loss}
        if opt_c is not None:
            with torch.no_grad():  # the VCDN step updates the VCDN only (as the authors' optimiser does)
                views = [module.view_logits_train(v) for v in range(V)]
            opt_c.zero_grad(set_to_none=True)
            c_loss = _weighted_ce(module.vcdn(views), yt, wt)
            c_loss.backward()
            opt_c.step()
            rec["vcdn_loss"] = float(c_loss.detach())
        if epoch % 50 == 0 or epoch == est.max_epochs - 1:
            history.append(rec)
    return history
