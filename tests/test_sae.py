"""zoo.SparseAutoencoder (issue 17): top-k SAE over a fitted model's hidden layer, through hooks.

End to end: demo-pancancer store (built from simulated GDC raw files) -> SeNMo trained on it ->
SAE on SeNMo's encoder output streamed batch by batch -> latents vs the planted cancer type.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

import omicsdata as od
import zoo
from omicsdata.errors import CorruptStoreError, SchemaMismatchError
from zoo.sae import max_auroc, max_auroc_null

SENMO = dict(hidden=(64, 32), max_epochs=8, patience=8, batch_size=32, n_ensemble=1, max_features_per_modality=100,
             progress=False, random_state=0, use_stream=False)
SAE = dict(n_latents=512, k=16, n_epochs=12, lr=3e-3, random_state=0, use_stream=False)
N_PERM = 200


@pytest.fixture(scope="module")
def mdata(demo_store):
    return od.load(demo_store)


@pytest.fixture(scope="module")
def senmo(mdata):
    return zoo.SeNMo(**SENMO).fit(mdata)


@pytest.fixture(scope="module")
def sae(senmo, mdata):
    return zoo.SparseAutoencoder(**SAE).fit(senmo, mdata, split="train")


def _test_codes(sae, mdata):
    codes = sae.transform(mdata, split="test")
    labels = mdata.obs["cancer_type"].astype(str).to_numpy()[mdata.obs["split"].astype(str).to_numpy() == "test"]
    return codes, labels


def test_fit_reports_dead_latents_and_fvu(sae, mdata):
    assert sae.layer_ == "encoder" and sae.d_in_ == SENMO["hidden"][-1]
    assert 0.0 <= sae.dead_fraction_ < 1.0
    assert np.isclose(sae.dead_fraction_, float((sae.fire_rate_ == 0).mean()))
    # reconstruction on held-out (val) rows beats the held-out mean, and training lowered the loss
    assert 0.0 < sae.fvu_ < 1.0
    assert sae.history_[-1]["train_nmse"] < sae.history_[0]["train_nmse"]
    codes = sae.transform(mdata, split="test")
    assert codes.shape == (int((mdata.obs["split"] == "test").sum()), SAE["n_latents"])
    assert ((codes > 0).sum(1) <= SAE["k"]).all() and (codes >= 0).all()


def test_some_latent_tracks_cancer_type_and_none_with_shuffled_labels(sae, mdata):
    codes, labels = _test_codes(sae, mdata)  # held-out patients the SAE and SeNMo never trained on
    null = max_auroc_null(codes, labels, n_perm=N_PERM, seed=0)
    observed = max_auroc(codes, labels)
    assert observed > null.max()                                   # p < 1 / (N_PERM + 1)
    shuffled = np.random.default_rng(123).permutation(labels)
    assert max_auroc(codes, shuffled) <= np.quantile(null, 0.99)   # stays within the null
    # the training-row enrichment table names the same kind of latent, with a large z
    best = sae.enrichment_.sort_values("auroc").iloc[-1]
    top = sae.top_labels(int(best["latent"]))
    assert top.loc[0, "label"] == best["label"] and top.loc[0, "z"] > 0
    samples = sae.top_samples(int(best["latent"]))
    assert (samples["cancer_type"] == best["label"]).mean() > (labels == best["label"]).mean()


def _class_shift(mdata, modality: str, features, label: str) -> np.ndarray:
    """|standardised mean difference| of each feature between ``label`` and the other types (training rows)."""
    from zoo import data as zdata

    rows = zdata.select_rows(mdata, "train")
    pos = pd.Index(mdata.mod[modality].var_names).get_indexer(features)
    x = zdata.take_rows(mdata, modality, rows)[:, pos].astype(np.float64)
    if modality in ("rna", "mirna"):
        x = np.log1p(x)
    ok = zdata.presence(mdata, modality)[rows]
    y = mdata.obs["cancer_type"].astype(str).to_numpy()[rows] == label
    a, b = x[ok & y], x[ok & ~y]
    sd = np.sqrt((a.var(0) + b.var(0)) / 2) + 1e-9
    return np.abs(a.mean(0) - b.mean(0)) / sd


def test_top_features_of_a_type_latent_are_the_type_features(sae, senmo, mdata):
    best = sae.enrichment_.sort_values("auroc").iloc[-1]
    feats = sae.top_features(int(best["latent"]), n=20)
    assert list(feats.columns) == ["latent", "modality", "feature", "attribution", "mean_abs_attribution"]
    assert feats["attribution"].abs().is_monotonic_decreasing and len(feats) == 20
    # over every input feature: the latent's |attribution| ranks the features that separate its cancer type
    # (simulated: type-specific shifts and type-centred latent factors) above the others
    allf = sae.top_features(int(best["latent"]), n=None)
    shift = np.concatenate([_class_shift(mdata, m, g["feature"].tolist(), best["label"])
                            for m, g in allf.groupby("modality", sort=False)])
    attr = np.concatenate([g["attribution"].abs().to_numpy() for _, g in allf.groupby("modality", sort=False)])
    rho, p = spearmanr(attr, shift)
    assert rho > 0 and p < 0.01


def test_layer_by_path_leaves_the_model_unchanged(senmo, mdata):
    before = {k: v.clone() for k, v in senmo.module_.state_dict().items()}
    risk = senmo.predict(mdata, split="test")
    # read through omicsdata.torch.stream (block-shuffled store chunks), one layer picked by module path
    small = zoo.SparseAutoencoder(n_latents=16, k=2, layer="encoder.3", n_epochs=2, use_stream=True).fit(senmo, mdata)
    assert small.layer_ == "encoder.3" and small.d_in_ == SENMO["hidden"][1]
    after = senmo.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m._forward_hooks for m in senmo.module_.modules())  # hooks removed
    np.testing.assert_array_equal(senmo.predict(mdata, split="test"), risk)
    with pytest.raises(SchemaMismatchError, match="encoder.99"):
        zoo.SparseAutoencoder(layer="encoder.99").fit(senmo, mdata)


def test_save_load_roundtrip_without_pickle(sae, senmo, mdata, tmp_path):
    path = sae.save_pretrained(tmp_path / "sae")
    assert sorted(p.name for p in (tmp_path / "sae").iterdir()) == ["sae.json", "sae.safetensors"]
    back = zoo.SparseAutoencoder.from_pretrained(path, model=senmo, data=mdata)
    np.testing.assert_array_equal(back.transform(mdata, split="test"), sae.transform(mdata, split="test"))
    assert back.dead_fraction_ == sae.dead_fraction_ and back.fvu_ == sae.fvu_
    latent = int(sae.enrichment_.sort_values("auroc").iloc[-1]["latent"])
    assert back.top_labels(latent).equals(sae.top_labels(latent))
    assert back.top_features(latent, n=5).equals(sae.top_features(latent, n=5))
    # another model's weights: refused (the SAE describes the model it was trained on)
    other = copy.deepcopy(senmo)
    with torch.no_grad():
        other.module_.encoder[0].weight.add_(0.01)
    with pytest.raises(SchemaMismatchError, match="fingerprint"):
        zoo.SparseAutoencoder.from_pretrained(path, model=other)
    cfg = json.loads((tmp_path / "sae" / "sae.json").read_text())
    (tmp_path / "sae" / "sae.json").write_text(json.dumps(dict(cfg, format="pickle")))
    with pytest.raises(SchemaMismatchError, match="sae.json.*format"):
        zoo.SparseAutoencoder.from_pretrained(path)
    (tmp_path / "sae" / "sae.json").write_text("{not json")
    with pytest.raises(CorruptStoreError, match="sae.json"):
        zoo.SparseAutoencoder.from_pretrained(path)
    with pytest.raises(SchemaMismatchError, match="not fitted"):
        zoo.SparseAutoencoder().save_pretrained(tmp_path / "x")


def test_cell_gat_smoke(tmp_path):
    """The SAE on CellGAT's ``embedding`` layer (the head's input) of cells attached to the training graph."""
    pytest.importorskip("zoo.models.cell_gat")
    import mudata as md

    from omicsdata.synth_cells import make_cells

    adata = make_cells(n_cells=400, n_genes=80, n_types=3, n_donors=3, seed=3, n_rare=0)
    adata.obs["split"] = np.where(adata.obs["donor"].astype(str) == str(adata.obs["donor"].cat.categories[-1]),
                                  "test", "train")
    mu = md.MuData({"rna": adata})
    for col in ("cell_type", "split"):
        mu.obs[col] = adata.obs[col].astype(str).to_numpy()
    od.write_store(mu, tmp_path / "cells.zarr")
    cells = od.open_store(tmp_path / "cells.zarr")
    gat = zoo.create_model("cell-gat", label_col="cell_type", n_pcs=8, k=8, hidden=16, heads=2, n_layers=1,
                           num_neighbors=(5,), pretext_epochs=1, batch_size=128, max_epochs=2, patience=2,
                           device="cpu", random_state=0, progress=False).fit(cells, split="train")
    sae = zoo.SparseAutoencoder(n_latents=32, k=4, n_epochs=3).fit(gat, cells, split="train")
    assert sae.layer_ == "embedding" and sae.d_in_ == 16
    assert 0.0 <= sae.dead_fraction_ < 1.0 and np.isfinite(sae.fvu_)
    live = int(np.flatnonzero(sae.fire_rate_ > 0)[0])
    feats = sae.top_features(live, n=5)
    assert len(feats) == 5 and set(feats["modality"]) == {"rna"}
    assert set(sae.top_labels(live)["label"]) <= set(cells.obs["cell_type"].astype(str))
