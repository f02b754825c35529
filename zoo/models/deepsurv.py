"""``deepsurv``: a DeepSurv-style network (Katzman et al., BMC Med Res Methodol 2018) on the shared trainer.

A feed-forward network over the concatenated, preprocessed modalities (and one
presence flag per modality): ``Linear -> activation -> [BatchNorm] -> Dropout``
per hidden layer, then a linear Cox head giving the log-hazard. It trains on
the survival task's Cox partial likelihood with the shared
:class:`zoo.trainer.Trainer` (Adam with L2 weight decay, early stopping on the
validation C-index, best weights kept). Features are screened on the training
rows to ``max_features_per_modality`` per modality first
(:mod:`zoo.preprocess`), so thousands of raw genes are fine.
``predict_risk(..., return_std=True)`` gives MC-dropout spread.
"""
from __future__ import annotations

import torch
from torch import nn

from ..estimator import Estimator
from ..registry import register_model
from .senmo_net import ACTIVATIONS


class DeepSurvNet(nn.Module):
    """MLP -> one log-hazard per sample; ``forward(inputs) -> {"risk"}``."""

    def __init__(self, modalities: list[str], input_dims: dict[str, int], hidden=(64, 32), activation="relu",
                 dropout=0.3, batch_norm=False, use_masks=True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.modalities, self.use_masks = list(modalities), use_masks
        d = sum(input_dims[m] for m in self.modalities) + (len(self.modalities) if use_masks else 0)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d, h), ACTIVATIONS[activation]()]
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.Dropout(dropout))
            d = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, 1)

    def forward(self, inputs: dict) -> dict:
        parts = [inputs[m] for m in self.modalities]
        if self.use_masks:
            parts += [inputs[f"{m}_mask"].to(parts[0].dtype).unsqueeze(1) for m in self.modalities]
        return {"risk": self.head(self.body(torch.cat(parts, 1))).squeeze(1)}


@register_model("deepsurv")
class DeepSurv(Estimator):
    """DeepSurv: ``hidden`` widths, ``activation``, ``dropout``, ``batch_norm``, ``weight_decay`` (L2),
    ``max_features_per_modality``/``screening`` (see :func:`zoo.preprocess.screen_spec`); the training
    loop parameters are :class:`zoo.Estimator`'s. Survival only."""

    task_names = ("survival",)

    def __init__(self, hidden=(64, 32), activation="relu", dropout=0.3, batch_norm=False, use_masks=True,
                 max_features_per_modality=500, screening="cox", modalities=None, time_col="os_time",
                 event_col="os_event", batch_size=256, max_epochs=200, patience=20, lr=1e-3, weight_decay=1e-3,
                 val_fraction=0.2, ties="efron", device="auto", use_stream=True, min_overlap=0.5, random_state=0,
                 progress=True):
        super().__init__(modalities=modalities, time_col=time_col, event_col=event_col, label_col=None,
                         batch_size=batch_size, max_epochs=max_epochs, patience=patience, lr=lr,
                         weight_decay=weight_decay, val_fraction=val_fraction, ties=ties, device=device,
                         use_stream=use_stream, min_overlap=min_overlap, random_state=random_state, progress=progress)
        del self.label_col, self.cls_weight  # not parameters of this model (survival only)
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.use_masks = use_masks
        self.max_features_per_modality = max_features_per_modality
        self.screening = screening

    label_col = None
    cls_weight = 1.0

    def build_module(self) -> nn.Module:
        return DeepSurvNet(list(self.schema_["modalities"]), self.input_dims_, tuple(self.hidden), self.activation,
                           self.dropout, self.batch_norm, self.use_masks)

    def configure_optimizers(self, module: nn.Module, total_steps: int):
        """Adam with decoupled L2 on the weights (``weight_decay``), constant learning rate."""
        opt = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
