"""Survival metrics and Cox losses against scikit-survival and lifelines (test-only references)."""
from __future__ import annotations

import lifelines  # test-only references, in the [test] extra: a missing one fails, never skips
import numpy as np
import pandas as pd
import pytest
import sksurv.metrics as sm
import torch
from sksurv.util import Surv

from omicsdata.errors import SchemaMismatchError
from zoo import metrics as zm
from zoo.losses import breslow_baseline, cox_ph_loss


def _data(seed, n=None):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(20, 250))
    t = rng.integers(1, 25, n).astype(float)          # many tied times
    e = rng.random(n) < 0.6                            # ~40% censored
    t[np.argmax(t)] += 1                               # a unique last time ...
    e[np.argmax(t)] = False                            # ... censored, so G(t) > 0 everywhere (IPCW)
    r = np.round(rng.normal(size=n), 1)                # tied risks
    return e, t, r


@pytest.mark.parametrize("seed", range(8))
def test_harrell_and_uno_match_sksurv(seed):
    e, t, r = _data(seed)
    assert zm.concordance_index_censored(e, t, r) == pytest.approx(sm.concordance_index_censored(e, t, r)[0], abs=1e-12)
    y = Surv.from_arrays(e, t)
    for tau in (None, float(np.quantile(t, 0.7))):
        ref = sm.concordance_index_ipcw(y, y, r, tau=tau)[0]
        assert zm.concordance_index_ipcw(e, t, e, t, r, tau=tau) == pytest.approx(ref, abs=1e-12)


def test_harrell_matches_naive_pairs():
    e, t, r = _data(99, n=60)
    num = den = 0.0
    for i in range(len(t)):
        if not e[i]:
            continue
        for j in range(len(t)):
            if t[j] > t[i] or (t[j] == t[i] and not e[j]):
                den += 1
                num += 1.0 if r[i] > r[j] else (0.5 if r[i] == r[j] else 0.0)
    assert zm.concordance_index_censored(e, t, r) == pytest.approx(num / den, abs=1e-12)


def test_sign_convention_higher_risk_shorter_survival():
    t = np.arange(1, 11, dtype=float)
    e = np.ones(10, bool)
    assert zm.concordance_index_censored(e, t, -t) == 1.0   # risk decreasing in time: perfect
    assert zm.concordance_index_censored(e, t, t) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_auc_brier_ibs_match_sksurv(seed):
    e, t, r = _data(seed + 20, n=200)
    y = Surv.from_arrays(e, t)
    times = np.unique(np.quantile(t[e], [0.2, 0.4, 0.6, 0.8]))
    a_ref, m_ref = sm.cumulative_dynamic_auc(y, y, r, times)
    a, m = zm.cumulative_dynamic_auc(e, t, e, t, r, times)
    np.testing.assert_allclose(a, a_ref, atol=1e-12)
    assert m == pytest.approx(m_ref, abs=1e-12)
    rng = np.random.default_rng(seed)
    sp = np.sort(rng.random((len(t), len(times))), axis=1)[:, ::-1]
    np.testing.assert_allclose(zm.brier_score(e, t, e, t, sp, times)[1], sm.brier_score(y, y, sp, times)[1], atol=1e-12)
    assert zm.integrated_brier_score(e, t, e, t, sp, times) == pytest.approx(
        sm.integrated_brier_score(y, y, sp, times), abs=1e-12)


def test_train_test_ipcw_uses_training_censoring():
    e, t, r = _data(3, n=200)
    e2, t2, r2 = _data(4, n=120)
    t2 = np.minimum(t2, t.max() - 1)
    ytr, yte = Surv.from_arrays(e, t), Surv.from_arrays(e2, t2)
    tau = float(np.quantile(t, 0.6))
    assert zm.concordance_index_ipcw(e, t, e2, t2, r2, tau=tau) == pytest.approx(
        sm.concordance_index_ipcw(ytr, yte, r2, tau=tau)[0], abs=1e-12)


