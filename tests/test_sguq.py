"""zoo.SGUQ: staged views, T stochastic trials, thresholds tuned on validation rows only, abstention.

Planted-signal cohorts (``omicsdata.synth_classify``) in the authors' file
layout, read back into a MuData with train / val / test splits.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from omicsdata.errors import SchemaMismatchError
from omicsdata.synth_classify import read_mogonet_layout, write_mogonet_layout
from zoo.metrics import majority_accuracy

FAST = dict(hidden=(32, 32, 16), pretrain_epochs=40, max_epochs=100, n_trials=8, random_state=0)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cohort(folder, shuffle=False):
    write_mogonet_layout(folder, n_train=200, n_test=90, seed=5, n_features=(40, 40, 30), shuffle_labels=shuffle)
    return read_mogonet_layout(folder, class_names=["control", "case"])



def _majority(mdata) -> float:
    return majority_accuracy(mdata.obs)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    mdata = _cohort(tmp_path_factory.mktemp("sguq") / "planted")
    seen = []
    orig = zoo.SGUQ._stage_arrays

    def spy(self, data, split=None, rows=None):
        seen.append(np.asarray(rows) if rows is not None else split)
        return orig(self, data, split, rows)

    zoo.SGUQ._stage_arrays = spy
    try:
        model = zoo.create_model("sguq", **FAST).fit(mdata, split="train")
    finally:
        zoo.SGUQ._stage_arrays = orig
    return mdata, model, seen


def test_thresholds_are_tuned_on_validation_rows_only(fitted):
    mdata, model, seen = fitted
    val = np.flatnonzero((mdata.obs["split"] == "val").to_numpy())
    assert len(seen) == 1 and np.array_equal(np.sort(seen[0]), val)
    s = model.schema_["sguq"]
    assert s["stages"] == [["mrna"], ["mrna", "methylation"], ["mrna", "methylation", "mirna"]]
    assert len(s["stage_thresholds"]) == 2 and s["n_val"] == len(val)


def test_planted_signal_beats_majority_and_shuffled_labels_fall_to_chance(fitted, tmp_path):
    mdata, model, _ = fitted
    res = model.evaluate(mdata, split="test")
    shuffled = _cohort(tmp_path / "shuffled", shuffle=True)
    res_s = zoo.SGUQ(**FAST).fit(shuffled).evaluate(shuffled, split="test")
    base, base_s = _majority(mdata), _majority(shuffled)
    print(f"SGUQ planted: accuracy {res['accuracy']:.3f} (majority {base:.3f}), at 80% coverage "
          f"{res['accuracy_cov80']:.3f}; shuffled: {res_s['accuracy']:.3f} (majority {base_s:.3f})")
    assert res["accuracy"] >= base + 0.15
    assert res_s["accuracy"] <= base_s + 0.1
    # the uncertainty ranks errors: the surest half is at least as accurate as everything
    assert res["accuracy_cov50"] >= res["accuracy_cov100"]
    for k in ("macro_f1", "auroc", "ece", "accuracy_cov80", "coverage", "accuracy_answered"):
        assert np.isfinite(res[k]), k
    assert sum(res[f"stage{k}_share"] for k in (1, 2, 3)) == pytest.approx(1.0)
    curve = res["coverage_curve"]
    assert curve["coverage"][-1] == 1.0 and curve["accuracy"][-1] == pytest.approx(res["accuracy"])


def test_abstention_and_uncertainties(fitted):
    mdata, model, _ = fitted
    labels = model.predict(mdata, split="test", abstain=True)
    plain = model.predict(mdata, split="test")
    assert set(labels) <= {"control", "case", "abstain"}
    out = model.predict_outputs(mdata, split="test")
    assert (labels == "abstain").sum() == out["abstain"].sum()
    assert (labels[~out["abstain"]] == plain[~out["abstain"]]).all()
    assert (out["uncertainty"][out["abstain"]] > model.schema_["sguq"]["abstain_threshold"]).all()
    n = len(labels)
    assert out["view_uncertainty"].shape == (n, 3) and out["fused_uncertainty"].shape == (n,)
    p, s = model.predict_proba(mdata, split="test", return_std=True)
    assert p.shape == s.shape == (n, 2) and (s >= 0).all()


def test_save_load_round_trip(fitted, tmp_path):
    mdata, model, _ = fitted
    path = model.save_pretrained(tmp_path / "ckpt")
    back = zoo.Estimator.from_pretrained(path)
    assert type(back).__name__ == "SGUQ"
    assert back.schema_["sguq"] == model.schema_["sguq"]
    np.testing.assert_allclose(back.predict_proba(mdata, split="test"), model.predict_proba(mdata, split="test"),
                               atol=1e-6)
    assert (back.predict(mdata, split="test", abstain=True) == model.predict(mdata, split="test", abstain=True)).all()
    assert "tuned on the validation rows only" in (tmp_path / "ckpt" / "README.md").read_text()


def test_ensemble_trials_and_errors(fitted):
    mdata, _, _ = fitted
    tiny = dict(FAST, pretrain_epochs=3, max_epochs=3, n_trials=2)
    ens = zoo.SGUQ(trials="ensemble", stages=[["mirna"], ["mirna", "mrna"]], **tiny).fit(mdata)
    assert len(ens.module_.stages) == 2 and len(ens.module_.stages[0]) == 2
    assert ens.predict_outputs(mdata, split="test")["view_uncertainty"].shape[1] == 2
    with pytest.raises(SchemaMismatchError, match="trials"):
        zoo.SGUQ(trials="bagging", **tiny).fit(mdata)
    with pytest.raises(SchemaMismatchError, match="stages name modalities"):
        zoo.SGUQ(stages=[["protein"]], **tiny).fit(mdata)
    with pytest.raises(SchemaMismatchError, match="validation"):
        zoo.SGUQ(val_fraction=0, **tiny).fit(mdata, val_split=None)
