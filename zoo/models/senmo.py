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
  - a **wide & deep Cox head** (``linear_skip=True``): risk = a linear term
    on the (screened, standardised) inputs + the MLP's term, both starting at
    zero and penalised by the same L1 and decoupled weight decay, the linear
    term with a 10x learning rate (:data:`SKIP_LR_FACTOR`), so on a linear
    signal SeNMo behaves like a penalised linear Cox model and the MLP adds
    what the linear term misses. Development runs (bench folds ``--seed 1``,
    not the reported seed 0), 5-fold C-index, whas500: 0.732 without it, 0.742
    with it at 1x, 0.763 at 10x (coxnet 0.766); the planted-signal test cohort:
    0.682 without, 0.584 at 1x, 0.703 at 10x;
  - the linear term **warm-started from coxnet** (``linear_init="coxnet"``):
    the zoo's ``coxnet`` (alpha by its inner CV) fitted on SeNMo's own
    screened, standardised input for every training row given to fit (the
    carved early-stopping rows included; never a named validation split) gives ``skip.weight`` of every member (one fit for the ensemble),
    frozen; the MLP term starts at zero and learns the residual, so when it
    does not help early stopping keeps a model close to the penalised linear
    Cox fit. Development runs (``--seed 1`` folds, 5-fold C, without -> with):
    whas500 0.763 -> 0.770, veterans 0.679 -> 0.722, aids 0.746 -> 0.759,
    gbsg2 0.693 -> 0.691, sim-nonlinear 0.640 -> 0.607, demo-600 0.691 ->
    0.719; mean 0.702 -> 0.711 (coxnet 0.688); the linear term fine-tuned at
    1x lr instead of frozen: no better (whas500 0.770, veterans 0.724, aids 0.759,
    gbsg2 0.691, sim-nonlinear 0.612); the penalised Cox fitted on the training
    rows without the early-stopping rows instead of all of them: whas500 0.770
    vs 0.765, aids 0.759 vs 0.756, veterans 0.722 vs 0.718, sim-highdim 0.544
    vs 0.631 (coxnet 0.591), mean of the four 0.699 vs 0.718 (coxnet 0.702);
  - a **narrow network** (``hidden=(128, 32)``), light **alpha dropout (0.1)**,
    **automatic batches** (``batch_size=0``: about 8 steps per epoch, 64 to
    1024 rows: small cohorts get enough gradient steps, large ones stay cheap),
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
from .senmo_init import LINEAR_INIT_LR_FACTOR, LINEAR_INITS, apply_linear_init, coxnet_coef
from .senmo_net import ACTIVATIONS, SeNMoNet, lecun_normal_  # noqa: F401 (re-exported)

#: The small-cohort configuration: SeNMo's defaults (``senmo-authors`` is its own model,
#: :class:`zoo.models.senmo_upstream.SeNMoAuthors`, with the authors' published hyper-parameters).
CONFIGURATIONS: dict[str, dict] = {
    "senmo-small-cohort": dict(hidden=(128, 32), activation="selu", dropout=0.1, l1=1e-5, weight_decay=1e-3,
                               lr=3e-3, lr_schedule="cosine", max_features_per_modality=200, n_ensemble=5,
                               early_stopping="loss", linear_skip=True, linear_init="coxnet",
                               max_epochs=150, patience=30,
                               batch_size=0),
}
#: The recipe's parameters and their neutral values: a subclass whose ``__init__`` does not take one of
#: them (e.g. ``senmo-authors``) gets the neutral value (no screening, one network, linear decay).
RECIPE_NEUTRAL = {"max_features_per_modality": None, "screening": None, "n_ensemble": 1, "lr_schedule": "linear",
                  "early_stopping": "c_index", "linear_skip": False, "linear_init": None}
