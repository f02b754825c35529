"""Survival baselines (coxnet, rsf, gbsa, deepsurv) and senmo: planted signal vs shuffled labels, screening on
training rows only, pickle-free checkpoints that predict exactly as the fitted model, survival curves."""
from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import zoo
from omicsdata.errors import SchemaMismatchError
from zoo.metrics import concordance_index_censored

PLANTED = [f"G{i:04d}" for i in (7, 123, 456, 789, 901)]

FAST = {
    "coxnet": dict(n_alphas=20, inner_cv=3),
    "rsf": dict(n_estimators=30, min_samples_leaf=5, max_features=0.3),
    "gbsa": dict(n_estimators=60, learning_rate=0.1),
    "deepsurv": dict(hidden=(32,), max_epochs=150, patience=25, lr=3e-3, progress=False, use_stream=False),
    "senmo": dict(hidden=(32, 16), max_epochs=60, patience=15, lr=2e-3, label_col=None, progress=False,
                  use_stream=False),
}


def planted_cohort(seed=0, n=320, n_genes=1000, n_test=100, shuffle=False):
    """Raw RNA counts (1000 genes) + 20 proteins; the log-hazard is carried by 5 genes and 1 protein.

    ``shuffle=True`` permutes (time, event) pairs over the patients: no signal left to learn.
    """
    rng = np.random.default_rng(seed)
    genes = [f"G{i:04d}" for i in range(n_genes)]
    z = rng.normal(size=(n, n_genes))
    counts = rng.poisson(np.exp(3.0 + 0.6 * z)).astype(np.float32)
    prot = rng.normal(size=(n, 20)).astype(np.float32)
    idx = [genes.index(g) for g in PLANTED]
    lz = np.log1p(counts[:, idx])
    lz = (lz - lz.mean(0)) / lz.std(0)
    risk = lz @ np.array([0.9, -0.9, 0.8, -0.8, 0.9]) + 0.8 * prot[:, 3]
    t_event = rng.exponential(np.exp(-risk))
    t_cens = rng.exponential(2.0, n)
    time, event = np.minimum(t_event, t_cens), (t_event <= t_cens).astype(int)
    if shuffle:
        p = rng.permutation(n)
        time, event = time[p], event[p]
    names = [f"p{i}" for i in range(n)]
    split = np.array(["train"] * (n - n_test) + ["test"] * n_test)
    rng.shuffle(split)
    obs = pd.DataFrame({"os_time": time, "os_event": event, "split": split, "true_risk": risk}, index=names)
    mods = {"rna": ad.AnnData(counts, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=genes)),
            "protein": ad.AnnData(prot, obs=pd.DataFrame(index=names),
                                  var=pd.DataFrame(index=[f"P{i}" for i in range(20)]))}
    mdata = md.MuData(mods)
    mdata.obs = obs
    return mdata


def _model(name, **kw):
    params = dict(FAST[name], random_state=0, **kw)
    cls = zoo.get_model_class(name)
    ok = cls().get_params()
    if "max_features_per_modality" in ok:
        params.setdefault("max_features_per_modality", 50)
    if "n_ensemble" in ok:
        params.setdefault("n_ensemble", 1)
    return cls(**{k: v for k, v in params.items() if k in ok})


@pytest.fixture(scope="module")
def cohort():
    return planted_cohort(0)


_FITTED: dict = {}


def fitted(name, cohort):
    """The FAST model ``name`` fitted once on the planted cohort's training rows (shared by the tests)."""
    if name not in _FITTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITTED[name] = _model(name).fit(cohort, split="train")
    return _FITTED[name]


@pytest.fixture(scope="module")
def shuffled():
    return planted_cohort(0, shuffle=True)


def test_list_models_filters_by_task():
    surv = zoo.list_models(task="survival")
    assert {"coxnet", "rsf", "gbsa", "deepsurv", "senmo"} <= set(surv)
    assert "tosg" not in surv and "tosg" in zoo.list_models(task="classification")
    assert set(surv) < set(zoo.list_models())


