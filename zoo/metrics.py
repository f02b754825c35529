"""Survival and classification metrics, vectorised (numpy), no Python loop over samples.

Sign convention, used everywhere in ``zoo``: **a higher risk score means a
shorter expected survival** (a Cox log-hazard). ``event`` is 1/True when the
event (death) was observed, 0/False when the time is a censoring time.

Definitions follow scikit-survival's (so results agree to float precision):

* :func:`concordance_index_censored` - Harrell's C. An event at ``t_i`` is
  comparable with every sample whose time is later, and with samples
  censored at the same time; equal risks (``|r_i - r_j| <= tied_tol``) count
  one half. Computed in O(n log^2 n) with a merge-sort tree (vectorised
  ``searchsorted`` per level), not the O(n^2) pair loop.
* :func:`concordance_index_ipcw` - Uno's C: the same pairs weighted by
  ``1 / G(t_i)^2`` (G = Kaplan-Meier of the censoring distribution fitted on
  ``survival_train``), only events before ``tau``.
* :func:`cumulative_dynamic_auc` - cumulative cases / dynamic controls AUC.
* :func:`brier_score`, :func:`integrated_brier_score` - IPCW Brier score
  of predicted survival probabilities.
"""
from __future__ import annotations

import numpy as np

from omicsdata.errors import SchemaMismatchError


def _as_arrays(event, time, estimate=None):
    event = np.asarray(event).astype(bool).ravel()
    time = np.asarray(time, dtype=np.float64).ravel()
    if event.shape != time.shape:
        raise SchemaMismatchError(f"event has {event.size} values but time has {time.size}")
    if estimate is not None:
        estimate = np.asarray(estimate, dtype=np.float64)
        if estimate.shape[0] != time.shape[0]:
            raise SchemaMismatchError(f"estimate has {estimate.shape[0]} rows but time has {time.size}")
        if not np.all(np.isfinite(estimate)):
            raise SchemaMismatchError("estimate contains NaN or infinite values")
    if not np.all(np.isfinite(time)):
        raise SchemaMismatchError("time contains NaN or infinite values")
    return event, time, estimate


def _dense_rank(x: np.ndarray, tol: float = 0.0) -> np.ndarray:
    """Dense ranks 0..k-1; values within ``tol`` of their sorted predecessor share a rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new = np.r_[True, np.diff(xs) > tol]
    ranks_sorted = np.cumsum(new) - 1
    out = np.empty(x.shape[0], dtype=np.int64)
    out[order] = ranks_sorted
    return out


def _prefix_count_less(values: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """For each query q: ``#{j < k[q] : values[j] < v[q]}`` (integers), merge-sort tree.

    ``values`` and ``v`` are non-negative integers (ranks). O((n + m) log^2 n).
    """
    n = values.shape[0]
    out = np.zeros(k.shape[0], dtype=np.int64)
    if n == 0:
        return out
    big = int(values.max()) + 2 if n else 1
    levels = int(np.ceil(np.log2(max(n, 1)))) + 1
    pos = np.arange(n, dtype=np.int64)
    for lev in range(levels):
        size = 1 << lev
        block = pos >> lev
        keys = np.sort(block * big + values)  # each block's values sorted, blocks in order
        has = (k >> lev) & 1 == 1
        if not has.any():
            continue
        b = (k[has] >> lev) - 1  # the block [b*size, (b+1)*size) is in the prefix
        lo = np.searchsorted(keys, b * big, side="left")
        hi = np.searchsorted(keys, b * big + v[has], side="left")
        out[has] += hi - lo
        del size
    return out


def _concordance_counts(event, time, estimate, weights, tied_tol=1e-8):
    """Weighted (concordant + 0.5 tied, comparable) sums over events, O(n log^2 n)."""
    n = time.shape[0]
    r = _dense_rank(estimate, tied_tol)
    order = np.argsort(time, kind="mergesort")
    ts, rs, es = time[order], r[order], event[order]
    tr = _dense_rank(ts)  # time ranks (exact ties)
    first = np.searchsorted(tr, tr, side="left")   # first position of each time group
    last = np.searchsorted(tr, tr, side="right")   # one past its last position
    ev = np.flatnonzero(es)
    if ev.size == 0:
        return 0.0, 0.0, 0, 0
    big = int(rs.max()) + 2
    # samples at the same time, censored, sorted by (time rank, risk rank)
    cens = ~es
    ckeys = np.sort(tr[cens] * big + rs[cens])
    allr = np.sort(rs)

    def count_less(vq):  # comparable j with r_j < vq, for each event
        total = np.searchsorted(allr, vq, side="left")
        before = _prefix_count_less(rs, first[ev], vq)
        same_t = _prefix_count_less(rs, last[ev], vq) - before
        same_t_cens = (np.searchsorted(ckeys, tr[ev] * big + vq, side="left")
                       - np.searchsorted(ckeys, tr[ev] * big, side="left"))
        return total - before - same_t + same_t_cens

    less = count_less(rs[ev])
    leq = count_less(rs[ev] + 1)
    ties = leq - less
    n_cens_same = (np.searchsorted(ckeys, tr[ev] * big + big - 1, side="right")
                   - np.searchsorted(ckeys, tr[ev] * big, side="left"))
    comparable = (n - last[ev]) + n_cens_same
    w = weights[order][ev]
    num = float(np.sum(w * (less + 0.5 * ties)))
    den = float(np.sum(w * comparable))
    return num, den, int(less.sum()), int(comparable.sum())


def concordance_index_censored(event, time, estimate, tied_tol: float = 1e-8) -> float:
    """Harrell's concordance index (higher ``estimate`` = higher risk = shorter survival)."""
    event, time, estimate = _as_arrays(event, time, estimate)
    num, den, _, _ = _concordance_counts(event, time, estimate.ravel(), np.ones_like(time), tied_tol)
    if den == 0:
        raise SchemaMismatchError("no comparable pairs (no observed events before a later time): C-index undefined")
    return num / den


