"""Input features most tied to one SAE latent: gradient x input through the model.

For each sample, the latent's encoder pre-activation (the value the top-k
keeps when the latent fires) is differentiated with respect to the model's
preprocessed inputs (standardised features, baseline 0 = the training mean),
multiplied by the input, and averaged over the latent's top-activating
samples. Positive attribution: the feature's value in those samples pushes
the latent up.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from omicsdata.errors import SchemaMismatchError

from .. import data as zdata
from .activations import hooked, rows_of


def latent_attribution(est, submodule, layer: str, sae_pre, latent: int, mdata, mods, align, rows,
                       batch_size: int = 64) -> pd.DataFrame:
    """Mean gradient x input of latent ``latent`` over ``rows`` of ``mdata``, one row per input feature.

    ``sae_pre(act) -> (B, n_latents)`` maps the hooked activations to the SAE's pre-activations.
    Columns: ``modality, feature, attribution, mean_abs_attribution``.
    """
    module = est.module_
    was_training = module.training
    module.eval()
    names = list(est.schema_["modalities"])
    sums = {m: None for m in names}
    sums_abs = {m: None for m in names}
    n_seen, used = 0, False
    src = zdata.batches(mdata, None, mods, batch_size, device=est.device_, use_stream=False,
                        rows=np.sort(np.asarray(rows)))
    try:
        with hooked(submodule) as cap:
            for raw in src:
                inputs = est.preprocessor_(raw, align)
                xs = {m: inputs[m].detach().float().clone().requires_grad_(True) for m in names}
                est.forward(module, {**inputs, **xs})
                idx = inputs["index"]
                pre = sae_pre(rows_of(cap.out, int(idx.shape[0]), layer).float())[:, latent]
                grads = torch.autograd.grad(pre.sum(), [xs[m] for m in names], allow_unused=True)
                for m, g in zip(names, grads):
                    if g is None:
                        g = torch.zeros_like(xs[m])
                    else:
                        used = True
                    gx = (g * xs[m]).detach().double().cpu()
                    sums[m] = gx.sum(0) if sums[m] is None else sums[m] + gx.sum(0)
                    sums_abs[m] = gx.abs().sum(0) if sums_abs[m] is None else sums_abs[m] + gx.abs().sum(0)
                n_seen += int(idx.shape[0])
    finally:
        module.train(was_training)
    if not used:
        raise SchemaMismatchError(f"layer {layer!r} of {type(est).__name__} does not depend on the model's "
                                  "feature inputs; attributions are undefined")
    frames = []
    for m in names:
        feats = est.schema_["modalities"][m]["features"]
        frames.append(pd.DataFrame({"modality": m, "feature": np.asarray(feats, dtype=object),
                                    "attribution": (sums[m] / n_seen).numpy(),
                                    "mean_abs_attribution": (sums_abs[m] / n_seen).numpy()}))
    return pd.concat(frames, ignore_index=True)