@pytest.mark.parametrize("name", ["coxnet", "rsf", "gbsa", "deepsurv", "senmo"])
def test_learns_planted_signal_and_not_shuffled_labels(name, cohort, shuffled):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = fitted(name, cohort).score(cohort, split="test")
        null = _model(name).fit(shuffled, split="train").score(shuffled, split="test")
    oracle = concordance_index_censored(*(cohort.obs.loc[cohort.obs.split == "test", c].to_numpy()
                                          for c in ("os_event", "os_time", "true_risk")))
    # well above chance with the signal; about chance without it (100 test patients: sd of C ~ 0.04)
    assert real > 0.5 + 0.4 * (oracle - 0.5), (name, real, oracle)
    assert abs(null - 0.5) < 0.12, (name, null)


def _exact_cox_score(Z, time, event):
    """|U| / sqrt(I) of the univariate Cox score test at beta = 0, by a loop over the events (reference)."""
    U, info = np.zeros(Z.shape[1]), np.zeros(Z.shape[1])
    for i in np.flatnonzero(event):
        at_risk = Z[time >= time[i]]
        mean = at_risk.mean(0)
        U += Z[i] - mean
        info += (at_risk ** 2).mean(0) - mean ** 2
    return np.abs(U) / np.sqrt(info)


@pytest.mark.parametrize("name", ["coxnet", "deepsurv"])
def test_screening_keeps_the_features_a_cox_score_test_ranks_first(name, cohort):
    m = fitted(name, cohort)
    k = m.max_features_per_modality
    rna = m.schema_["modalities"]["rna"]
    assert len(rna["features"]) == k and rna["screen"]["n_features_in"] == 1000
    assert len(m.schema_["modalities"]["protein"]["features"]) == 20  # budget above its size: all kept
    assert "screen" not in m.schema_["modalities"]["protein"]
    tr = (cohort.obs["split"] == "train").to_numpy()
    if hasattr(m, "val_fraction"):  # the torch models screen on the training rows left after the validation carve
        tr = zoo.data.plan_rows(cohort, "train", "val", m.val_fraction, m.random_state).train
    x = np.log1p(cohort.mod["rna"].X[tr]).astype(np.float64)
    ref = _exact_cox_score((x - x.mean(0)) / x.std(0), cohort.obs["os_time"].to_numpy()[tr],
                           cohort.obs["os_event"].to_numpy()[tr].astype(bool))
    genes = np.asarray(cohort.mod["rna"].var_names)
    top = set(genes[np.argsort(-ref)[:k]])
    assert len(top & set(rna["features"])) >= k - 2
    strong = {g for g in PLANTED if ref[list(genes).index(g)] >= np.sort(ref)[-k + 2]}
    assert strong and strong <= set(rna["features"])


def test_screening_and_preprocessing_use_training_rows_only(cohort):
    """Replace every test row's features and targets with junk: the fitted schema and model must not move."""
    junk = cohort.copy()
    test = (junk.obs["split"] == "test").to_numpy()
    rng = np.random.default_rng(5)
    X = junk.mod["rna"].X.copy()
    X[test] = rng.poisson(50, size=(test.sum(), X.shape[1]))
    junk.mod["rna"].X = X
    # a junk gene that predicts the test rows' times perfectly: must not be picked
    junk.obs.loc[test, "os_time"] = X[test, 3].astype(float) + 1
    junk.obs.loc[test, "os_event"] = 1
    a = _model("coxnet", max_features_per_modality=20).fit(cohort, split="train")
    b = _model("coxnet", max_features_per_modality=20).fit(junk, split="train")
    assert a.schema_["modalities"] == b.schema_["modalities"]
    assert a.schema_["survival"] == b.schema_["survival"]
    np.testing.assert_array_equal(a.model_.coef, b.model_.coef)


@pytest.mark.parametrize("name", ["coxnet", "rsf", "gbsa", "deepsurv"])
def test_checkpoint_roundtrip_is_exact_and_pickle_free(name, cohort, tmp_path):
    m = fitted(name, cohort)
    path = m.save_pretrained(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                                   "schema.json"]
    loaded = zoo.Estimator.from_pretrained(path)
    def norm(p):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}

    assert type(loaded) is type(m) and norm(loaded.get_params()) == norm(m.get_params())
    np.testing.assert_array_equal(loaded.predict_risk(cohort, split="test"), m.predict_risk(cohort, split="test"))
    times = np.quantile(cohort.obs["os_time"], [0.2, 0.5, 0.8])
    np.testing.assert_array_equal(loaded.predict_survival_function(cohort, times, split="test"),
                                  m.predict_survival_function(cohort, times, split="test"))
    assert loaded.evaluate(cohort, split="test") == pytest.approx(m.evaluate(cohort, split="test"))


