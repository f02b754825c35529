"""The torch module of SeNMo (:class:`SeNMoNet`), laid out like the authors' so their weights map onto it.

Layout (as in the authors' ``SeNMo_Training.py``): ``encoder`` is ONE flat
``nn.Sequential`` of ``[Linear, activation, AlphaDropout]`` per hidden layer,
so the Linear weights are ``encoder.0.weight``, ``encoder.3.weight``, ...;
the risk head is ``classifier.0``. In the authors' configuration
(``act_type`` given) a regressor also holds the frozen Parameters
``output_range`` (6) and ``output_shift`` (-3); the sigmoid bound
``sigmoid(x) * range + shift`` is applied only when ``act_type == "Sigmoid"``.
Their published runs use ``act_type "None"``: the raw classifier output.

The estimator (fit/predict, hyper-parameters, recipe) is :mod:`zoo.models.senmo`;
the authors' weight converter and the ``senmo-authors`` configuration are
:mod:`zoo.models.senmo_upstream`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"selu": nn.SELU, "elu": nn.ELU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
#: the authors' ``--act_type`` values for the risk output (``None``: our own layout, no output Parameters)
ACT_TYPES = (None, "None", "Sigmoid")
#: modules per hidden layer in ``encoder``: Linear, activation, AlphaDropout
BLOCK = 3


def lecun_normal_(linear: nn.Linear) -> None:
    """LeCun-normal init: N(0, 1/fan_in) weights, zero bias."""
    nn.init.normal_(linear.weight, 0.0, 1.0 / math.sqrt(linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


class SeNMoNet(nn.Module):
    """The torch module of :class:`SeNMo`; ``forward(inputs) -> {"risk", "logits"}``.

    ``act_type``: ``None`` (default; no output Parameters, raw risk),
    ``"None"`` (the authors' regressor: ``output_range``/``output_shift``
    exist, raw risk) or ``"Sigmoid"`` (their bounded risk).
    ``bounded_risk=True`` is the older spelling of ``act_type="Sigmoid"``.
    ``linear_skip=True`` (the zoo's small-cohort recipe, never the authors'): a
    "wide & deep" Cox head, ``risk = skip(x) + classifier(encoder(x))``, where
    ``skip`` is a bias-free Linear on the same input; ``skip`` and the deep
    head ``classifier.0`` start at zero (the risk starts at 0: the MLP term
    must earn its place against the linear one). The module then has the
    extra key ``skip.weight`` and no other change.
    """

    def __init__(self, modalities: list[str], input_dims: dict[str, int], hidden=(1024, 512, 256, 128, 48, 48, 48),
                 activation: str = "selu", dropout: float = 0.1, n_classes: int | None = None,
                 survival: bool = True, use_masks: bool = True, bounded_risk: bool = False,
                 act_type: str | None = None, linear_skip: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if act_type not in ACT_TYPES:
            raise ValueError(f"act_type must be one of {list(ACT_TYPES)}, got {act_type!r}")
        if bounded_risk and act_type is None:
            act_type = "Sigmoid"
        self.modalities = list(modalities)
        self.use_masks = use_masks
        self.act_type = act_type
        self.bounded_risk = act_type == "Sigmoid"
        d_in = sum(input_dims[m] for m in self.modalities) + (len(self.modalities) if use_masks else 0)
        self.skip = None
        if linear_skip and survival:
            self.skip = nn.Linear(d_in, 1, bias=False)
            nn.init.zeros_(self.skip.weight)
        layers: list[nn.Module] = []
        for h in hidden:
            lin = nn.Linear(d_in, h)
            lecun_normal_(lin)
            layers += [lin, ACTIVATIONS[activation](), nn.AlphaDropout(p=dropout)]
            d_in = h
        self.encoder = nn.Sequential(*layers)
        self.classifier = None
        if survival:
            self.classifier = nn.Sequential(nn.Linear(d_in, 1))
            lecun_normal_(self.classifier[0])
            if self.skip is not None:  # wide & deep: the risk starts at 0, both terms grow from there
                nn.init.zeros_(self.classifier[0].weight)
        self.cls_head = None
        if n_classes:
            self.cls_head = nn.Linear(d_in, n_classes)
            lecun_normal_(self.cls_head)
        if survival and act_type is not None:  # the authors' regressor always carries them
            self.output_range = nn.Parameter(torch.tensor([6.0]), requires_grad=False)
            self.output_shift = nn.Parameter(torch.tensor([-3.0]), requires_grad=False)

    def _input(self, inputs: dict) -> torch.Tensor:
        parts = [inputs[m] for m in self.modalities]
        if self.use_masks:
            parts += [inputs[f"{m}_mask"].to(parts[0].dtype).unsqueeze(1) for m in self.modalities]
        return torch.cat(parts, 1)

    def encode(self, inputs: dict) -> torch.Tensor:
        """The last hidden layer's output (the authors' embedding)."""
        return self.encoder(self._input(inputs))

    def forward(self, inputs: dict) -> dict:
        x = self._input(inputs)
        h = self.encoder(x)
        out = {}
        if self.classifier is not None:
            r = self.classifier(h).squeeze(1)
            if self.skip is not None:
                r = r + self.skip(x).squeeze(1)
            if self.bounded_risk:
                r = torch.sigmoid(r) * self.output_range + self.output_shift
            out["risk"] = r
        if self.cls_head is not None:
            out["logits"] = self.cls_head(h)
        return out
