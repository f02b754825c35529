"""auto-survival: inner-CV selection and stacking learn a planted signal, keep to the training rows, save without pickle."""
from __future__ import annotations

import json

import numpy as np
import pytest

import zoo
from omicsdata.errors import SchemaMismatchError

# two cheap candidates (one linear, one tree ensemble) keep the test fast; the default is every survival model
CANDS = {"cox": ["coxnet", {"n_alphas": 10, "inner_cv": 3}], "trees": ["gbsa", {"n_estimators": 40}]}


def planted(n=240, p=30, seed=0, shuffle=False):
    """A one-modality MuData whose log-hazard is linear in 3 of ``p`` features; train/val/test splits."""
    import anndata as ad
    import mudata as md
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(np.float32)
    lh = 1.2 * X[:, 0] - 1.0 * X[:, 1] + 0.8 * X[:, 2]
    t = rng.exponential(1.0, n) / np.exp(lh) * 365
    c = rng.exponential(np.median(t) * 2, n)
    time_, event = np.minimum(t, c), (t <= c).astype(float)
    if shuffle:
        perm = rng.permutation(n)
        time_, event = time_[perm], event[perm]
    idx = pd.Index([f"p{i}" for i in range(n)], dtype=str)
    md.set_options(pull_on_update=False)
    m = md.MuData({"rna": ad.AnnData(X=X, obs=pd.DataFrame(index=idx),
                                     var=pd.DataFrame(index=pd.Index([f"g{j}" for j in range(p)], dtype=str)))})
    split = np.array(["train"] * n, dtype=object)
    split[rng.permutation(n)[: n // 4]] = "test"
    m.obs = pd.DataFrame({"os_time": time_, "os_event": event, "split": split}, index=idx)
    return m


@pytest.fixture(scope="module")
def cohort():
    return planted()


@pytest.fixture(scope="module")
def fitted(cohort):
    return zoo.create_model("auto-survival", candidates=CANDS, cv=3, ensemble=True, progress=False).fit(cohort)


def test_registered_and_candidates_default_to_every_survival_model():
    assert "auto-survival" in zoo.list_models(task="survival")
    from zoo.models.auto_survival import survival_candidates

    names = survival_candidates()
    assert "auto-survival" not in names and "coxnet" in names and "senmo" in names


def test_leaderboard_weights_and_planted_signal(fitted, cohort):
    lb = fitted.leaderboard_
    assert list(lb["candidate"]) == ["cox", "trees", "ensemble"]
    w = lb.set_index("candidate")["weight"]
    assert (w[["cox", "trees"]] >= 0).all() and w[["cox", "trees"]].sum() == pytest.approx(1.0)
    assert lb["cv_c_index_mean"].notna().all() and (lb["fit_seconds"].iloc[:2] > 0).all()
    assert fitted.mode_ == "ensemble"
    # the planted linear signal: the linear candidate carries the ensemble and the test C-index is high
    assert w["cox"] > w["trees"]
    assert fitted.score(cohort, split="test") > 0.7
    assert "cox" in fitted.leaderboard_text() and "chosen: weighted ensemble" in fitted.leaderboard_text()


def test_shuffled_labels_fall_to_chance():
    m = planted(shuffle=True)
    est = zoo.create_model("auto-survival", candidates=CANDS, cv=3, progress=False).fit(m)
    assert abs(est.score(m, split="test") - 0.5) < 0.12
    assert est.leaderboard_["cv_c_index_mean"].max() < 0.62


def test_inner_cv_reads_training_rows_only(cohort):
    """Blanking the labels of every non-training row changes nothing."""
    blank = cohort.copy()
    test = (blank.obs["split"] == "test").to_numpy()
    blank.obs.loc[test, "os_time"] = np.nan
    blank.obs.loc[test, "os_event"] = np.nan
    kw = dict(candidates={"cox": CANDS["cox"]}, cv=3, progress=False)
    a = zoo.create_model("auto-survival", **kw).fit(cohort)
    b = zoo.create_model("auto-survival", **kw).fit(blank)
    np.testing.assert_allclose(a.leaderboard_["cv_c_index_mean"], b.leaderboard_["cv_c_index_mean"])
    np.testing.assert_allclose(a.predict(cohort, split="test"), b.predict(cohort, split="test"))


def test_checkpoint_roundtrip_without_pickle(fitted, cohort, tmp_path):
    path = fitted.save_pretrained(tmp_path / "auto")
    files = sorted(p.name for p in (tmp_path / "auto").iterdir())
    assert files == ["README.md", "config.json", "model.safetensors", "schema.json"]
    cfg = json.loads((tmp_path / "auto" / "config.json").read_text())
    kept = fitted.leaderboard_.iloc[:2]
    kept = [{"cox": "coxnet", "trees": "gbsa"}[c] for c in kept["candidate"][kept["weight"] > 0]]
    assert cfg["model_type"] == "auto-survival" and [m["model_type"] for m in cfg["members"]] == kept
    again = zoo.Estimator.from_pretrained(path)
    assert type(again).__name__ == "AutoSurvival"
    np.testing.assert_allclose(again.predict(cohort, split="test"), fitted.predict(cohort, split="test"), rtol=1e-6)
    times = np.quantile(cohort.obs["os_time"], [0.2, 0.5, 0.8])
    s1, s2 = fitted.predict_survival_function(cohort, times, split="test"), again.predict_survival_function(cohort, times, split="test")
    np.testing.assert_allclose(s1, s2, rtol=1e-6)
    assert np.all(np.diff(s1, axis=1) <= 1e-12) and ((s1 >= 0) & (s1 <= 1)).all()
    risk, std = again.predict_risk(cohort, split="test", return_std=True)
    assert std.shape == risk.shape and (std >= 0).all()
    if len(kept) > 1:  # the members' weighted spread
        assert std.max() > 0
    res = again.evaluate(cohort, split="test")
    assert set(res) >= {"c_index", "ibs"}
    assert list(again.leaderboard_["candidate"]) == list(fitted.leaderboard_["candidate"])


def test_tampered_checkpoint_is_a_clear_error(fitted, tmp_path):
    path = tmp_path / "auto"
    fitted.save_pretrained(path)
    schema = json.loads((path / "schema.json").read_text())
    schema["members"] = []
    (path / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(SchemaMismatchError, match="members"):
        zoo.Estimator.from_pretrained(path)


def test_time_budget_failures_and_bad_candidates(cohort):
    est = zoo.create_model("auto-survival", candidates={**CANDS, "nope": "no-such-model"}, cv=3, time_budget_s=0,
                           progress=False).fit(cohort)
    notes = est.leaderboard_.set_index("candidate")["note"]
    assert notes["cox"] == "" and "time budget" in notes["trees"] and "time budget" in notes["nope"]
    assert est.mode_ == "best" and est.chosen_.model_type == "coxnet"
    est = zoo.create_model("auto-survival", candidates={"cox": CANDS["cox"], "nope": "no-such-model"}, cv=3,
                           progress=False).fit(cohort)
    assert est.leaderboard_.set_index("candidate")["note"]["nope"].startswith("failed")
    with pytest.raises(SchemaMismatchError, match="itself"):
        zoo.create_model("auto-survival", candidates=["auto-survival"], progress=False).fit(cohort)
    with pytest.raises(SchemaMismatchError, match="no candidate completed"):
        zoo.create_model("auto-survival", candidates=["no-such-model"], cv=3, progress=False).fit(cohort)


def test_cv_auto_fold_count_and_bad_cv(cohort):
    from zoo.models.auto_survival import LARGE_COHORT, inner_fold_count

    assert inner_fold_count("auto", LARGE_COHORT - 1) == 3 and inner_fold_count("auto", LARGE_COHORT) == 2
    assert inner_fold_count(5, 10) == 5
    est = zoo.create_model("auto-survival", candidates={"cox": CANDS["cox"]}, progress=False).fit(cohort)
    assert est.schema_["auto_survival"]["cv"] == 3  # 180 training rows: the default "auto" is 3 folds
    assert est.leaderboard_.set_index("candidate")["folds"]["cox"] == 3
    with pytest.raises(SchemaMismatchError, match="cv must be"):
        zoo.create_model("auto-survival", candidates={"cox": CANDS["cox"]}, cv="many", progress=False).fit(cohort)
