"""zoo.Estimator / SeNMo: fit, predict, score, clone, checkpoints, alignment, explain, uncertainty."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from conftest import small_cohort

import zoo
from omicsdata.errors import OmicsDataError, SchemaMismatchError

FAST = dict(hidden=(32, 16), max_epochs=4, patience=3, batch_size=32, lr=1e-3, progress=False, random_state=0, n_ensemble=1)


@pytest.fixture(scope="module")
def cohort():
    return small_cohort(160, 3, seed=1, n_genes=120, n_cpgs=80, n_mirnas=30, n_mutation_genes=25, n_proteins=20)


def test_fit_predict_score_both_heads(cohort):
    m = zoo.SeNMo(**FAST).fit(cohort)
    risk = m.predict(cohort, split="test")
    n_test = int((cohort.obs["split"] == "test").sum())
    assert risk.shape == (n_test,) and np.isfinite(risk).all()
    proba = m.predict_proba(cohort, split="test")
    assert proba.shape == (n_test, 3)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    res = m.evaluate(cohort, split="test")
    assert {"c_index", "accuracy", "auroc", "ibs", "d_calibration_p"} <= set(res)  # learning: test_survival_models.py
    assert m.score(cohort, split="test") == pytest.approx(res["c_index"])
    assert len(m.history_) >= 1 and "val_score" in m.history_[0]
    surv = m.predict_survival_function(cohort, [100, 1000, 3000], split="test")
    assert surv.shape == (n_test, 3) and np.all(np.diff(surv, axis=1) <= 1e-12)


def test_fit_is_seeded(cohort):
    a = zoo.SeNMo(**FAST).fit(cohort).predict(cohort, split="test")
    b = zoo.SeNMo(**FAST).fit(cohort).predict(cohort, split="test")
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_survival_only_and_classification_only(cohort):
    s = zoo.SeNMo(label_col=None, modalities=["rna", "protein"], **FAST).fit(cohort)
    assert s.n_classes_ is None and s.predict(cohort, split="test").dtype.kind == "f"
    with pytest.raises(SchemaMismatchError):
        s.predict_proba(cohort, split="test")
    c = zoo.SeNMo(time_col=None, **FAST).fit(cohort)
    labels = c.predict(cohort, split="test")
    assert set(labels) <= set(c.classes_)
    assert 0 <= c.score(cohort, split="test") <= 1
    with pytest.raises(SchemaMismatchError):
        c.predict_risk(cohort, split="test")


def test_no_target_and_unknown_modality_are_clear_errors(cohort):
    with pytest.raises(SchemaMismatchError, match="no target"):
        zoo.SeNMo(time_col=None, label_col="nope", **FAST).fit(cohort)
    with pytest.raises(SchemaMismatchError, match="atac"):
        zoo.SeNMo(modalities=["atac"], **FAST).fit(cohort)
    with pytest.raises(OmicsDataError):
        zoo.SeNMo(**FAST).predict(cohort)


def test_clone_and_params(cohort):
    from sklearn.base import clone

    m = zoo.SeNMo(activation="elu", dropout=0.3, **FAST)
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "module_")
    c.set_params(dropout=0.1)
    assert c.dropout == 0.1
    assert "senmo" in zoo.list_models() and zoo.get_model_class("senmo") is zoo.SeNMo


def test_checkpoint_roundtrip(cohort, tmp_path):
    m = zoo.SeNMo(**FAST).fit(cohort)
    m.evaluate(cohort, split="test")
    path = m.save_pretrained(tmp_path / "ckpt")
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == ["README.md", "config.json", "model.safetensors", "schema.json"]
    schema = json.loads((tmp_path / "ckpt" / "schema.json").read_text())
    assert schema["modalities"]["rna"]["features"] == list(cohort.mod["rna"].var_names)
    assert schema["modalities"]["rna"]["transform"] == "log1p"
    assert schema["tasks"]["classification"]["classes"] == list(cohort.obs["cancer_type"].cat.categories)
    assert "c_index" in (tmp_path / "ckpt" / "README.md").read_text()
    r = zoo.SeNMo.from_pretrained(path)
    np.testing.assert_allclose(r.predict(cohort, split="test"), m.predict(cohort, split="test"), rtol=1e-5, atol=1e-6)
    r2 = zoo.Estimator.from_pretrained(path)  # class from config.json via the registry
    assert type(r2) is zoo.SeNMo


def test_checkpoint_never_unpickles_and_rejects_bad_files(cohort, tmp_path):
    m = zoo.SeNMo(**FAST).fit(cohort)
    p = tmp_path / "ckpt"
    m.save_pretrained(p)
    (p / "model.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(OmicsDataError, match="model.safetensors"):
        zoo.SeNMo.from_pretrained(p)
    with pytest.raises(OmicsDataError, match="config.json"):
        zoo.SeNMo.from_pretrained(tmp_path)


def test_alignment_by_name_fill_and_errors(cohort):
    m = zoo.SeNMo(**FAST).fit(cohort)
    ref = m.predict(cohort, split="test")
    # reversed feature order: same predictions after alignment
    rna = cohort.mod["rna"]
    sub = cohort.copy()
    perm = np.arange(rna.n_vars)[::-1]
    import mudata as md
    sub = md.MuData({k: (a[:, perm].copy() if k == "rna" else a.copy()) for k, a in cohort.mod.items()})
    sub.obs = cohort.obs.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(m.predict(sub, split="test"), ref, rtol=1e-5, atol=1e-5)
    # 30% of rna features missing: one warning with counts
    keep = np.arange(int(rna.n_vars * 0.7))
    sub2 = md.MuData({k: (a[:, keep].copy() if k == "rna" else a.copy()) for k, a in cohort.mod.items()})
    sub2.obs = cohort.obs.copy()
    with pytest.warns(UserWarning, match=r"rna: 36 of 120 features missing"):
        out = m.predict(sub2, split="test")
    assert np.isfinite(out).all()
    # overlap below 50%: error naming the modality
    few = np.arange(int(rna.n_vars * 0.3))
    sub3 = md.MuData({k: (a[:, few].copy() if k == "rna" else a.copy()) for k, a in cohort.mod.items()})
    sub3.obs = cohort.obs.copy()
    with pytest.raises(SchemaMismatchError, match="'rna' shares 36 of the model's 120"):
        m.predict(sub3, split="test")
    sub4 = md.MuData({k: a.copy() for k, a in cohort.mod.items() if k != "protein"})
    sub4.obs = cohort.obs.copy()
    with pytest.raises(SchemaMismatchError, match="needs modality 'protein'"):
        m.predict(sub4, split="test")


def test_uncertainty_mc_dropout(cohort):
    m = zoo.SeNMo(**FAST).fit(cohort)
    mean, std = m.predict(cohort, split="test", return_std=True, mc_samples=8)
    assert mean.shape == std.shape and (std > 0).all()
    p, ps = m.predict_proba(cohort, split="test", return_std=True, mc_samples=4)
    assert p.shape == ps.shape


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "ablation"])
def test_explain_tidy_and_ig_completeness(cohort, method):
    m = zoo.SeNMo(**FAST).fit(cohort)
    test = cohort[cohort.obs["split"] == "test"]
    df = m.explain(cohort, split="test", method=method, groups="modality", batch_size=7, n_steps=256)
    assert list(df.columns) == ["sample", "modality", "feature", "attribution"]
    assert len(df) == test.n_obs * 5 and set(df["modality"]) == set(cohort.mod)
    if method == "integrated_gradients":
        # completeness: sum of attributions = f(x) - f(baseline)
        risk = m.predict_risk(cohort, split="test")
        tot = df.groupby("sample", sort=False)["attribution"].sum()
        names = list(cohort.obs_names[cohort.obs["split"] == "test"])
        masks = {mm: torch.as_tensor(cohort.obs[f"has_{mm}"].to_numpy()[cohort.obs["split"].to_numpy() == "test"])
                 for mm in m.input_dims_}
        with torch.no_grad():
            b = {mm: torch.zeros(len(names), d) for mm, d in m.input_dims_.items()}
            b.update({f"{mm}_mask": masks[mm] for mm in m.input_dims_})
            base = m.module_.eval()(b)["risk"].numpy()
        np.testing.assert_allclose(tot.loc[names].to_numpy(), risk - base, atol=5e-3)
    feat = m.explain(cohort, split="test", method="saliency", groups="feature", top_k=5)
    assert feat.groupby("sample").size().max() == 5



# ------------------------------------------------------------------ SeNMo small-cohort recipe (issue 12)

def test_senmo_configurations_and_authors_neutral_recipe():
    assert zoo.SeNMo().configuration_name() == "senmo-small-cohort"
    assert zoo.SeNMo(dropout=0.3).configuration_name().startswith("custom (from senmo-small-cohort; differs in dropout")
    a = zoo.SeNMo.from_config("senmo-authors")
    assert a.model_type == "senmo-authors" and a.configuration_name() == "senmo-authors"
    # the authors' configuration does not take the recipe's parameters: it gets their neutral values
    assert (a.n_ensemble, a.max_features_per_modality, a.lr_schedule) == (1, None, "linear")
    with pytest.raises(ValueError, match="unknown SeNMo configuration"):
        zoo.SeNMo.from_config("nope")


def test_senmo_seed_ensemble_screening_checkpoint(cohort, tmp_path):
    from zoo.models.senmo import SeNMoEnsemble

    m = zoo.SeNMo(**{**FAST, "n_ensemble": 3, "max_features_per_modality": 40}).fit(cohort)
    assert isinstance(m.module_, SeNMoEnsemble) and len(m.module_.members) == 3
    rec = m.schema_["senmo_recipe"]
    assert rec["n_members"] == 3 and rec["screening"]["rna"] == {"kept": 40, "of": 120, "method": "cox"}
    assert m.input_dims_["rna"] == 40 and m.input_dims_["protein"] == 20  # narrower modalities are kept whole
    # the ensemble's risk is the mean of its members' log-risks
    from zoo import data as zdata

    src = zdata.InMemoryBatches(cohort, zdata.select_rows(cohort, "test"), list(m.schema_["modalities"]), 1000)
    from zoo.align import align_mudata

    al = {k: v for k, v in align_mudata(m.schema_["modalities"], cohort).items() if not v.identity}
    inputs = m.preprocessor_(next(iter(src)), al)
    m.module_.eval()
    with torch.no_grad():
        members = torch.stack([net(inputs)["risk"] for net in m.module_.members], 1).mean(1).numpy()
    np.testing.assert_allclose(m.predict(cohort, split="test"), members, rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full-feature input aligns by name to the screened schema silently
        r1 = m.predict(cohort, split="test")
    path = m.save_pretrained(tmp_path / "ens")
    assert "custom (from senmo-small-cohort" in (tmp_path / "ens" / "README.md").read_text()
    again = zoo.Estimator.from_pretrained(path)
    np.testing.assert_allclose(again.predict(cohort, split="test"), r1, rtol=1e-5, atol=1e-6)


def test_senmo_recipe_learns_planted_signal_not_shuffled_labels():
    from test_auto_survival import planted

    kw = dict(label_col=None, n_ensemble=1, max_epochs=30, progress=False, random_state=0)
    m = planted(n=300, p=400)
    s = zoo.SeNMo(max_features_per_modality=50, **kw).fit(m)
    assert s.score(m, split="test") > 0.65
    # the screen found the planted features among 400
    kept = s.schema_["modalities"]["rna"]["features"]
    assert {"g0", "g1", "g2"} <= set(kept)
    sh = planted(n=300, p=400, shuffle=True)
    assert abs(zoo.SeNMo(max_features_per_modality=50, **kw).fit(sh).score(sh, split="test") - 0.5) < 0.12