def _fit_linear_cox(X, t, e, ties):
    beta = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([beta], max_iter=300, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")
    Xt, tt, et = (torch.tensor(a, dtype=torch.float64) for a in (X, t, e.astype(float)))

    def closure():
        opt.zero_grad()
        loss = cox_ph_loss(Xt @ beta, tt, et, ties=ties)
        loss.backward()
        return loss

    opt.step(closure)
    return beta.detach().numpy()


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_cox_loss_fits_same_coefficients_as_sksurv(ties):
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 3))
    t = rng.integers(1, 15, 150).astype(float)
    e = rng.random(150) < 0.7
    ref = CoxPHSurvivalAnalysis(ties=ties).fit(X, Surv.from_arrays(e, t)).coef_
    np.testing.assert_allclose(_fit_linear_cox(X, t, e, ties), ref, atol=1e-5)


def test_efron_log_likelihood_matches_lifelines():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 2))
    t = rng.integers(1, 10, 120).astype(float)
    e = rng.random(120) < 0.6
    df = pd.DataFrame(X, columns=["a", "b"]).assign(T=t, E=e.astype(int))
    cph = lifelines.CoxPHFitter().fit(df, "T", "E")
    risk = torch.tensor(X @ cph.params_.values)
    ll = -cox_ph_loss(risk, torch.tensor(t), torch.tensor(e.astype(float)), "efron", reduction="sum").item()
    assert ll == pytest.approx(cph.log_likelihood_, abs=1e-8)


def test_cox_loss_gradient_and_no_event_batch():
    r = torch.zeros(5, requires_grad=True)
    loss = cox_ph_loss(r, torch.arange(5.0), torch.zeros(5))
    loss.backward()
    assert loss.item() == 0.0 and r.grad is not None
    with pytest.raises(ValueError):
        cox_ph_loss(r, torch.arange(5.0), torch.ones(5), ties="exact")


def test_breslow_baseline_matches_lifelines():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 1))
    t = rng.integers(1, 30, 100).astype(float)
    e = rng.random(100) < 0.7
    df = pd.DataFrame(X, columns=["a"]).assign(T=t, E=e.astype(int))
    cph = lifelines.CoxPHFitter(baseline_estimation_method="breslow").fit(df, "T", "E")
    # lifelines centres covariates: its baseline is at the mean of X
    risk = (X[:, 0] - X[:, 0].mean()) * cph.params_.values[0]
    times, h0 = breslow_baseline(risk, t, e)
    ref = cph.baseline_cumulative_hazard_.iloc[:, 0]
    np.testing.assert_allclose(h0, ref.loc[times].to_numpy(), rtol=1e-6)


def _dcal_naive(s, e, n_bins=10):
    """D-calibration bin counts by a loop over patients and bins (Haider et al. 2020, section 4.2)."""
    edges = np.linspace(0, 1, n_bins + 1)
    counts = np.zeros(n_bins)
    for si, ei in zip(s, e):
        for b in range(n_bins):
            lo, hi = edges[b], edges[b + 1]
            inside = lo <= si < hi or (b == n_bins - 1 and si == 1.0)
            if ei:
                counts[b] += inside
            elif si == 0:  # censored where the curve is already 0: all its mass in the lowest bin
                counts[b] += b == 0
            elif hi <= si:
                counts[b] += (hi - lo) / si
            elif inside:
                counts[b] += (si - lo) / si
    return counts


def _exp_cohort(seed, n=2000):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    rate = np.exp(x)
    t_ev, t_c = rng.exponential(1 / rate), rng.exponential(1.5, n)
    return rate, np.minimum(t_ev, t_c), t_ev <= t_c


@pytest.mark.parametrize("seed", range(3))
def test_d_calibration_matches_naive_definition(seed):
    rate, t, e = _exp_cohort(seed, n=300)
    s = np.exp(-rate * t)
    s[:3] = [1.0, 0.5, 0.0]   # bin edges and the extremes
    res = zm.d_calibration(s, e)
    np.testing.assert_allclose(np.asarray(res["proportions"]) * len(s), _dcal_naive(s, e), atol=1e-9)


def test_d_calibration_accepts_true_curves_and_rejects_wrong_ones():
    rate, t, e = _exp_cohort(0)
    true_p = zm.d_calibration(np.exp(-rate * t), e)["p_value"]
    wrong_p = zm.d_calibration(np.exp(-3 * rate * t), e)["p_value"]   # hazard overstated three-fold
    flat_p = zm.d_calibration(np.exp(-0.2 * t), e)["p_value"]  # one curve for all patients, far too flat
    assert true_p > 0.01 and wrong_p < 1e-6 and flat_p < 1e-6
    with pytest.raises(SchemaMismatchError):
        zm.d_calibration([0.5, 0.2], [1])
