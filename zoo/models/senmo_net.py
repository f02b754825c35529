"""The torch module of SeNMo (:class:`SeNMoNet`), laid out like the authors' so their weights map onto it.

The estimator (fit/predict, hyper-parameters, recipe) is :mod:`zoo.models.senmo`;
the authors' weight converter is :mod:`zoo.models.senmo_upstream`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"selu": nn.SELU, "elu": nn.ELU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def lecun_normal_(linear: nn.Linear) -> None:
    """LeCun-normal init: N(0, 1/fan_in) weights, zero bias."""
    nn.init.normal_(linear.weight, 0.0, 1.0 / math.sqrt(linear.in_features))
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


class SeNMoNet(nn.Module):
    """The torch module of :class:`SeNMo`; ``forward(inputs) -> {"risk", "logits"}``."""

    def __init__(self, modalities: list[str], input_dims: dict[str, int], hidden=(1024, 512, 256, 128, 48, 48, 48),
                 activation: str = "selu", dropout: float = 0.1, n_classes: int | None = None,
                 survival: bool = True, use_masks: bool = True, bounded_risk: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.modalities = list(modalities)
        self.use_masks = use_masks
        d_in = sum(input_dims[m] for m in self.modalities) + (len(self.modalities) if use_masks else 0)
        blocks = []
        for h in hidden:
            lin = nn.Linear(d_in, h)
            lecun_normal_(lin)
            blocks.append(nn.Sequential(lin, ACTIVATIONS[activation](), nn.AlphaDropout(p=dropout)))
            d_in = h
        self.encoder = nn.Sequential(*blocks)
        self.classifier = None
        if survival:
            self.classifier = nn.Sequential(nn.Linear(d_in, 1))
            lecun_normal_(self.classifier[0])
        self.cls_head = None
        if n_classes:
            self.cls_head = nn.Linear(d_in, n_classes)
            lecun_normal_(self.cls_head)
        if bounded_risk:  # the authors' output: sigmoid(x) * range + shift
            self.register_buffer("output_range", torch.tensor([6.0]))
            self.register_buffer("output_shift", torch.tensor([-3.0]))
        self.bounded_risk = bounded_risk

    def encode(self, inputs: dict) -> torch.Tensor:
        parts = [inputs[m] for m in self.modalities]
        if self.use_masks:
            parts += [inputs[f"{m}_mask"].to(parts[0].dtype).unsqueeze(1) for m in self.modalities]
        return self.encoder(torch.cat(parts, 1))

    def forward(self, inputs: dict) -> dict:
        h = self.encode(inputs)
        out = {}
        if self.classifier is not None:
            r = self.classifier(h).squeeze(1)
            if self.bounded_risk:
                r = torch.sigmoid(r) * self.output_range + self.output_shift
            out["risk"] = r
        if self.cls_head is not None:
            out["logits"] = self.cls_head(h)
        return out