class CensoringKM:
    """Kaplan-Meier estimate of the censoring survival function G(t) = P(C > t).

    At a tied time, events are taken to happen before censorings (as in
    scikit-survival). ``G`` is a right-continuous step function; beyond the
    last training time it stays at its last value.
    """

    def __init__(self, event, time):
        event, time, _ = _as_arrays(event, time)
        uniq, inv = np.unique(time, return_inverse=True)
        n_ev = np.bincount(inv, weights=event.astype(float), minlength=uniq.size)
        n_all = np.bincount(inv, minlength=uniq.size).astype(float)
        n_cens = n_all - n_ev
        at_risk = n_all[::-1].cumsum()[::-1] - n_ev
        ratio = np.divide(n_cens, at_risk, out=np.zeros_like(n_cens), where=n_cens != 0)
        self.times = uniq
        self.prob = np.cumprod(1.0 - ratio)

    @classmethod
    def from_steps(cls, times, prob) -> "CensoringKM":
        """The step function saved by :meth:`steps` (no per-sample data needed)."""
        g = cls.__new__(cls)
        g.times, g.prob = np.asarray(times, dtype=np.float64), np.asarray(prob, dtype=np.float64)
        return g

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(times, G(times))``: the whole estimate as an aggregate step function."""
        return self.times, self.prob

    def __call__(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.times, t, side="right") - 1
        return np.where(idx >= 0, self.prob[np.clip(idx, 0, None)], 1.0)

    def ipcw(self, event, time) -> np.ndarray:
        """``event_i / G(t_i)`` (0 for censored samples)."""
        event, time, _ = _as_arrays(event, time)
        g = self(time)
        if np.any(g[event] <= 0):
            raise SchemaMismatchError("censoring survival G(t) is zero at an event time: choose a smaller tau/time range")
        out = np.zeros(time.shape[0])
        out[event] = 1.0 / g[event]
        return out


def _censoring(train_event, train_time, censoring) -> CensoringKM:
    return censoring if censoring is not None else CensoringKM(train_event, train_time)


def concordance_index_ipcw(train_event, train_time, event, time, estimate, tau: float | None = None,
                           tied_tol: float = 1e-8, censoring: CensoringKM | None = None) -> float:
    """Uno's C: Harrell's pairs weighted by ``1/G(t_i)^2``, events before ``tau`` only.

    ``G`` is fitted on the training cohort (``train_event``, ``train_time``),
    or given fitted as ``censoring``.
    """
    event, time, estimate = _as_arrays(event, time, estimate)
    G = _censoring(train_event, train_time, censoring)
    keep = np.ones_like(event) if tau is None else time < tau
    w = np.zeros(time.shape[0])
    w[keep] = G.ipcw(event[keep], time[keep])
    num, den, _, _ = _concordance_counts(event, time, estimate.ravel(), w ** 2, tied_tol)
    if den == 0:
        raise SchemaMismatchError("no comparable pairs before tau: Uno's C undefined")
    return num / den


def kaplan_meier(event, time):
    """Kaplan-Meier survival estimate: ``(unique_times, S(t))`` (right-continuous steps)."""
    event, time, _ = _as_arrays(event, time)
    uniq, inv = np.unique(time, return_inverse=True)
    n_ev = np.bincount(inv, weights=event.astype(float), minlength=uniq.size)
    n_all = np.bincount(inv, minlength=uniq.size).astype(float)
    at_risk = n_all[::-1].cumsum()[::-1]
    return uniq, np.cumprod(1.0 - n_ev / at_risk)


def cumulative_dynamic_auc(train_event, train_time, event, time, estimate, times, tied_tol: float = 1e-8):
    """Cumulative/dynamic time-dependent AUC at each of ``times``; returns ``(aucs, mean_auc)``.

    Cases at t: event observed at or before t (weighted 1/G(t_i)); controls:
    still at risk after t. ``estimate`` is one risk per sample, or one column
    per time point. ``mean_auc`` integrates AUC(t) over the Kaplan-Meier
    estimate of the test cohort (as scikit-survival).
    """
    event, time, estimate = _as_arrays(event, time, estimate)
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    G = CensoringKM(train_event, train_time)
    ipcw = G.ipcw(event, time)
    est2 = np.broadcast_to(estimate.reshape(len(time), -1), (len(time), len(times)))
    scores = np.empty(times.size)
    for k, t in enumerate(times):  # loop over time points only; each is vectorised over samples
        r = est2[:, k]
        case_w = np.where((time <= t) & event, ipcw, 0.0)
        control = time > t
        if case_w.sum() == 0 or control.sum() == 0:
            raise SchemaMismatchError(f"no cases or no controls at time {t:g}: AUC undefined")
        # each case i scores #controls with r_j < r_i plus half the ties
        rk = _dense_rank(r, tied_tol)
        cr = np.sort(rk[control])
        less = np.searchsorted(cr, rk, side="left")
        leq = np.searchsorted(cr, rk, side="right")
        scores[k] = np.sum(case_w * (less + 0.5 * (leq - less))) / (case_w.sum() * control.sum())
    if times.size == 1:
        return scores, float(scores[0])
    ut, s = kaplan_meier(event, time)
    idx = np.searchsorted(ut, times, side="right") - 1
    s_t = np.where(idx >= 0, s[np.clip(idx, 0, None)], 1.0)
    d = -np.diff(np.r_[1.0, s_t])
    return scores, float((scores * d).sum() / (1.0 - s_t[-1]))


def brier_score(train_event, train_time, event, time, surv_prob, times, censoring: CensoringKM | None = None):
    """IPCW Brier score of predicted survival probabilities ``surv_prob[i, k] = S(times[k] | x_i)``.

    Returns ``(times, scores)``.
    """
    event, time, surv_prob = _as_arrays(event, time, surv_prob)
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    surv_prob = surv_prob.reshape(len(time), len(times))
    G = _censoring(train_event, train_time, censoring)
    g_t = G(times)
    g_t = np.where(g_t == 0, np.inf, g_t)
    g_y = G(time)
    g_y = np.where(g_y == 0, np.inf, g_y)
    case = (time[:, None] <= times[None, :]) & event[:, None]
    control = time[:, None] > times[None, :]
    bs = np.mean(np.square(surv_prob) * case / g_y[:, None] + np.square(1 - surv_prob) * control / g_t[None, :], axis=0)
    return times, bs


def integrated_brier_score(train_event, train_time, event, time, surv_prob, times,
                           censoring: CensoringKM | None = None) -> float:
    """Brier score integrated over ``times`` (trapezoid) divided by the time span."""
    times = np.asarray(times, dtype=np.float64)
    if times.size < 2:
        raise SchemaMismatchError("integrated_brier_score needs at least 2 time points")
    t, bs = brier_score(train_event, train_time, event, time, surv_prob, times, censoring)
    return float(np.trapezoid(bs, t) / (t[-1] - t[0]))


# --- classification -----------------------------------------------------------------

def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


def auroc(y_true, proba, classes) -> float:
    """AUROC: binary (positive = ``classes[1]``) or one-vs-rest macro average for more classes.

    Classes absent from ``y_true`` are left out of the average (and the
    probabilities renormalised over the rest).
    """
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    classes = list(classes)
    proba = np.asarray(proba, dtype=np.float64)
    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], proba[:, 1]))
    present = [i for i, c in enumerate(classes) if np.any(y_true == c)]
    if len(present) < 2:
        raise SchemaMismatchError("AUROC needs at least two classes present in y_true")
    p = proba[:, present]
    p = p / p.sum(axis=1, keepdims=True)
    labels = [classes[i] for i in present]
    keep = np.isin(y_true, labels)
    if len(labels) == 2:
        return float(roc_auc_score(y_true[keep] == labels[1], p[keep, 1]))
    return float(roc_auc_score(y_true[keep], p[keep], multi_class="ovr", labels=labels))


# --- calibration ----------------------------------------------------------------------

def d_calibration(surv_at_time, event, n_bins: int = 10) -> dict:
    """D-calibration (Haider et al., JMLR 2020): are ``S(t_i | x_i)`` uniform over the patients?

    ``surv_at_time[i]`` is the predicted survival probability at the
    patient's own observed time. An observed event adds 1 to the bin of its
    probability; a patient censored at probability ``c`` is spread uniformly
    over ``[0, c]`` (its bin gets ``(c - lower) / c``, every bin below
    ``width / c``), as in the reference R code (haiderstats/ISDEvaluation,
    ``Evaluations/DCalibration.R``). The bin counts are compared with the
    uniform ``n / n_bins`` by Pearson's chi-square test (``n_bins - 1`` degrees of
    freedom). Returns ``{"stat", "p_value", "proportions"}``; a small p-value
    means the predicted survival curves are not calibrated.
    """
    from scipy.stats import chi2

    s = np.clip(np.asarray(surv_at_time, dtype=np.float64).ravel(), 0.0, 1.0)
    ev = np.asarray(event).astype(bool).ravel()
    if s.shape != ev.shape:
        raise SchemaMismatchError(f"surv_at_time has {s.size} values but event has {ev.size}")
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise SchemaMismatchError("d_calibration needs finite survival probabilities for at least one patient")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    lo, hi = edges[:-1], edges[1:]
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)  # bin of each probability
    counts = np.bincount(idx[ev], minlength=n_bins).astype(float)
    c = s[~ev]
    if c.size:
        safe = np.where(c > 0, c, 1.0)
        below = hi[None, :] <= c[:, None]                       # bins wholly under c
        inside = np.arange(n_bins)[None, :] == idx[~ev][:, None]
        share = np.where(below, (hi - lo)[None, :] / safe[:, None], 0.0)
        share = np.where(inside & ~below, (c[:, None] - lo[None, :]) / safe[:, None], share)
        share[c <= 0] = 0.0
        share[c <= 0, 0] = 1.0                                  # S = 0: all mass in the lowest bin
        counts += share.sum(0)
    expected = s.size / n_bins
    stat = float(np.sum((counts - expected) ** 2 / expected))
    return {"stat": stat, "p_value": float(chi2.sf(stat, n_bins - 1)), "proportions": (counts / s.size).tolist()}


def majority_accuracy(obs, label_col: str = "label", train: str = "train", test: str = "test") -> float:
    """Accuracy on the ``test`` rows of always predicting the most frequent ``train`` label (the trivial baseline)."""
    split = obs["split"].astype(str)
    top = obs.loc[split == train, label_col].astype(str).value_counts().idxmax()
    return float((obs.loc[split == test, label_col].astype(str) == top).mean())
