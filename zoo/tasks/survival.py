"""Survival: Cox partial likelihood, validation C-index, Breslow baseline, survival metrics.

Metrics on held-out rows (:meth:`SurvivalTask.metrics`): Harrell's C
(``c_index``), Uno's C (``uno_c``), the integrated Brier score over the 10th-80th
percentiles of the rows' event times (``ibs``) and D-calibration
(``d_calibration_stat``, ``d_calibration_p``: chi-square test that the
predicted ``S(t_i | x_i)`` are uniform; :func:`zoo.metrics.d_calibration`).
Survival curves come from the model when it has its own (``survival_fn`` in
the outputs), else from the Breslow baseline (:func:`survival_probs`).

What is kept after training (``schema_["survival"]``) is aggregate only: the
Breslow baseline cumulative hazard as a step function at the unique event
times, the Kaplan-Meier estimate of the censoring survival ``G(t)`` as a step
function (what Uno's C and the integrated Brier score need) and ``tau`` (the
80th percentile of training event times). No per-patient time or event.
"""
from __future__ import annotations

import numpy as np
import torch

from omicsdata.errors import OmicsDataError, SchemaMismatchError

from ..losses import breslow_baseline, cox_ph_loss
from .base import Task, register_task

TAU_QUANTILE = 0.8
D_CAL_BINS = 10


def step_values(times, values, at) -> np.ndarray:
    """A right-continuous step function (``values`` from each of ``times`` on, 0 before) at ``at``."""
    times, values = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    idx = np.searchsorted(times, np.asarray(at, dtype=float), side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], 0.0)


def survival_function(summary: dict, risk: np.ndarray, times) -> np.ndarray:
    """``S(t | x) = exp(-exp(risk) H0(t))`` at ``times`` (n_samples, n_times)."""
    h0 = step_values(summary["baseline_times"], summary["baseline_cumhaz"], times)
    return np.exp(-np.exp(np.asarray(risk))[:, None] * h0[None, :])


def survival_probs(est, outputs: dict, times, pointwise: bool = False) -> np.ndarray:
    """Predicted survival of the rows in ``outputs`` at ``times``.

    A model with its own survival curves (e.g. a random survival forest) puts
    a callable ``outputs["survival_fn"](times, pointwise)`` in its outputs;
    otherwise the Breslow baseline of ``schema_["survival"]`` and the risk
    give ``S(t | x) = exp(-exp(risk) H0(t))``. ``pointwise=True``: ``times``
    has one time per row and the result is ``S(times[i] | x_i)`` (n,), else
    (n, n_times).
    """
    fn = outputs.get("survival_fn")
    if fn is not None:
        return fn(times, pointwise)
    s = require_survival(est)
    r = np.asarray(outputs["risk"], dtype=np.float64)
    if pointwise:
        h0 = step_values(s["baseline_times"], s["baseline_cumhaz"], times)
        return np.exp(-np.exp(r) * h0)
    return survival_function(s, r, times)


def censoring_of(summary: dict):
    """The :class:`zoo.metrics.CensoringKM` of a survival summary (old checkpoints: from their arrays)."""
    from ..metrics import CensoringKM

    if "censoring_times" in summary:
        return CensoringKM.from_steps(summary["censoring_times"], summary["censoring_surv"])
    if "train_time" in summary:  # checkpoints written before labels were left out
        return CensoringKM(np.asarray(summary["train_event"]), np.asarray(summary["train_time"]))
    return None


def tau_of(summary: dict) -> float | None:
    """The time horizon of Uno's C (stored, or from an old checkpoint's arrays)."""
    if "tau" in summary:
        return summary["tau"]
    if "train_time" in summary:
        te, tt = np.asarray(summary["train_event"]).astype(bool), np.asarray(summary["train_time"])
        return float(np.quantile(tt[te], TAU_QUANTILE)) if te.any() else None
    return None


