"""``zoo.SGUQ``: staged graph convolutional networks with uncertainty quantification (SGUQ).

SGUQ (staged GCN with uncertainty quantification, for Alzheimer's disease
from multi-omics) starts from mRNA alone and adds DNA methylation, then
miRNA, only for the samples it is not yet sure about. Each stage here is a
:class:`zoo.models.mogonet_net.MOGONETNet` over a growing prefix of the views
(default ``[mrna]``, ``[mrna, methylation]``, ``[mrna, methylation, mirna]``),
trained with MOGONET's schedule (:func:`zoo.models.mogonet.train_mogonet`).

Uncertainty: ``n_trials`` stochastic trials per stage - MC dropout passes of
one network (``trials="mc_dropout"``, default) or an ensemble of
``n_trials`` networks trained from different seeds (``trials="ensemble"``,
as the authors' repeated runs). A stage's prediction is the trials' mean
probability. Its uncertainty (``uncertainty``) is, by default, the entropy
of that mean divided by log(C) (``"entropy"``: it grows both when the trials
disagree and when the classes overlap; on planted data it ranked errors
better than the alternative), or the trials' standard deviation of the
predicted class's probability (``"std"``, the authors' measure). Per-view
uncertainty is the same measure on each view's own head in the last stage.

Staged decision: a sample is decided at the first stage whose uncertainty
is at most that stage's threshold (the last stage decides everything left);
``predict(..., abstain=True)`` answers ``"abstain"`` when the deciding
stage's uncertainty is above the abstention threshold.

**Every threshold is tuned on the validation split only, never on test**: a
stage threshold is the largest uncertainty at which the one-sided 90% Wilson
lower bound of the stage's accuracy on the validation samples it would accept
(of those still undecided) is at least the last stage's validation accuracy
(the bound keeps a small validation split from accepting by luck); the abstention threshold keeps
``target_coverage`` of the validation samples. The validation rows are the
data's ``val`` split, else ``val_fraction`` carved from the training rows
(left out of the training graph).
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from omicsdata.errors import SchemaMismatchError

from .. import data as zdata
from .. import inference
from ..align import align_mudata
from ..registry import register_model
from ..tasks import get_task
from ..tasks.classification import coverage_curve
from .mogonet import MOGONET, train_mogonet
from .mogonet_net import MOGONETNet, adaptive_threshold

ABSTAIN = "abstain"


class SGUQNet(nn.Module):
    """``stages.<k>.<member>``: one :class:`MOGONETNet` per stage and ensemble member."""

    def __init__(self, stages, input_dims, n_classes, n_train, members, hidden, hvcdn, dropout, test_graph):
        super().__init__()
        self.stage_modalities = [list(s) for s in stages]
        self.stages = nn.ModuleList([
            nn.ModuleList([MOGONETNet(s, input_dims, n_classes, n_train, hidden, hvcdn, dropout, test_graph)
                           for _ in range(members)]) for s in self.stage_modalities])


@register_model("sguq")
class SGUQ(MOGONET):
    """Staged, uncertainty-aware multi-omics classifier with abstention (see the module docstring).

    Parameters (besides :class:`zoo.MOGONET`'s, which every stage uses)
    ----------
    stages: list of modality lists, one per stage (None: growing prefixes of ``modalities``, else of
        ``mrna, methylation, mirna`` when the data has them, else of the data's modalities).
    n_trials: stochastic trials T per stage (MC dropout passes, or ensemble members).
    trials: ``"mc_dropout"`` or ``"ensemble"``.
    uncertainty: ``"entropy"`` (normalised predictive entropy of the trials' mean) or ``"std"``.
    target_coverage: fraction of validation samples answered at the abstention threshold.

    ``predict_outputs`` gives per sample the staged ``proba``, ``uncertainty``
    (fused, at the deciding stage), ``stage``, ``view_uncertainty`` (n, views)
    and ``abstain``; ``evaluate`` adds the stage shares, the answered coverage
    and accuracy, and the coverage/accuracy curve. Like MOGONET, the training
    samples' preprocessed features (no labels) are kept in the checkpoint.
    MC-dropout trials are seeded by ``random_state`` per call.
    """

    def __init__(self, stages=None, n_trials=20, trials="mc_dropout", uncertainty="entropy", target_coverage=0.8, hidden=(200, 200, 100),
                 adj_parameter=2, hvcdn=None, dropout=0.5, lr_pretrain=1e-3, lr=5e-4, lr_vcdn=1e-3,
                 pretrain_epochs=500, max_epochs=2500, sample_weighting="frequency", standardize=False,
                 test_graph="attach", modalities=None, label_col="label", batch_size=4096, val_fraction=0.15,
                 device="auto", use_stream=False, min_overlap=0.5, random_state=0, progress=False):
        super().__init__(hidden=hidden, adj_parameter=adj_parameter, hvcdn=hvcdn, dropout=dropout,
                         lr_pretrain=lr_pretrain, lr=lr, lr_vcdn=lr_vcdn, pretrain_epochs=pretrain_epochs,
                         max_epochs=max_epochs, sample_weighting=sample_weighting, standardize=standardize,
                         test_graph=test_graph, modalities=modalities, label_col=label_col, batch_size=batch_size,
                         val_fraction=val_fraction, device=device, use_stream=use_stream, min_overlap=min_overlap,
                         random_state=random_state, progress=progress)
        self.stages = stages
        self.n_trials = n_trials
        self.trials = trials
        self.uncertainty = uncertainty
        self.target_coverage = target_coverage

    # ------------------------------------------------------------------ module
    @property
    def _members(self) -> int:
        if self.trials not in ("mc_dropout", "ensemble"):
            raise SchemaMismatchError(f"SGUQ: trials must be 'mc_dropout' or 'ensemble', got {self.trials!r}")
        return int(self.n_trials) if self.trials == "ensemble" else 1

    def build_module(self) -> SGUQNet:
        g, s = self.schema_.get("mogonet") or {}, self.schema_.get("sguq") or {}
        if "n_train" not in g or "stages" not in s:
            raise SchemaMismatchError("SGUQ: schema fields 'mogonet.n_train' and 'sguq.stages' are required")
        return SGUQNet(s["stages"], self.input_dims_, self.n_classes_, int(g["n_train"]), self._members,
                       tuple(self.hidden), self.hvcdn, self.dropout, self.test_graph)

    def _stage_list(self, mods) -> list:
        if self.stages:
            stages = [list(s) for s in self.stages]
            bad = sorted({m for s in stages for m in s} - set(mods))
            if bad:
                raise SchemaMismatchError(f"SGUQ: stages name modalities {bad} the model does not use ({mods})")
            return stages
        order = [m for m in ("mrna", "methylation", "mirna") if m in mods]
        order = order + [m for m in mods if m not in order] if len(order) == len(mods) else list(mods)
        return [order[:k] for k in range(1, len(order) + 1)]

    def card_notes(self) -> str:
        """Model-card text: stored training features, and thresholds tuned on validation rows only."""
        return (super().card_notes() + " SGUQ's stage and abstention thresholds were tuned on the validation "
                "rows only, never on test rows.")

    # ------------------------------------------------------------------ fit
    def fit(self, data, y=None, split: str | list | None = "train", val_split: str | None = "val"):
        """Train every stage on the ``split`` rows, then tune the thresholds on the validation rows only."""
        if not 0 < float(self.target_coverage) <= 1:
            raise SchemaMismatchError(f"SGUQ: target_coverage must be in (0, 1], got {self.target_coverage}")
        mdata = zdata.resolve(data)
        t0 = time.perf_counter()
        self._seed()
        plan, xs, y = self._prepare(mdata, split, val_split)
        val_rows = plan.val if plan.val is not None else (
            zdata.select_rows(mdata, val_split) if plan.has_val else None)
        if val_rows is None or not len(val_rows):
            raise SchemaMismatchError("SGUQ: thresholds are tuned on validation rows: the data has no "
                                      f"'{val_split}' rows and val_fraction is {self.val_fraction}")
        mods = list(self.schema_["modalities"])
        thr = {m: adaptive_threshold(x, int(self.adj_parameter)) for m, x in zip(mods, xs)}
        self.schema_["mogonet"] = {"n_train": int(len(y)), "adj_parameter": int(self.adj_parameter)}
        self.schema_["sguq"] = {"stages": self._stage_list(mods), "trials": self.trials, "n_trials": int(self.n_trials)}
        self._seed()
        module = self.module_ = self.build_module().to(self.device_)
        seed = int(self.random_state or 0)
        self.history_ = []
        for k, members in enumerate(module.stages):
            for j, net in enumerate(members):
                net.set_training_graph([xs[mods.index(m)] for m in net.modalities], [thr[m] for m in net.modalities])
                torch.manual_seed(seed * 7919 + 101 * k + j)
                self.history_.append(train_mogonet(self, net, y)[-1] | {"stage_index": k, "member": j})
                net.eval()
        self._tune(mdata, np.asarray(val_rows))
        self.n_epochs_ = int(self.pretrain_epochs) + int(self.max_epochs)
        self.best_val_score_ = self.schema_["sguq"]["val_accuracy"]
        self.schema_["data"].update(fit_seconds=round(time.perf_counter() - t0, 2), n_epochs=self.n_epochs_,
                                    best_val_score=self.best_val_score_)
        self.metrics_ = {}
        return self

    def _tune(self, mdata, rows: np.ndarray) -> None:
        """Stage and abstention thresholds from the validation rows (never any other rows)."""
        st = self._stage_arrays(mdata, None, rows)
        yv = self._targets(mdata)["label"][rows]
        ok = yv >= 0
        if not ok.any():
            raise SchemaMismatchError("SGUQ: no validation row has a label; thresholds cannot be tuned")
        means, uncs = [m[ok] for m in st["mean"]], [u[ok] for u in st["unc"]]
        yv = yv[ok]
        target = float(np.mean(means[-1].argmax(1) == yv))
        left = np.ones(len(yv), bool)
        thresholds = []
        for k in range(len(means) - 1):
            correct, u = means[k].argmax(1) == yv, uncs[k]
            best = -1.0  # accepts nothing
            for c in np.unique(u[left]):
                acc = correct[left & (u <= c)]
                if acc.size and wilson_lower(acc.mean(), acc.size) >= target:
                    best = float(c)
            thresholds.append(best)
            left &= ~(u <= best)
        dec = self._decide(means, uncs, thresholds)
        u = np.sort(dec["uncertainty"])
        k = max(1, int(np.ceil(float(self.target_coverage) * len(u) - 1e-9)))
        self.schema_["sguq"].update(stage_thresholds=thresholds, abstain_threshold=float(u[k - 1]),
                                    val_accuracy=float(np.mean(dec["proba"].argmax(1) == yv)),
                                    val_last_stage_accuracy=target, n_val=int(len(yv)), tuned_on="validation rows")

    # ------------------------------------------------------------------ staged inference
    @torch.no_grad()
    def _stage_arrays(self, data, split=None, rows=None) -> dict:
        """Per stage: trials' mean proba, uncertainty, per-class std; last stage's per-view uncertainty."""
        self._check_fitted()
        where = "SGUQ.predict"
        mdata = inference.prepare_input(self, data, where)
        alignment = align_mudata(self.schema_["modalities"], mdata, min_overlap=self.min_overlap, where=where)
        rows = zdata.select_rows(mdata, split) if rows is None else np.asarray(rows)
        mods = [m for m, a in alignment.items() if a is not None]
        align = {m: a for m, a in alignment.items() if a is not None and not a.identity}
        src = zdata.batches(mdata, None, mods, self.batch_size, device=self.device_, use_stream=False, rows=rows)
        T, mc = int(self.n_trials), self.trials == "mc_dropout"
        measures = {"entropy": _entropy, "std": _top_std}
        if self.uncertainty not in measures:
            raise SchemaMismatchError(f"SGUQ: uncertainty must be 'entropy' or 'std', got {self.uncertainty!r}")
        measure = measures[self.uncertainty]
        parts: dict = {"mean": [], "unc": [], "std": [], "view_unc": [], "index": []}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state or 0))
            for raw in src:
                inputs = self.preprocessor_(raw, align)
                means, uncs, stds, vu = [], [], [], None
                for members in self.module_.stages:
                    fused, views = [], []
                    for net in members:
                        net.eval()
                        if mc:
                            inference.enable_dropout(net)
                        for _ in range(T if mc else 1):
                            out = net(inputs)
                            fused.append(torch.softmax(out["logits"], -1))
                            views.append(torch.stack([torch.softmax(v, -1) for v in out["view_logits"]], 1))
                        net.eval()
                    P, PV = torch.stack(fused).cpu().numpy(), torch.stack(views).cpu().numpy()  # (T,B,C) (T,B,V,C)
                    mean = P.mean(0)
                    means.append(mean)
                    stds.append(P.std(0))
                    uncs.append(measure(P))
                    vu = np.stack([measure(PV[:, :, v]) for v in range(PV.shape[2])], 1)
                parts["mean"].append(means)
                parts["unc"].append(uncs)
                parts["std"].append(stds)
                parts["view_unc"].append(vu)
                parts["index"].append(inputs["index"].cpu().numpy())
        S = len(self.module_.stages)
        pos = np.argsort(np.concatenate(parts["index"]))
        return {key: [np.concatenate([p[k] for p in parts[key]])[pos] for k in range(S)]
                for key in ("mean", "unc", "std")} | {
                    "view_unc": np.concatenate(parts["view_unc"])[pos], "rows": rows, "mdata": mdata}

    def _decide(self, means, uncs, thresholds, stds=None) -> dict:
        n = len(uncs[0])
        stage = np.full(n, len(means) - 1)
        for k in range(len(means) - 2, -1, -1):  # the first stage within its threshold decides
            stage = np.where(uncs[k] <= thresholds[k], k, stage)
        pick = np.arange(n)
        out = {"stage": stage, "proba": np.stack(means, 0)[stage, pick],
               "uncertainty": np.stack(uncs, 0)[stage, pick]}
        if stds is not None:
            out["proba_std"] = np.stack(stds, 0)[stage, pick]
        return out

    def predict_outputs(self, data, split=None, mc_samples: int = 0, required=None) -> dict:
        """Per sample (``split`` rows, in row order): ``proba``, ``proba_std``, ``uncertainty``, ``stage``,
        ``fused_uncertainty`` (last stage), ``view_uncertainty`` (n, n_views of the last stage), ``abstain``."""
        st = self._stage_arrays(data, split)
        s = self.schema_["sguq"]
        dec = self._decide(st["mean"], st["unc"], s["stage_thresholds"], st["std"])
        dec.update(index=st["rows"], obs_names=np.asarray(st["mdata"].obs_names[st["rows"]]),
                   fused_uncertainty=st["unc"][-1], view_uncertainty=st["view_unc"],
                   abstain=dec["uncertainty"] > s["abstain_threshold"])
        return dec

    def predict_proba(self, data, split=None, return_std: bool = False, mc_samples: int = 0):
        """Staged class probabilities; ``return_std``: their std over the deciding stage's trials."""
        out = self.predict_outputs(data, split)
        return (out["proba"], out["proba_std"]) if return_std else out["proba"]

    def predict(self, data, split=None, abstain: bool = False, return_std: bool = False, mc_samples: int = 0):
        """Class labels; ``abstain=True``: ``"abstain"`` where the uncertainty is above the tuned threshold."""
        out = self.predict_outputs(data, split)
        if return_std:
            return out["proba"], out["proba_std"]
        labels = self.classes_[out["proba"].argmax(1)].astype(object)
        if abstain:
            labels[out["abstain"]] = ABSTAIN
        return labels

    def evaluate(self, data, split="test") -> dict:
        """Classification metrics (coverage accuracies ranked by SGUQ's uncertainty), the stage shares,
        ``coverage`` / ``accuracy_answered`` at the tuned abstention threshold and ``coverage_curve``."""
        out = self.predict_outputs(data, split)
        mdata = zdata.resolve(data)
        tg = {k: v[out["index"]] for k, v in self._targets(mdata).items()}
        res = {"split": split, "n": int(len(out["index"]))}
        res.update(get_task("classification").metrics(self, out, tg))
        ok = tg["label"] >= 0
        y, pred, ans = tg["label"][ok], out["proba"][ok].argmax(1), ~out["abstain"][ok]
        res["coverage"] = float(ans.mean()) if ok.any() else float("nan")
        res["accuracy_answered"] = float(np.mean(pred[ans] == y[ans])) if ans.any() else float("nan")
        for k in range(len(self.module_.stages)):
            res[f"stage{k + 1}_share"] = float(np.mean(out["stage"] == k))
        self.metrics_ = getattr(self, "metrics_", None) or {}
        self.metrics_[str(split)] = dict(res)
        cov, acc = coverage_curve(y, pred, -out["uncertainty"][ok])
        res["coverage_curve"] = {"coverage": cov, "accuracy": acc}
        return res


def wilson_lower(p: float, n: int, z: float = 1.2816) -> float:
    """One-sided 90% Wilson lower bound of a proportion ``p`` observed on ``n`` samples."""
    if n <= 0:
        return 0.0
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return float((centre - spread) / (1 + z2 / n))


def _top_std(P: np.ndarray) -> np.ndarray:
    """Std over trials (axis 0 of ``P`` (T, B, C)) of the probability of each sample's mean-predicted class."""
    top = P.mean(0).argmax(1)
    return P[:, np.arange(P.shape[1]), top].std(0)


def _entropy(P: np.ndarray) -> np.ndarray:
    """Entropy of the trials' mean probability (``P`` (T, B, C)), divided by log(C): in [0, 1]."""
    mean = P.mean(0).astype(np.float64)
    return -(mean * np.log(np.clip(mean, 1e-12, 1.0))).sum(1) / np.log(P.shape[2])
