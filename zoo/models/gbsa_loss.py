"""An O(n log n) Cox partial-likelihood loss for :mod:`zoo.models.gbsa` (Breslow ties).

scikit-survival's ``CoxPH`` boosting loss and its negative gradient loop over
all pairs (O(n^2)): 0.5 s per call at 6,000 rows, about 90 s for a 100-stage
fit. The same quantities come from one sort and cumulative sums; the values
agree with scikit-survival's to rounding (``tests/test_survival_models.py``).
"""
from __future__ import annotations

import numpy as np


def _risk_sets(time: np.ndarray, f: np.ndarray):
    """Order by time and, for each row, ``sum_{k: t_k >= t_i} exp(f_k)`` (ties share the full set)."""
    order = np.argsort(-time, kind="mergesort")
    t = time[order]
    ef = np.exp(f[order] - f.max())
    cum = np.cumsum(ef)
    # rows tied in time share the risk set of the last of them in this (descending) order
    last = np.searchsorted(-t, -t, side="right") - 1
    return order, cum[last], f.max()


def coxph_loss(event: np.ndarray, time: np.ndarray, f: np.ndarray) -> float:
    """Negative Cox log partial likelihood (Breslow), summed over events."""
    event, time, f = np.asarray(event, bool), np.asarray(time, float), np.asarray(f, float)
    if not event.any():
        return 0.0
    order, risk, shift = _risk_sets(time, f)
    ev = event[order]
    return float(-np.sum(f[order][ev] - (np.log(risk[ev]) + shift)))


def coxph_negative_gradient(event: np.ndarray, time: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``event_i - exp(f_i) * sum_{j event, t_j <= t_i} 1 / R_j`` with ``R_j`` the risk-set sum at ``t_j``."""
    event, time, f = np.asarray(event, bool), np.asarray(time, float), np.asarray(f, float)
    order, risk, shift = _risk_sets(time, f)
    ev = event[order]
    inv = np.where(ev, 1.0 / risk, 0.0)
    # ascending time: cumulative sum of 1/R over events up to and including each row's time (ties included)
    t = time[order]
    asc = np.cumsum(inv[::-1])[::-1]  # position p: sum over rows p..n-1 in descending order = times <= t_p
    first = np.searchsorted(-t, -t, side="left")  # first row tied with p: includes every tied event
    acc = asc[first]
    out = np.empty_like(f)
    out[order] = ev.astype(float) - np.exp(f[order] - shift) * acc
    return out


def fast_coxph_class():
    """scikit-survival's ``CoxPH`` loss with these two methods (a subclass; the boosting code is theirs)."""
    from sksurv.ensemble.survival_loss import CoxPH

    class FastCoxPH(CoxPH):
        def __call__(self, y_true, raw_prediction, sample_weight=None):
            return coxph_loss(y_true["event"], y_true["time"], np.ravel(raw_prediction))

        def gradient(self, y_true, raw_prediction, sample_weight=None, **kwargs):
            g = coxph_negative_gradient(y_true["event"], y_true["time"], np.ravel(raw_prediction))
            return g * sample_weight if sample_weight is not None else g

    return FastCoxPH