@pytest.mark.parametrize("name", ["rsf", "gbsa", "coxnet"])
def test_numpy_prediction_equals_scikit_survival(name, cohort):
    m = fitted(name, cohort)
    X, _, _ = m.design(cohort, split="test")
    ours = m.predict_risk(cohort, split="test")
    ref = m.sk_model_.predict(X, alpha=m.alpha_) if name == "coxnet" else m.sk_model_.predict(X)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    if name == "rsf":
        t = m.sk_model_.unique_times_
        sk = m.sk_model_.predict_survival_function(X, return_array=True)
        np.testing.assert_allclose(m.predict_survival_function(cohort, t, split="test"), sk, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["coxnet", "rsf", "gbsa", "deepsurv"])
def test_survival_function_and_calibration_metrics(name, cohort):
    m = fitted(name, cohort)
    times = np.quantile(cohort.obs["os_time"], np.linspace(0.05, 0.95, 7))
    s = m.predict_survival_function(cohort, times, split="test")
    assert s.shape == (100, 7) and np.all(np.diff(s, axis=1) <= 1e-12) and np.all((s >= 0) & (s <= 1))
    # higher predicted risk -> lower survival at the median time
    r = m.predict_risk(cohort, split="test")
    assert np.corrcoef(r, s[:, 3])[0, 1] < 0
    res = m.evaluate(cohort, split="test")
    assert {"c_index", "uno_c", "ibs", "d_calibration_stat", "d_calibration_p"} <= set(res)


def test_uncertainty(cohort):
    d = fitted("deepsurv", cohort)
    r, sd = d.predict_risk(cohort, split="test", return_std=True, mc_samples=10)
    assert r.shape == sd.shape == (100,) and np.all(sd > 0)
    f = fitted("rsf", cohort)
    r, sd = f.predict_risk(cohort, split="test", return_std=True)
    np.testing.assert_allclose(r, f.predict_risk(cohort, split="test"))
    assert np.all(sd >= 0) and sd.max() > 0
    with pytest.raises(SchemaMismatchError, match="rsf"):
        fitted("coxnet", cohort).predict_risk(cohort, split="test", return_std=True)


def test_inputs_aligned_by_name_and_bad_inputs_are_clear(cohort, tmp_path):
    m = fitted("gbsa", cohort)
    ref = m.predict_risk(cohort, split="test")
    rev = cohort.copy()
    rna = rev.mod["rna"]
    rev.mod["rna"] = rna[:, rna.var_names[::-1]].copy()  # same genes, reversed order
    np.testing.assert_array_equal(m.predict_risk(rev, split="test"), ref)
    other = cohort.copy()
    other.mod["rna"].var_names = [f"X{i}" for i in range(other.mod["rna"].n_vars)]
    with pytest.raises(SchemaMismatchError, match="rna"):
        m.predict_risk(other, split="test")
    path = m.save_pretrained(tmp_path / "g")
    (tmp_path / "g" / "schema.json").write_text('{"modalities": {}, "tasks": {}}')
    with pytest.raises(SchemaMismatchError, match="model"):
        zoo.Estimator.from_pretrained(path)


def test_end_to_end_on_a_built_store(demo_store):
    """catalog entry -> builder -> Zarr store on disk -> coxnet with screening -> checkpoint."""
    m = zoo.create_model("coxnet", n_alphas=20, inner_cv=3, max_features_per_modality=100).fit(demo_store)
    assert all(len(v["features"]) <= 100 for v in m.schema_["modalities"].values())
    obs = zoo.data.resolve(demo_store).obs
    te = (obs["split"] == "test").to_numpy()
    oracle = concordance_index_censored(obs["os_event"].to_numpy()[te], obs["os_time"].to_numpy()[te],
                                        obs["true_risk"].to_numpy()[te])
    assert m.score(demo_store, split="test") > 0.5 + 0.3 * (oracle - 0.5)


