"""Cox partial likelihood (Breslow and Efron ties), vectorised in torch.

``risk`` is the log-hazard (higher = shorter survival, the sign convention of
all of ``zoo``). Both functions return the **negative** partial
log-likelihood divided by the number of events (0 when a batch has no
event), differentiable with respect to ``risk``. No Python loop over
samples: the risk sets are reverse cumulative sums over time-sorted samples,
tied times are grouped with ``unique`` + ``scatter_add``.
"""
from __future__ import annotations

import torch


def _sorted_groups(time: torch.Tensor):
    order = torch.argsort(time, stable=True)
    ts = time[order]
    uniq, inv, counts = torch.unique_consecutive(ts, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts  # first sorted position of each time group
    return order, inv, first


def cox_ph_loss(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor, ties: str = "efron",
                reduction: str = "mean") -> torch.Tensor:
    """Negative Cox partial log-likelihood of ``risk`` given ``time`` and ``event``.

    ``ties="breslow"`` or ``"efron"``. ``reduction="mean"`` divides by the
    number of events, ``"sum"`` returns the total negative log-likelihood.
    """
    if ties not in ("breslow", "efron"):
        raise ValueError(f"ties must be 'breslow' or 'efron', got {ties!r}")
    risk = risk.reshape(-1)
    time = time.reshape(-1)
    event = event.reshape(-1).to(risk.dtype)
    n_events = event.sum()
    if n_events.item() == 0:
        return risk.sum() * 0.0
    order, inv, first = _sorted_groups(time)
    r = risk[order]
    e = event[order]
    # log of the risk-set sum at each position: logsumexp over all later-or-equal positions
    log_rev = torch.logcumsumexp(r.flip(0), 0).flip(0)
    log_R = log_rev[first]  # per time group: log sum_{t_j >= t} exp(r_j)
    if ties == "breslow":
        ll = (e * (r - log_R[inv])).sum()
    else:
        m = r.detach().max()
        w = torch.exp(r - m)
        n_groups = first.shape[0]
        d = torch.zeros(n_groups, dtype=r.dtype, device=r.device).scatter_add(0, inv, e)
        S = torch.zeros(n_groups, dtype=r.dtype, device=r.device).scatter_add(0, inv, e * w)
        # rank of each event within its tie group: 0..d-1
        ce = torch.cumsum(e, 0)
        before_group = (ce - e)[first]  # events before each group's first position
        ell = (ce - e) - before_group[inv]
        R = torch.exp(log_R - m)
        frac = ell / d[inv].clamp(min=1)
        inner = (R[inv] - frac * S[inv]).clamp(min=torch.finfo(r.dtype).tiny)
        ll = (e * (r - m - torch.log(inner))).sum()
    nll = -ll
    return nll / n_events if reduction == "mean" else nll


def breslow_baseline(risk, time, event):
    """Breslow estimate of the baseline cumulative hazard ``H0(t)`` at the event times.

    Returns ``(times, H0)`` as numpy arrays; ``S(t | x) = exp(-H0(t) exp(risk(x)))``.
    """
    import numpy as np

    risk = np.asarray(risk, dtype=np.float64).ravel()
    time = np.asarray(time, dtype=np.float64).ravel()
    event = np.asarray(event).astype(bool).ravel()
    uniq, inv = np.unique(time, return_inverse=True)
    m = risk.max() if risk.size else 0.0
    w = np.exp(risk - m)
    d = np.bincount(inv, weights=event.astype(float), minlength=uniq.size)
    wsum = np.bincount(inv, weights=w, minlength=uniq.size)
    R = wsum[::-1].cumsum()[::-1] * np.exp(m)
    h = np.divide(d, R, out=np.zeros_like(d), where=d > 0)
    keep = d > 0
    return uniq[keep], np.cumsum(h)[keep]
