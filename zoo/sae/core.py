"""``zoo.SparseAutoencoder``: a top-k sparse autoencoder over a hidden layer of any fitted zoo model.

>>> sae = zoo.SparseAutoencoder(n_latents=512, k=16).fit(model, "demo-pancancer", split="train")
>>> sae.dead_fraction_, sae.fvu_                 # dead latents; variance unexplained on held-out rows
>>> sae.top_features(7); sae.top_samples(7); sae.top_labels(7)
>>> sae.save_pretrained("sae/"); zoo.SparseAutoencoder.from_pretrained("sae/").attach(model, data)

Training streams the layer's activations batch by batch (:mod:`zoo.sae.activations`);
the activations are centred on their training mean and divided by one scalar
(the root mean squared norm per dimension) before the SAE sees them, which
leaves the fraction of variance unexplained unchanged.

Definitions:

* ``fvu_``: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over the held-out rows
  (the data's ``holdout_split`` rows, else a seeded ``holdout_fraction`` of
  the training rows that the SAE never trains on).
* ``dead_fraction_``: share of latents that fire on none of the training rows
  after training.
* ``enrichment_``: one-vs-rest AUROC / Mann-Whitney z of every (latent, label)
  on the training rows (:mod:`zoo.sae.enrichment`), when the model has a label
  column in the data (or ``label_col`` is given).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from omicsdata.errors import SchemaMismatchError
from omicsdata.paths import atomic_path

from .. import data as zdata
from ..checkpoint import read_json, read_tensors
from . import activations as A
from .attribution import latent_attribution
from .enrichment import auroc_table
from .net import TopKSAE

FORMAT, FORMAT_VERSION = "zoo-sae", 1
CONFIG, WEIGHTS = "sae.json", "sae.safetensors"
PARAMS = ("n_latents", "k", "layer", "n_epochs", "batch_size", "lr", "aux_k", "aux_coef", "dead_after",
          "holdout_split", "holdout_fraction", "label_col", "n_top", "use_stream", "random_state")


class SparseAutoencoder:
    """Top-k SAE over the activations of ``layer`` of a fitted zoo estimator (see the module docstring).

    ``n_latents``: dictionary size; ``k``: latents active per sample;
    ``layer``: module path in ``model.module_`` (None: the model's
    ``embedding_layer``, else its ``encoder``); ``aux_k``: latents of the
    auxiliary dead-latent loss (None: ``2 * k``; 0 disables) weighted by
    ``aux_coef``; ``dead_after``: samples without firing after which a latent
    counts as dead for that loss (None: one epoch of training rows);
    ``n_top``: top samples kept per latent; ``use_stream``: read batches through
    :func:`omicsdata.torch.stream` (None: as the model does).
    """

    def __init__(self, n_latents=512, k=16, layer=None, n_epochs=50, batch_size=64, lr=1e-3, aux_k=None,
                 aux_coef=1 / 32, dead_after=None, holdout_split="val", holdout_fraction=0.15, label_col=None,
                 n_top=20, use_stream=None, random_state=0):
        self.n_latents, self.k, self.layer = int(n_latents), int(k), layer
        self.n_epochs, self.batch_size, self.lr = int(n_epochs), int(batch_size), float(lr)
        self.aux_k, self.aux_coef, self.dead_after = aux_k, float(aux_coef), dead_after
        self.holdout_split, self.holdout_fraction = holdout_split, float(holdout_fraction)
        self.label_col, self.n_top, self.random_state = label_col, int(n_top), int(random_state)
        self.use_stream = use_stream
        self.model_ = self.data_ = None

    def get_params(self) -> dict:
        """The constructor parameters."""
        return {p: getattr(self, p) for p in PARAMS}

    # ------------------------------------------------------------------ model link
    def attach(self, model, data=None, check: bool = True) -> "SparseAutoencoder":
        """Link a fitted model (and data for :meth:`top_features`); ``check``: its weights must be the ones
        the SAE was trained on (sha256 fingerprint), the layer must exist and have the same width."""
        model._check_fitted()
        name, sub = A.resolve_layer(model, self.layer_)
        if check and getattr(self, "model_fingerprint_", None) and A.model_fingerprint(model) != self.model_fingerprint_:
            raise SchemaMismatchError(f"{type(model).__name__}: its weights differ from those the SAE was trained "
                                      "on (model fingerprint); attach(..., check=False) to use it anyway")
        self.model_, self._sub = model, sub
        if getattr(self, "net_", None) is not None:
            self.net_, self.mean_ = self.net_.to(model.device_), self.mean_.to(model.device_)
        if data is not None:
            self.data_ = A.prepare(model, data, "SparseAutoencoder")
        return self

    def _need_model(self):
        if getattr(self, "net_", None) is None:
            raise SchemaMismatchError("this SparseAutoencoder is not fitted: call fit(model, data) or from_pretrained")
        if self.model_ is None:
            raise SchemaMismatchError("no model attached: call attach(model, data) after from_pretrained")

    def _norm(self, act: torch.Tensor) -> torch.Tensor:
        return (act - self.mean_.to(act.device)) / self.scale_

    def _pre(self, act: torch.Tensor) -> torch.Tensor:
        return self.net_.preacts(self._norm(act))

    def _stream(self, mdata, mods, align, split=None, rows=None, shuffle=False, seed=0):
        return A.stream(self.model_, self._sub, self.layer_, mdata, mods, align, split=split, rows=rows,
                        batch_size=self.batch_size, shuffle=shuffle, seed=seed, use_stream=self.use_stream)

    # ------------------------------------------------------------------ fit
    def fit(self, model, data, split="train"):
        """Train on the activations of ``model``'s layer over the ``split`` rows of ``data``; the model is
        not changed. Sets ``dead_fraction_``, ``fvu_``, ``fire_rate_``, top samples and ``enrichment_``."""
        model._check_fitted()
        torch.manual_seed(self.random_state)
        self.layer_, self._sub = A.resolve_layer(model, self.layer)
        self.model_ = model
        mdata, mods, align = self.data_ = A.prepare(model, data, "SparseAutoencoder.fit")
        plan = zdata.plan_rows(mdata, split, self.holdout_split, self.holdout_fraction, self.random_state)
        train_rows = plan.explicit_train
        if plan.val is not None:
            held = dict(rows=plan.val)
        elif plan.has_val:
            held = dict(split=self.holdout_split)
        else:
            held = None
        src = self._stream(mdata, mods, align, split=split if train_rows is None else None, rows=train_rows,
                           shuffle=True, seed=self.random_state)
        # pass 1: centre and scale
        n, s1, s2 = 0, None, 0.0
        for _, act in src:
            a = act.double()
            s1 = a.sum(0) if s1 is None else s1 + a.sum(0)
            s2 += float(a.pow(2).sum())
            n += a.shape[0]
        if n == 0:
            raise SchemaMismatchError(f"split {split!r} gave no rows to train the SAE on")
        self.mean_ = (s1 / n).float().cpu()
        s2 = max(s2 - n * float((s1 / n).pow(2).sum()), 0.0)  # sum of squared deviations from the mean
        self.d_in_ = int(self.mean_.shape[0])
        self.scale_ = float(max(np.sqrt(s2 / n / self.d_in_), 1e-8))
        # pass 2..: train
        dev = model.device_
        net = self.net_ = TopKSAE(self.d_in_, self.n_latents, self.k).to(dev)
        self.mean_ = self.mean_.to(dev)
        aux_k = 2 * self.k if self.aux_k is None else int(self.aux_k)
        dead_after = n if self.dead_after is None else int(self.dead_after)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        self.history_ = []
        for epoch in range(self.n_epochs):
            src.set_epoch(epoch)
            tot, nb = 0.0, 0
            for _, act in src:
                loss, info = net.loss(self._norm(act), aux_k=aux_k, aux_coef=self.aux_coef, dead_after=dead_after)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                net.project_decoder_grad()
                opt.step()
                net.normalize_decoder()
                tot, nb = tot + info["nmse"], nb + 1
            self.history_.append({"epoch": epoch, "train_nmse": tot / max(nb, 1)})
        # summaries over the training rows, then the held-out rows
        codes, idx = self._codes(self._stream(mdata, mods, align, split=split if train_rows is None else None,
                                              rows=train_rows))
        self._summarize(codes, idx, mdata, model)
        self.fvu_ = self._fvu(self._stream(mdata, mods, align, **held)) if held else None
        self.model_fingerprint_ = A.model_fingerprint(model)
        self.model_type_ = model.model_type
        return self

    @torch.no_grad()
    def _codes(self, stream) -> tuple[np.ndarray, np.ndarray]:
        zs, idx = [], []
        self.net_.eval()
        for i, act in stream:
            zs.append(self.net_.encode(self._norm(act)).cpu().numpy())
            idx.append(i.cpu().numpy())
        self.net_.train()
        if not zs:
            return np.zeros((0, self.n_latents), np.float32), np.zeros(0, np.int64)
        return np.concatenate(zs), np.concatenate(idx)

    @torch.no_grad()
    def _fvu(self, stream) -> float:
        err, n, s1, s2 = 0.0, 0, None, 0.0
        for _, act in stream:
            x = self._norm(act).double()
            x_hat = self.net_.decode(self.net_.encode(x.float())).double()
            err += float((x - x_hat).pow(2).sum())
            s1 = x.sum(0) if s1 is None else s1 + x.sum(0)
            s2 += float(x.pow(2).sum())
            n += x.shape[0]
        if n == 0:
            return float("nan")
        total = s2 - float(s1.pow(2).sum()) / n
        return float(err / max(total, 1e-12))

    def _summarize(self, codes: np.ndarray, idx: np.ndarray, mdata, model) -> None:
        fired = (codes > 0)
        self.fire_rate_ = fired.mean(0)
        self.dead_fraction_ = float((~fired.any(0)).mean())
        names = np.asarray(mdata.obs_names)[idx]
        top = {}
        for j in np.flatnonzero(fired.any(0)):
            order = np.argsort(-codes[:, j], kind="stable")[: self.n_top]
            order = order[codes[order, j] > 0]
            top[int(j)] = [[str(names[r]), float(codes[r, j])] for r in order]
        self.top_samples_ = top
        col = self.label_col or getattr(model, "label_col", None)
        self.label_col_ = col if col and col in mdata.obs.columns else None
        self.enrichment_ = None
        if self.label_col_:
            labels = mdata.obs[self.label_col_].to_numpy()[idx]
            self.enrichment_ = auroc_table(codes, labels)

    # ------------------------------------------------------------------ use
    def transform(self, data, split=None) -> np.ndarray:
        """Sparse codes (n_rows, n_latents) of the ``split`` rows of ``data``, in row order."""
        self._need_model()
        mdata, mods, align = A.prepare(self.model_, data, "SparseAutoencoder.transform")
        rows = zdata.select_rows(mdata, split)
        codes, idx = self._codes(self._stream(mdata, mods, align, rows=rows))
        out = np.zeros_like(codes)
        out[np.searchsorted(rows, idx)] = codes
        return out

    def top_samples(self, latent: int, n: int | None = None) -> pd.DataFrame:
        """The training samples on which ``latent`` fires most: ``sample, activation`` (and the label)."""
        self._check_latent(latent)
        rows = self.top_samples_.get(int(latent), [])[: n or self.n_top]
        df = pd.DataFrame(rows, columns=["sample", "activation"])
        if self.label_col_ and self.data_ is not None and len(df):
            obs = self.data_[0].obs
            df[self.label_col_] = obs[self.label_col_].astype(object).reindex(df["sample"]).to_numpy()
        return df

    def top_labels(self, latent: int, n: int = 5) -> pd.DataFrame:
        """Labels ``latent`` is most enriched in (training rows): ``label, n_in, mean_in, mean_out, auroc, z, p``."""
        self._check_latent(latent)
        if self.enrichment_ is None:
            raise SchemaMismatchError("no label column was available at fit time (label_col)")
        e = self.enrichment_
        return e[e["latent"] == int(latent)].sort_values("auroc", ascending=False).head(n).reset_index(drop=True)

    def top_features(self, latent: int, n: int = 20, data=None) -> pd.DataFrame:
        """Input features most tied to ``latent``: gradient x input of its pre-activation w.r.t. the model's
        inputs, averaged over its top-activating samples (:mod:`zoo.sae.attribution`); sorted by
        ``|attribution|`` (``n=None``: all features); columns ``modality, feature, attribution, mean_abs_attribution``."""
        self._need_model()
        self._check_latent(latent)
        if data is not None:
            self.data_ = A.prepare(self.model_, data, "SparseAutoencoder.top_features")
        if self.data_ is None:
            raise SchemaMismatchError("top_features needs the data: attach(model, data) or top_features(..., data=)")
        mdata, mods, align = self.data_
        samples = [s for s, _ in self.top_samples_.get(int(latent), [])]
        if not samples:
            raise SchemaMismatchError(f"latent {latent} never fires on the training rows (a dead latent)")
        pos = pd.Index(mdata.obs_names).get_indexer(samples)
        if (pos < 0).any():
            missing = [s for s, p in zip(samples, pos) if p < 0][:5]
            raise SchemaMismatchError(f"the data lacks the latent's top samples {missing}")
        df = latent_attribution(self.model_, self._sub, self.layer_, self._pre, int(latent), mdata, mods, align, pos)
        df = df.reindex(df["attribution"].abs().sort_values(ascending=False, kind="stable").index)
        df = (df if n is None else df.head(n)).reset_index(drop=True)
        df.insert(0, "latent", int(latent))
        return df

    def _check_latent(self, latent):
        if not 0 <= int(latent) < self.n_latents:
            raise SchemaMismatchError(f"latent must be in 0..{self.n_latents - 1}, got {latent}")

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, path) -> str:
        """Write ``sae.json`` (parameters, layer, statistics, top samples, enrichment) and ``sae.safetensors``
        (weights, normalisation, firing rates) to folder ``path``; no pickle."""
        from safetensors.torch import save_file

        if getattr(self, "net_", None) is None:
            raise SchemaMismatchError("nothing to save: the SparseAutoencoder is not fitted")
        cfg = {"format": FORMAT, "format_version": FORMAT_VERSION, "params": self.get_params(),
               "layer": self.layer_, "d_in": self.d_in_, "scale": self.scale_, "model_type": self.model_type_,
               "model_fingerprint": self.model_fingerprint_, "dead_fraction": self.dead_fraction_,
               "fvu": self.fvu_, "label_col": self.label_col_, "history": self.history_,
               "top_samples": {str(k): v for k, v in self.top_samples_.items()},
               "enrichment": None if self.enrichment_ is None else self.enrichment_.to_dict(orient="list")}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
        tensors["norm_mean"] = self.mean_.detach().cpu().contiguous()
        tensors["fire_rate"] = torch.as_tensor(np.asarray(self.fire_rate_, dtype=np.float32))
        with atomic_path(Path(path)) as tmp:
            tmp.mkdir(parents=True)
            (tmp / CONFIG).write_text(json.dumps(cfg))
            save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        return str(path)

    @classmethod
    def from_pretrained(cls, path, model=None, data=None) -> "SparseAutoencoder":
        """Load a folder written by :meth:`save_pretrained`; ``model`` (and ``data``) are attached when given."""
        path = Path(path)
        cfg = read_json(path / CONFIG, kind="SparseAutoencoder folder")
        if cfg.get("format") != FORMAT:
            raise SchemaMismatchError(f"{path / CONFIG}: field 'format' is {cfg.get('format')!r}, expected '{FORMAT}'")
        t = read_tensors(path / WEIGHTS, kind="SparseAutoencoder folder")
        try:
            sae = cls(**cfg["params"])
            sae.layer_, sae.d_in_, sae.scale_ = cfg["layer"], int(cfg["d_in"]), float(cfg["scale"])
            net = TopKSAE(sae.d_in_, sae.n_latents, sae.k)
            net.load_state_dict({k: v for k, v in t.items() if k not in ("norm_mean", "fire_rate")})
        except (KeyError, TypeError, RuntimeError, ValueError) as e:
            raise SchemaMismatchError(f"{path}: {CONFIG} and {WEIGHTS} do not describe one SAE ({e})") from None
        sae.net_, sae.mean_, sae.fire_rate_ = net, t["norm_mean"], t["fire_rate"].numpy()
        sae.model_type_, sae.model_fingerprint_ = cfg.get("model_type"), cfg.get("model_fingerprint")
        sae.dead_fraction_, sae.fvu_, sae.label_col_ = cfg.get("dead_fraction"), cfg.get("fvu"), cfg.get("label_col")
        sae.history_ = cfg.get("history", [])
        sae.top_samples_ = {int(k): v for k, v in (cfg.get("top_samples") or {}).items()}
        enr = cfg.get("enrichment")
        sae.enrichment_ = pd.DataFrame(enr) if enr else None
        if model is not None:
            if sae.model_type_ and model.model_type != sae.model_type_:
                raise SchemaMismatchError(f"{path / CONFIG}: field 'model_type' is {sae.model_type_!r}, the model "
                                          f"given is {model.model_type!r}")
            sae.attach(model, data)
        return sae