def test_fast_cox_boosting_loss_equals_scikit_survival():
    """gbsa's O(n log n) Cox loss/gradient give scikit-survival's values (ties included); a wrong sign fails."""
    from sksurv.ensemble._coxph_loss import coxph_loss as sk_loss
    from sksurv.ensemble._coxph_loss import coxph_negative_gradient as sk_grad

    from zoo.models.gbsa_loss import coxph_loss, coxph_negative_gradient

    rng = np.random.default_rng(3)
    for n in (5, 80, 400):
        t = np.round(rng.exponential(3.0, n)) + 1.0  # many ties
        e = rng.random(n) < 0.6
        f = rng.normal(size=n)
        assert coxph_loss(e, t, f) == pytest.approx(sk_loss(e.astype(np.uint8), t, f), rel=1e-10)
        np.testing.assert_allclose(coxph_negative_gradient(e, t, f), sk_grad(e.astype(np.uint8), t, f), atol=1e-10)
        assert not np.allclose(coxph_negative_gradient(e, t, -f), sk_grad(e.astype(np.uint8), t, f))


def test_senmo_linear_skip_is_additive_and_auto_batch():
    """The wide & deep skip adds one key (``skip.weight``) to SeNMoNet; the authors' layout never has it."""
    from zoo.models.senmo import auto_batch_size
    from zoo.models.senmo_net import SeNMoNet

    plain = SeNMoNet(["rna"], {"rna": 10}, hidden=(8, 4))
    wide = SeNMoNet(["rna"], {"rna": 10}, hidden=(8, 4), linear_skip=True)
    assert set(wide.state_dict()) - set(plain.state_dict()) == {"skip.weight"}
    assert "skip.weight" not in plain.state_dict()
    assert zoo.create_model("senmo-authors").linear_skip is False
    sizes = [auto_batch_size(n) for n in (50, 400, 2000, 8000, 10**6)]
    assert sizes == sorted(sizes) and sizes[0] == 64 and sizes[-1] == 1024


def test_senmo_linear_init_coxnet_matches_coxnet_and_not_shuffled_labels(cohort, shuffled, tmp_path):
    """``linear_init="coxnet"``: on a linear planted signal SeNMo starts from (and stays near) the penalised
    linear Cox fit: test C within 0.02 of coxnet's; on shuffled labels about chance; checkpoints round-trip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model("senmo", linear_init="coxnet").fit(cohort, split="train")
        real = model.score(cohort, split="test")
        cox = fitted("coxnet", cohort).score(cohort, split="test")
        null = _model("senmo", linear_init="coxnet").fit(shuffled, split="train").score(shuffled, split="test")
    assert abs(real - cox) <= 0.02, (real, cox)
    assert abs(null - 0.5) < 0.12, null
    assert model.schema_["senmo_recipe"]["linear_init"]["n_nonzero"] > 0
    path = model.save_pretrained(tmp_path / "m")
    assert 'linear_init="coxnet"' in (tmp_path / "m" / "README.md").read_text()
    back = zoo.Estimator.from_pretrained(path)
    np.testing.assert_allclose(back.predict_risk(cohort, split="test"), model.predict_risk(cohort, split="test"),
                               rtol=1e-5, atol=1e-6)


def test_rsf_time_coarsening_keeps_order_and_caps_distinct_times():
    from zoo.models.rsf import coarsen_times

    rng = np.random.default_rng(0)
    time = rng.exponential(100.0, 2000)
    event = rng.random(2000) < 0.6
    same = coarsen_times(time, event, None)
    assert np.array_equal(same, time)  # None: exact times
    few = np.round(time[:50])
    assert np.array_equal(coarsen_times(few, event[:50], 256), few)  # already few distinct: unchanged
    c = coarsen_times(time, event, 64)
    assert np.unique(c).size <= 64
    assert np.all(c >= np.minimum(time, time[event].max()) - 1e-9)  # moved up (capped at the last event)
    order = np.argsort(time, kind="stable")
    assert np.all(np.diff(c[order]) >= 0)  # the order of the times is kept (only ties are added)
    with pytest.raises(ValueError, match="max_unique_times"):
        coarsen_times(time, event, 1)