@register_task("survival")
class SurvivalTask(Task):
    """Targets: obs columns ``time_col`` / ``event_col``; output ``risk`` (log-hazard, higher = shorter)."""

    target_dtypes = {"surv_ok": torch.bool}
    has_summary = True

    def requested(self, est) -> dict | None:
        tc, ec = getattr(est, "time_col", None), getattr(est, "event_col", None)
        return {"time_col": tc, "event_col": ec} if tc and ec else None

    def targets(self, spec: dict, obs) -> dict[str, np.ndarray]:
        if spec["time_col"] not in obs.columns or spec["event_col"] not in obs.columns:
            return {}
        t = obs[spec["time_col"]].to_numpy(dtype=np.float64, na_value=np.nan)
        e = obs[spec["event_col"]].to_numpy(dtype=np.float64, na_value=np.nan)
        return {"time": t, "event": np.nan_to_num(e).astype(np.float64), "surv_ok": np.isfinite(t) & np.isfinite(e)}

    def loss(self, est, outputs: dict, targets: dict):
        if "risk" not in outputs or "surv_ok" not in targets:
            return None
        ok = targets["surv_ok"]
        if not bool(ok.any()):
            return None
        return cox_ph_loss(outputs["risk"][ok], targets["time"][ok], targets["event"][ok], ties=est.ties)

    def validation_score(self, est, outputs: dict, targets: dict):
        from ..metrics import concordance_index_censored

        if "risk" not in outputs or "surv_ok" not in targets:
            return None
        ok = targets["surv_ok"]
        try:
            return concordance_index_censored(targets["event"][ok], targets["time"][ok], outputs["risk"][ok])
        except OmicsDataError:
            return None

    def summarize(self, est, outputs: dict, targets: dict) -> dict:
        """Breslow baseline, censoring KM and tau from the training rows' outputs (aggregates only)."""
        from ..metrics import CensoringKM

        ok = targets["surv_ok"]
        t, e = targets["time"][ok], targets["event"][ok]
        times, h0 = breslow_baseline(outputs["risk"][ok], t, e)
        g = CensoringKM(e, t)
        ev = e.astype(bool)
        return {"baseline_times": times.tolist(), "baseline_cumhaz": h0.tolist(),
                "censoring_times": g.steps()[0].tolist(), "censoring_surv": g.steps()[1].tolist(),
                "tau": float(np.quantile(t[ev], TAU_QUANTILE)) if ev.any() else None}

    def metrics(self, est, outputs: dict, targets: dict) -> dict:
        from .. import metrics as M

        if "risk" not in outputs or "surv_ok" not in targets:
            return {}
        ok = targets["surv_ok"]
        e, t, r = targets["event"][ok], targets["time"][ok], outputs["risk"][ok]
        res = {"c_index": M.concordance_index_censored(e, t, r)}
        s = est.schema_.get("survival")
        G = censoring_of(s) if s else None
        if G is None:
            return res
        try:
            res["uno_c"] = M.concordance_index_ipcw(None, None, e, t, r, tau=tau_of(s), censoring=G)
        except (OmicsDataError, IndexError):
            pass
        t_all = np.where(ok, targets["time"], 0.0)
        try:
            grid = np.unique(np.quantile(t[e.astype(bool)], np.linspace(0.1, 0.8, 8)))
            if grid.size >= 2:
                sp = survival_probs(est, outputs, grid)[ok]
                res["ibs"] = M.integrated_brier_score(None, None, e, t, sp, grid, censoring=G)
        except (OmicsDataError, IndexError):
            pass
        try:
            dcal = M.d_calibration(survival_probs(est, outputs, t_all, pointwise=True)[ok], e, n_bins=D_CAL_BINS)
            res["d_calibration_stat"], res["d_calibration_p"] = dcal["stat"], dcal["p_value"]
        except (OmicsDataError, IndexError):
            pass
        return res


def require_survival(est) -> dict:
    """The fitted survival summary of ``est`` (clear error without one)."""
    s = est.schema_.get("survival")
    if not s:
        raise SchemaMismatchError(f"{type(est).__name__} was fitted without a survival target")
    return s
