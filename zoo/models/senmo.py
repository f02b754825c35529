"""SeNMo: self-normalising MLP over concatenated multi-omics (Waqas et al.).

Architecture: the modalities' features (in ``schema.json`` order) and, by
default, one presence flag per modality are concatenated and fed to an MLP
``1024-512-256-128-48-48-48``; each block is Linear -> activation ->
AlphaDropout with LeCun-normal weights (the self-normalising recipe). SELU
is the default activation (the paper's title); ``activation="elu"`` matches
the authors' code. A Cox head gives the risk (log-hazard, higher = shorter
survival) and an optional cancer-type head the class logits; both train
jointly. An L1 penalty on the weights and Adam with linear decay complete
the recipe.

The module's parameter names follow the authors' layout (``encoder.<i>.0``
for block ``i``, ``classifier.0`` for the risk head, optional buffers
``output_range`` / ``output_shift`` for their bounded output), so their
weights map onto it (:mod:`zoo.models.senmo_upstream`); the module is :mod:`zoo.models.senmo_net`.
"""
from __future__ import annotations

from torch import nn

from ..estimator import Estimator
from ..registry import register_model
from .senmo_net import ACTIVATIONS, SeNMoNet, lecun_normal_  # noqa: F401 (re-exported)


@register_model("senmo")
class SeNMo(Estimator):
    """SeNMo estimator: survival (Cox) and/or classification from any set of modalities.

    ``hidden``: layer widths; ``activation``: ``"selu"`` (default) or
    ``"elu"`` (authors' code); ``dropout``: AlphaDropout rate; ``l1``: L1
    penalty on all weights; ``use_masks``: feed the presence flags;
    ``bounded_risk``: the authors' sigmoid-bounded risk output (set by the
    weight converter). Other parameters: :class:`zoo.Estimator`.

    Defaults are chosen for the common case of a few hundred patients and
    thousands of features: dropout, L1, weight decay and early stopping on a
    validation split keep the wide first layer from memorising the cohort.
    """

    def __init__(self, hidden=(1024, 512, 256, 128, 48, 48, 48), activation="selu", dropout=0.2, l1=1e-5,
                 use_masks=True, bounded_risk=False, modalities=None, time_col="os_time", event_col="os_event",
                 label_col="cancer_type", batch_size=64, max_epochs=40, patience=6, lr=5e-4, weight_decay=1e-4,
                 val_fraction=0.15, ties="efron", cls_weight=0.5, device="auto", use_stream=True, min_overlap=0.5,
                 random_state=0, progress=True):
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

    def build_module(self) -> nn.Module:
        return SeNMoNet(list(self.schema_["modalities"]), self.input_dims_, tuple(self.hidden), self.activation,
                        self.dropout, self.n_classes_, self.has_survival_, self.use_masks, self.bounded_risk)

    def penalty(self, module: nn.Module):
        if not self.l1:
            return 0.0
        return self.l1 * sum(p.abs().sum() for n, p in module.named_parameters() if n.endswith("weight"))
