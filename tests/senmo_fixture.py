"""SeNMo authors' checkpoint files in their published layout, at a small width, and a reference forward pass.

The layout follows ``SeNMo_Training.py`` (repository ``lab-rasool/SeNMo``):
``SeNMo_Trg`` (flat ``encoder`` of [Linear, ELU, AlphaDropout] per layer,
``classifier = Sequential(Linear)``, ``output_range``/``output_shift``
Parameters for a regressor), wrapped in ``DataParallel`` on GPU (keys
``module.*``), saved with ``torch.save({'split', 'opt', 'epoch', 'data',
'model_state_dict', 'optimizer_state_dict', 'metrics'}, ..., pickle_protocol=4)``.
"""
from __future__ import annotations

import argparse
import collections
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

AUTHORS_IN_DIM = 80697


class AuthorsNet(nn.Module):
    """The authors' module layout (our own code, written from their description)."""

    def __init__(self, in_dim, hidden, dropout=0.1058):
        super().__init__()
        layers = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ELU(), nn.AlphaDropout(p=dropout)]
            d = h
        self.encoder = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(d, 1))
        self.output_range = nn.Parameter(torch.FloatTensor([6]), requires_grad=False)
        self.output_shift = nn.Parameter(torch.FloatTensor([-3]), requires_grad=False)


def write_authors_checkpoint(path, in_dim=AUTHORS_IN_DIM, hidden=(8, 4, 4), seed=0, prefix="module.",
                             act_type="None", fold=1) -> dict:
    """Write one ``Checkpoint_..._fold{k}_for_test.pt``-shaped file; returns the state dict without prefix."""
    torch.manual_seed(seed)
    net = AuthorsNet(in_dim, hidden)
    for m in net.modules():  # their 'max' init: N(0, 1/fan_in), zero bias
        if isinstance(m, nn.Linear):
            m.weight.data.normal_(0, 1.0 / math.sqrt(m.weight.size(1)))
            m.bias.data.normal_(0, 0.1)  # non-zero so a bias mix-up shows
    optimizer = torch.optim.Adam(net.parameters(), lr=5.8e-4, weight_decay=0.006)
    x = torch.randn(3, in_dim)
    out = net.classifier(net.encoder(x)).sum()
    out.backward()
    optimizer.step()
    optimizer.zero_grad()
    rng = np.random.default_rng(seed)
    split = {"x_patname": np.array([f"TCGA-{seed:02d}-{i:04d}" for i in range(2)]),
             "x_omic": rng.normal(size=(2, 16)).astype(np.float32),  # truncated: the real arrays are 80,697 wide
             "e": np.array([1, 0]), "t": np.array([120.0, 365.0])}
    metrics = {s: {"loss": [0.71], "pvalue": [np.float64(0.03)], "cindex": [np.float64(0.61)],
                   "surv_acc": [np.float64(0.5)], "class_acc": [None]} for s in ("train", "test")}
    opt = argparse.Namespace(regression=True, finetune=False, act_type=act_type, input_size_omic=in_dim,
                             hidden_layers=list(hidden), dropout_rate=0.1058, lr=5.8e-4, weight_decay=0.006,
                             batch_size=256, niter=0, niter_decay=100, lambda_reg=3e-4, reg_type="all",
                             task="surv", model_name="omic", disease="pancancer_combined", gpu_ids=[0],
                             init_type="max", optimizer_type="adam", lr_policy="linear")
    state = net.state_dict()
    saved = collections.OrderedDict((prefix + k, v) for k, v in state.items())
    torch.save({"split": fold, "opt": opt, "epoch": 100, "data": {"train": split, "test": split},
                "model_state_dict": saved, "optimizer_state_dict": optimizer.state_dict(), "metrics": metrics},
               str(path), pickle_protocol=4)
    return {k: v.clone() for k, v in state.items()}


def reference_risk(state: dict, x: torch.Tensor, act_type: str = "None") -> torch.Tensor:
    """The authors' forward pass in eval mode written with plain torch ops from their layout."""
    h = x
    i = 0
    while f"encoder.{i}.weight" in state:
        h = F.elu(h @ state[f"encoder.{i}.weight"].T + state[f"encoder.{i}.bias"])  # AlphaDropout: identity in eval
        i += 3
    r = h @ state["classifier.0.weight"].T + state["classifier.0.bias"]
    if act_type == "Sigmoid":
        r = torch.sigmoid(r) * state["output_range"] + state["output_shift"]
    return r.squeeze(1)