DEFAULT_CONFIGURATION = "senmo-small-cohort"
LR_SCHEDULES = ("linear", "cosine", "constant")
WARMUP_FRACTION = 0.05
#: the linear skip path's learning rate, relative to ``lr``: Adam moves each weight by about ``lr`` per step,
#: so one linear layer would need hundreds of steps to reach Cox-sized coefficients that the MLP's many units reach
#: together in a few dozen (``SENMO_SKIP_LR_FACTOR`` overrides it, for ablations)
SKIP_LR_FACTOR = float(__import__("os").environ.get("SENMO_SKIP_LR_FACTOR", "10"))
#: ``batch_size=0`` (automatic): about this many optimiser steps per epoch, batch within the range
AUTO_BATCH_STEPS = 8
AUTO_BATCH_RANGE = (64, 1024)


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
    ``"loss"`` (Cox partial likelihood) or ``"c_index"``; ``linear_skip``: add a
    penalised linear Cox term to the MLP's risk ("wide & deep", see :class:`SeNMoNet`);
    ``linear_init="coxnet"`` (with ``linear_skip``): start that linear term at the zoo's ``coxnet`` fitted on
    the training rows (SeNMo's preprocessed, screened input; not the validation rows), frozen, the MLP learning
    the residual from zero (:mod:`zoo.models.senmo_init`; one fit shared by the ensemble; None: both start at
    zero, the linear term at 10x lr);
    ``batch_size=0``: automatic (:func:`auto_batch_size`). Other parameters: :class:`zoo.Estimator`.

    The defaults are the ``senmo-small-cohort`` configuration (see the module
    docstring); ``SeNMo.from_config("senmo-authors")`` gives the authors'.
    """

    def __init__(self, hidden=(128, 32), activation="selu", dropout=0.1, l1=1e-5, use_masks=True,
                 bounded_risk=False, max_features_per_modality=200, screening=None, n_ensemble=5, lr_schedule="cosine",
                 early_stopping="loss", linear_skip=True, linear_init="coxnet", modalities=None,
                 time_col="os_time", event_col="os_event", label_col="cancer_type", batch_size=0, max_epochs=150,
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
                 "n_ensemble": n_ensemble, "lr_schedule": lr_schedule, "early_stopping": early_stopping,
                 "linear_skip": linear_skip, "linear_init": linear_init}
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
                        self.dropout, self.n_classes_, self.has_survival_, self.use_masks, self.bounded_risk,
                        linear_skip=bool(self.linear_skip))

    def build_module(self) -> nn.Module:
        n = self.n_members_
        module = self._net() if n <= 1 else SeNMoEnsemble([self._net() for _ in range(n)])
        coef = getattr(self, "_linear_init_coef", None)
        if coef is not None:  # linear_init="coxnet" during fit (a checkpoint's weights load over it)
            apply_linear_init(module, coef)
        return module

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
        skip = [p for n, p in module.named_parameters() if n.endswith("skip.weight")]
        rest = [p for n, p in module.named_parameters() if not n.endswith("skip.weight")]
        skip_factor = LINEAR_INIT_LR_FACTOR if self.linear_init == "coxnet" else SKIP_LR_FACTOR
        groups = [{"params": rest}] + ([{"params": skip, "lr": self.lr * skip_factor}] if skip else [])
        opt = torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)
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
        self._linear_init_coef = None
        if self.linear_init not in LINEAR_INITS:
            raise ValueError(f"linear_init must be one of {list(LINEAR_INITS)}, got {self.linear_init!r}")
        if self.linear_init == "coxnet" and self.linear_skip and self.has_survival_:
            # the penalised Cox sees every training row given to fit, the early-stopping rows included (it
            # has its own inner CV; the frozen term is common to every epoch the early stopping compares):
            # on the bench's tuning folds this lifted sim-highdim 0.544 -> 0.631 (coxnet 0.591)
            fit_rows = getattr(self, "_fit_all_train_rows", rows)
            self._linear_init_coef, recipe["linear_init"] = coxnet_coef(self, mdata, fit_rows)
        screened = {m: v["screen"] for m, v in self.schema_["modalities"].items() if "screen" in v}
        if screened:
            recipe["screening"] = {m: {"kept": v["budget"], "of": v["n_features_in"], "method": v["method"]}
                                   for m, v in screened.items()}
        return {"senmo_recipe": recipe}

    def fit(self, data, y=None, split="train", val_split="val"):
        # screening=None: the univariate Cox screen when the data has the survival columns, else variance;
        # batch_size=0 (automatic): about AUTO_BATCH_STEPS steps per epoch, whatever the cohort's size
        chosen, batch = self.screening, self.batch_size
        mdata = zdata.resolve(data) if (chosen is None and self.max_features_per_modality) or batch == 0 else None
        if chosen is None and self.max_features_per_modality:
            obs = mdata.obs
            surv = bool(self.time_col and self.event_col and self.time_col in obs.columns
                        and self.event_col in obs.columns)
            self.screening = "cox" if surv else "variance"
        if batch == 0:
            self.batch_size = auto_batch_size(_n_rows(mdata, split))
        try:
            return super().fit(data, y, split=split, val_split=val_split)
        finally:
            self.screening, self.batch_size, self._linear_init_coef = chosen, batch, None

    fit.__doc__ = Estimator.fit.__doc__

    def restore_checkpoint(self, schema: dict, tensors: dict):
        """As :class:`zoo.Estimator`'s; a checkpoint saved before the linear skip path existed (its
        ``config.json`` has no ``linear_skip``, its tensors no ``skip.weight``) loads without it."""
        if self.linear_skip and isinstance(tensors, dict) and not any(str(k).endswith("skip.weight") for k in tensors):
            self.linear_skip = False
        return super().restore_checkpoint(schema, tensors)

    def save_pretrained(self, path, **card) -> str:
        """Write the checkpoint folder; the model card names the SeNMo configuration used."""
        if "description" not in card:
            card["description"] = f"SeNMo configuration: `{self.configuration_name()}`."
            init = getattr(self, "schema_", {}).get("senmo_recipe", {}).get("linear_init")
            if init:
                card["description"] += (f" Linear skip path warm-started from a coxnet fit on the training rows"
                                        f" (`linear_init=\"coxnet\"`, alpha {init['alpha']}, {init['n_nonzero']}"
                                        f" non-zero coefficients), frozen; the MLP learns the residual.")
        return super().save_pretrained(path, **card)


def auto_batch_size(n_rows: int) -> int:
    """``batch_size=0`` (automatic): ``n_rows / AUTO_BATCH_STEPS`` rounded to a multiple of 32, within
    ``AUTO_BATCH_RANGE`` (64 on a few hundred patients, 1024 from about 8,000)."""
    lo, hi = AUTO_BATCH_RANGE
    return int(min(hi, max(lo, 32 * round(n_rows / AUTO_BATCH_STEPS / 32))))


def _n_rows(mdata, split) -> int:
    try:
        return int(zdata.select_rows(mdata, split).size)
    except Exception:  # an unusual split spec: the base fit reports it; size by every row meanwhile
        return int(mdata.n_obs)


def _norm(v):
    return list(v) if isinstance(v, (list, tuple)) else v
