"""SeNMo: self-normalising MLP over concatenated multi-omics (Waqas et al.), with a small-cohort recipe.

Architecture: the modalities' features (in ``schema.json`` order) and, by
default, one presence flag per modality are concatenated and fed to an MLP;
each block is Linear -> activation -> AlphaDropout with LeCun-normal weights
(the self-normalising recipe). A Cox head gives the risk (log-hazard, higher
= shorter survival) and an optional cancer-type head the class logits; both
train jointly. The module is :class:`zoo.models.senmo_net.SeNMoNet`, laid out
like the authors' (``encoder.<i>.0``, ``classifier.0``...) so their weights
map onto it (:mod:`zoo.models.senmo_upstream`).

Named configurations (:data:`CONFIGURATIONS`, :meth:`SeNMo.from_config`):

* ``senmo-small-cohort`` (the defaults): for a few hundred patients and
  thousands of features. What it adds to the authors' network, all fitted on
  the training rows only and recorded in ``schema.json["senmo_recipe"]``:

  - **univariate Cox screening** (``max_features_per_modality=200``, the
    zoo's screening in :mod:`zoo.preprocess`): per modality, the features
    with the largest univariate Cox score statistic on the training rows are
    kept; the rest leave the schema (inputs are still aligned by name);
  - a **narrow network** (``hidden=(128, 32)``), light **alpha dropout (0.1)**,
    **large batches** (256: the Cox loss sees whole risk sets),
    **decoupled weight decay** (AdamW) and a small **L1** on the weights;
  - a **learning-rate schedule** (``lr_schedule``: linear warm-up then cosine
    decay, or the base class's linear decay);
  - **early stopping** on an inner validation split (the data's ``val`` rows,
    else ``val_fraction`` of the training rows);
  - a **seed ensemble** (``n_ensemble`` networks with different initial
    weights and dropout masks, trained side by side on the same batches, each
    on its own loss; the prediction is the mean of their log-risks).

* ``senmo-authors``: the authors' published hyper-parameters, a model of its
  own (:class:`zoo.models.senmo_upstream.SeNMoAuthors`, a subclass): no
  screening, one network, Adam with linear decay (:data:`RECIPE_NEUTRAL`).

:meth:`SeNMo.configuration_name` says which configuration a model's
parameters match (or how they differ); the model card written by
:meth:`save_pretrained` names it.
"""
from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from torch import nn

from .. import data as zdata
from ..estimator import Estimator
from ..registry import register_model
from .senmo_net import ACTIVATIONS, SeNMoNet, lecun_normal_  # noqa: F401 (re-exported)

#: The small-cohort configuration: SeNMo's defaults (``senmo-authors`` is its own model,
#: :class:`zoo.models.senmo_upstream.SeNMoAuthors`, with the authors' published hyper-parameters).
CONFIGURATIONS: dict[str, dict] = {
    "senmo-small-cohort": dict(hidden=(128, 32), activation="selu", dropout=0.1, l1=1e-5, weight_decay=1e-3,
                               lr=3e-3, lr_schedule="cosine", max_features_per_modality=200, n_ensemble=5,
                               early_stopping="loss", max_epochs=150, patience=30, batch_size=256),
}
#: The recipe's parameters and their neutral values: a subclass whose ``__init__`` does not take one of
#: them (e.g. ``senmo-authors``) gets the neutral value (no screening, one network, linear decay).
RECIPE_NEUTRAL = {"max_features_per_modality": None, "screening": None, "n_ensemble": 1, "lr_schedule": "linear",
                  "early_stopping": "c_index"}
DEFAULT_CONFIGURATION = "senmo-small-cohort"
LR_SCHEDULES = ("linear", "cosine", "constant")
WARMUP_FRACTION = 0.05


class SeNMoEnsemble(nn.Module):
    """``n`` :class:`SeNMoNet` members; ``risk`` = mean member log-risk, ``logits`` = mean member logits.

    Training outputs also carry ``member_risk`` (B, n) and ``member_logits`` (n, B, C) so each member
    is trained on its own loss.
    """

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, inputs: dict) -> dict:
        outs = [m(inputs) for m in self.members]
        res = {}
        if "risk" in outs[0]:
            r = torch.stack([o["risk"] for o in outs], 1)
            res["risk"], res["member_risk"] = r.mean(1), r
        if "logits" in outs[0]:
            lg = torch.stack([o["logits"] for o in outs], 0)
            res["logits"], res["member_logits"] = lg.mean(0), lg
        return res


