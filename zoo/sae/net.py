"""The top-k sparse autoencoder module (:class:`TopKSAE`) and its loss.

Layout (after Gao et al. 2024, "Scaling and evaluating sparse autoencoders",
and the k-sparse autoencoder of Makhzani & Frey 2013)::

    pre     = W_enc (x - b_pre) + b_enc            # (B, n_latents)
    z       = relu(topk(pre, k))                   # k non-zeros per row at most
    x_hat   = W_dec z + b_pre                      # decoder columns have unit norm

``x`` is the hooked activation already centred/scaled by the fitted
normalisation (see :mod:`zoo.sae.core`). The auxiliary loss (``aux_k``)
reconstructs the residual ``x - x_hat`` from the ``aux_k`` largest
pre-activations among latents that have not fired for ``dead_after``
samples, so dead latents get a gradient again.
"""
from __future__ import annotations

import torch
from torch import nn


class TopKSAE(nn.Module):
    """Top-k sparse autoencoder over ``d_in``-dimensional activations."""

    def __init__(self, d_in: int, n_latents: int, k: int):
        super().__init__()
        if not 0 < k <= n_latents:
            raise ValueError(f"k must be in 1..n_latents ({n_latents}), got {k}")
        self.d_in, self.n_latents, self.k = int(d_in), int(n_latents), int(k)
        self.b_pre = nn.Parameter(torch.zeros(d_in))
        self.W_dec = nn.Parameter(torch.randn(d_in, n_latents) / d_in ** 0.5)
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.W_enc = nn.Parameter(torch.empty(n_latents, d_in))
        self.normalize_decoder()
        with torch.no_grad():
            self.W_enc.copy_(self.W_dec.t())  # encoder starts as the decoder's transpose
        # samples seen since each latent last fired (dead-latent tracking); saved with the weights
        self.register_buffer("since_fired", torch.zeros(n_latents, dtype=torch.long))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale every decoder column to unit L2 norm."""
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the gradient component parallel to each decoder column (keeps the norm fixed to first order)."""
        if self.W_dec.grad is None:
            return
        g = self.W_dec.grad
        g.sub_(self.W_dec * (g * self.W_dec).sum(0, keepdim=True))

    def preacts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``W_enc (x - b_pre) + b_enc`` (B, n_latents)."""
        return (x - self.b_pre) @ self.W_enc.t() + self.b_enc

    def topk(self, pre: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """``relu`` of the ``k`` largest entries per row, zeros elsewhere."""
        k = self.k if k is None else k
        vals, idx = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Sparse codes ``z`` (B, n_latents)."""
        return self.topk(self.preacts(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``W_dec z + b_pre``."""
        return z @ self.W_dec.t() + self.b_pre

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_hat, z, pre)``."""
        pre = self.preacts(x)
        z = self.topk(pre)
        return self.decode(z), z, pre

    def loss(self, x: torch.Tensor, aux_k: int = 0, aux_coef: float = 1 / 32, dead_after: int = 0
             ) -> tuple[torch.Tensor, dict]:
        """Normalised MSE (+ ``aux_coef`` x the aux-k loss on dead latents); updates dead-latent tracking."""
        x_hat, z, pre = self(x)
        denom = (x - x.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-8)
        err = x - x_hat
        mse = err.pow(2).sum() / denom
        with torch.no_grad():
            fired = (z > 0).any(0)
            self.since_fired.add_(x.shape[0])
            self.since_fired[fired] = 0
        total, info = mse, {"nmse": float(mse.detach())}
        if aux_k and dead_after:
            dead = self.since_fired >= dead_after
            n_dead = int(dead.sum())
            info["n_dead"] = n_dead
            if n_dead:
                kk = min(int(aux_k), n_dead)
                masked = pre.masked_fill(~dead, float("-inf"))
                vals, idx = masked.topk(kk, dim=-1)
                z_aux = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
                e_hat = z_aux @ self.W_dec.t()
                resid = err.detach()
                aux = (resid - e_hat).pow(2).sum() / (resid - resid.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-8)
                aux = torch.nan_to_num(aux, nan=0.0)
                total = total + aux_coef * aux
                info["aux"] = float(aux.detach())
        return total, info