@register_model("senmo")
class SeNMo(Estimator):
    """SeNMo estimator: survival (Cox) and/or classification from any set of modalities.

    ``hidden``: layer widths; ``activation``: ``"selu"`` (default) or
    ``"elu"`` (authors' code); ``dropout``: AlphaDropout rate; ``l1``: L1
    penalty on all weights; ``use_masks``: feed the presence flags;
    ``bounded_risk``: the authors' sigmoid-bounded risk output (set by the
    weight converter); ``max_features_per_modality``: keep the best ``k``
    features per modality (an int or ``{modality: k}``; None keeps all) ranked by
    ``screening`` (``"cox"``: univariate Cox score on the training rows;
    ``"variance"``; None: ``"cox"`` when the data has the survival columns), the
    zoo's screening (:mod:`zoo.preprocess`);
    ``n_ensemble``: networks in the seed ensemble (mean log-risk);
    ``lr_schedule``: ``"cosine"`` (warm-up + cosine), ``"linear"`` or
    ``"constant"``; ``early_stopping``: what the validation rows watch,
    ``"loss"`` (Cox partial likelihood) or ``"c_index"``. Other parameters: :class:`zoo.Estimator`.

    The defaults are the ``senmo-small-cohort`` configuration (see the module
    docstring); ``SeNMo.from_config("senmo-authors")`` gives the authors'.
    """

    def __init__(self, hidden=(128, 32), activation="selu", dropout=0.1, l1=1e-5, use_masks=True,
                 bounded_risk=False, max_features_per_modality=200, screening=None, n_ensemble=5, lr_schedule="cosine",
                 early_stopping="loss", modalities=None,
                 time_col="os_time", event_col="os_event", label_col="cancer_type", batch_size=256, max_epochs=150,
                 patience=30, lr=3e-3, weight_decay=1e-3, val_fraction=0.15, ties="efron", cls_weight=0.5,
                 device="auto", use_stream=True, min_overlap=0.5, random_state=0, progress=True):
        super().__init__(modalities=modalities, time_col=time_col, event_col=event_col, label_col=label_col,
                         batch_size=batch_size, max_epochs=max_epochs, patience=patience, lr=lr,
                         weight_decay=weight_decay, val_fraction=val_fraction, ties=ties, cls_weight=cls_weight,
                         device=device, use_stream=use_stream, min_overlap=min_overlap, random_state=random_state,
                         progress=progress)
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.l1 = l1
        self.use_masks = use_masks
        self.bounded_risk = bounded_risk
        own = inspect.signature(type(self).__init__).parameters
        given = {"max_features_per_modality": max_features_per_modality, "screening": screening,
                 "n_ensemble": n_ensemble, "lr_schedule": lr_schedule, "early_stopping": early_stopping}
        for k, v in given.items():
            setattr(self, k, v if k in own else RECIPE_NEUTRAL[k])

    # ------------------------------------------------------------------ configurations
    @classmethod
    def from_config(cls, name: str = DEFAULT_CONFIGURATION, **overrides) -> "SeNMo":
        """An unfitted SeNMo of the named configuration (``overrides`` win): ``senmo-small-cohort`` or
        ``senmo-authors`` (the registered model with the authors' published hyper-parameters)."""
        if name in CONFIGURATIONS:
            return cls(**{**CONFIGURATIONS[name], **overrides})
        if name == "senmo-authors":
            from ..registry import create_model

            return create_model(name, **overrides)
        raise ValueError(f"unknown SeNMo configuration {name!r}; known: {sorted(CONFIGURATIONS) + ['senmo-authors']}")

    def configuration_name(self) -> str:
        """The named configuration of these parameters, or ``custom (...)`` naming what differs from it."""
        base = DEFAULT_CONFIGURATION if self.model_type == "senmo" else str(self.model_type)
        sig = inspect.signature(type(self).__init__).parameters
        params = self.get_params(deep=False)
        skip = {"random_state", "progress", "device", "modalities", "time_col", "event_col", "label_col", "use_stream"}
        diff = [k for k, p in sig.items() if k in params and k not in skip
                and p.default is not inspect.Parameter.empty and _norm(params[k]) != _norm(p.default)]
        if not diff:
            return base
        return f"custom (from {base}; differs in {', '.join(f'{k}={params[k]!r}' for k in diff)})"

    # ------------------------------------------------------------------ hooks
    @property
    def n_members_(self) -> int:
        """Networks in the fitted module (1 = the authors' key layout)."""
        return int(self.schema_.get("senmo_recipe", {}).get("n_members", 1))

    def _net(self) -> SeNMoNet:
        return SeNMoNet(list(self.schema_["modalities"]), self.input_dims_, tuple(self.hidden), self.activation,
                        self.dropout, self.n_classes_, self.has_survival_, self.use_masks, self.bounded_risk)

    def build_module(self) -> nn.Module:
        n = self.n_members_
        if n <= 1:
            return self._net()
        return SeNMoEnsemble([self._net() for _ in range(n)])

    def loss(self, outputs: dict, targets: dict) -> torch.Tensor:
        """Each ensemble member's own loss, summed (members share no parameters); else the base loss."""
        if "member_risk" not in outputs and "member_logits" not in outputs:
            return super().loss(outputs, targets)
        n = (outputs["member_risk"].shape[1] if "member_risk" in outputs else outputs["member_logits"].shape[0])
        total = 0.0
        for k in range(n):
            one = {}
            if "member_risk" in outputs:
                one["risk"] = outputs["member_risk"][:, k]
            if "member_logits" in outputs:
                one["logits"] = outputs["member_logits"][k]
            total = total + super().loss(one, targets)
        return total

    def validation_score(self, outputs: dict, targets: dict) -> float:
        """``early_stopping="loss"``: minus the validation Cox loss (smoother than the C-index on a few
        dozen rows); ``"c_index"``: the base class's score."""
        if self.early_stopping == "c_index" or not self.has_survival_ or "risk" not in outputs:
            return super().validation_score(outputs, targets)
        from ..losses import cox_ph_loss

        ok = targets["surv_ok"]
        if not ok.any() or not targets["event"][ok].any():
            return super().validation_score(outputs, targets)
        return -float(cox_ph_loss(torch.as_tensor(outputs["risk"][ok], dtype=torch.float64),
                                  torch.as_tensor(targets["time"][ok]), torch.as_tensor(targets["event"][ok]),
                                  ties=self.ties))

    def penalty(self, module: nn.Module):
        if not self.l1:
            return 0.0
        return self.l1 * sum(p.abs().sum() for n, p in module.named_parameters() if n.endswith("weight"))

    def configure_optimizers(self, module: nn.Module, total_steps: int):
        """AdamW (decoupled weight decay) with the ``lr_schedule``; ``"linear"`` keeps the base class's Adam."""
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.lr_schedule == "linear":
            return super().configure_optimizers(module, total_steps)
        opt = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        warm = max(1, int(WARMUP_FRACTION * total_steps))

        def factor(step):
            if self.lr_schedule == "constant":
                return 1.0
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def fit_schema_extra(self, mdata, rows: np.ndarray) -> dict:
        """The recipe recorded as ``schema["senmo_recipe"]``: configuration, ensemble size, screening summary."""
        recipe = {"configuration": self.configuration_name(), "n_members": max(1, int(self.n_ensemble or 1))}
        screened = {m: v["screen"] for m, v in self.schema_["modalities"].items() if "screen" in v}
        if screened:
            recipe["screening"] = {m: {"kept": v["budget"], "of": v["n_features_in"], "method": v["method"]}
                                   for m, v in screened.items()}
        return {"senmo_recipe": recipe}

    def fit(self, data, y=None, split="train", val_split="val"):
        # screening=None: the univariate Cox screen when the data has the survival columns, else variance
        chosen = self.screening
        if chosen is None and self.max_features_per_modality:
            obs = zdata.resolve(data).obs
            surv = bool(self.time_col and self.event_col and self.time_col in obs.columns
                        and self.event_col in obs.columns)
            self.screening = "cox" if surv else "variance"
        try:
            return super().fit(data, y, split=split, val_split=val_split)
        finally:
            self.screening = chosen

    fit.__doc__ = Estimator.fit.__doc__

    def save_pretrained(self, path, **card) -> str:
        """Write the checkpoint folder; the model card names the SeNMo configuration used."""
        if "description" not in card:
            card["description"] = f"SeNMo configuration: `{self.configuration_name()}`."
        return super().save_pretrained(path, **card)


def _norm(v):
    return list(v) if isinstance(v, (list, tuple)) else v
