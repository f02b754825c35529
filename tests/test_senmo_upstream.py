"""SeNMo authors' published checkpoints: safe loading, flat layout, raw output, fold order, 80,697-input schema."""
from __future__ import annotations

import argparse
import os
import pickle

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch
from senmo_fixture import reference_risk, write_authors_checkpoint

import zoo
from omicsdata.errors import FormatError, SchemaMismatchError
from zoo.models.senmo_net import SeNMoNet
from zoo.models.senmo_safeload import SAFE_GLOBALS, load_checkpoint
from zoo.models.senmo_upstream import authors_features, convert, infer_architecture, order_folds


def _mdata(x: np.ndarray, features: dict, drop=()) -> md.MuData:
    mods, at = {}, 0
    obs = pd.DataFrame(index=[f"s{i}" for i in range(x.shape[0])])
    for m, names in features.items():
        if m not in drop:
            mods[m] = ad.AnnData(X=x[:, at:at + len(names)], var=pd.DataFrame(index=names), obs=obs.copy())
        at += len(names)
    return md.MuData(mods)


@pytest.fixture(scope="module")
def authors_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("senmo")
    p = d / "Checkpoint_pancancer_combined_omic_fold1_for_test.pt"
    return p, write_authors_checkpoint(p, hidden=(8, 4, 4), seed=3)


def test_plain_weights_only_refuses_the_real_layout_and_ours_reads_it(authors_file):
    p, state = authors_file
    with pytest.raises(pickle.UnpicklingError):
        torch.load(str(p), weights_only=True)  # the Namespace (and protocol 4): why an allow-list is needed
    obj = load_checkpoint(p)
    assert set(obj) == {"split", "opt", "epoch", "data", "model_state_dict", "optimizer_state_dict", "metrics"}
    assert isinstance(obj["opt"], argparse.Namespace) and obj["opt"].act_type == "None"
    assert isinstance(obj["data"]["train"]["x_omic"], np.ndarray)
    assert all(k.startswith("module.") for k in obj["model_state_dict"])


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_class_that_runs_code_is_refused_and_never_runs(tmp_path, authors_file, protocol):
    marker = tmp_path / "ran"
    p = tmp_path / f"evil{protocol}.pt"
    torch.save({"opt": argparse.Namespace(act_type="None"), "model_state_dict": dict(authors_file[1]),
                "metrics": RunsCode(marker)}, str(p), pickle_protocol=protocol)
    with pytest.raises(FormatError, match="posix.system|os.system|allow-list|Unsupported global"):
        load_checkpoint(p)
    with pytest.raises(FormatError):
        convert(p, tmp_path / "out")
    assert not marker.exists()
    assert "os.system" not in SAFE_GLOBALS and "builtins.eval" not in SAFE_GLOBALS


def test_flat_layout_and_output_parameters():
    net = SeNMoNet(["a"], {"a": 6}, hidden=(5, 4, 3), activation="elu", use_masks=False, act_type="None")
    keys = list(net.state_dict())
    assert [k for k in keys if k.startswith("encoder")] == [
        "encoder.0.weight", "encoder.0.bias", "encoder.3.weight", "encoder.3.bias", "encoder.6.weight", "encoder.6.bias"]
    assert isinstance(net.output_range, torch.nn.Parameter) and not net.output_range.requires_grad
    x = {"a": torch.randn(7, 6)}
    net.eval()
    raw = net.classifier(net.encoder(x["a"])).squeeze(1)
    torch.testing.assert_close(net(x)["risk"], raw)  # act_type "None": raw output although the Parameters exist
    bounded = SeNMoNet(["a"], {"a": 6}, hidden=(5, 4, 3), activation="elu", use_masks=False, act_type="Sigmoid")
    bounded.load_state_dict(net.state_dict())
    bounded.eval()
    torch.testing.assert_close(bounded(x)["risk"], torch.sigmoid(raw) * 6 - 3)
    assert not hasattr(SeNMoNet(["a"], {"a": 6}, hidden=(3,)), "output_range")  # our own layout: none


def test_converted_model_matches_the_reference_forward_pass(authors_file, tmp_path):
    p, state = authors_file
    est = convert(p, tmp_path / "ckpt")
    feats = authors_features()
    assert list(est.schema_["modalities"]) == ["clinical", "dnamut", "protein", "gene", "methylation", "mirna"]
    assert [len(v) for v in feats.values()] == [4, 17301, 472, 8794, 52396, 1730]
    assert feats["clinical"] == ["age", "gender", "race", "stage"] and feats["mirna"][0] == "mirna_0"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 80697)).astype(np.float32)
    out = est.predict_outputs(_mdata(x, feats), required=[])["risk"]
    ref = reference_risk(state, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    assert np.ptp(ref) > 0  # the inputs move the risk, so the comparison means something
    # a missing modality is zeros
    x0 = x.copy()
    lo = 4 + 17301 + 472 + 8794
    x0[:, lo:lo + 52396] = 0
    out0 = est.predict_outputs(_mdata(x, feats, drop=("methylation",)), required=[])["risk"]
    np.testing.assert_allclose(out0, reference_risk(state, torch.from_numpy(x0)).numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(out0, out)
    # reloaded from the zoo checkpoint: same answers, same class
    again = zoo.SeNMo.from_pretrained(tmp_path / "ckpt")
    assert type(again).__name__ == "SeNMoAuthors"
    np.testing.assert_allclose(again.predict_outputs(_mdata(x, feats), required=[])["risk"], out, rtol=1e-6)


def test_sigmoid_only_when_asked(authors_file, tmp_path):
    p, state = authors_file
    est = convert(p, tmp_path / "ckpt", act_type="Sigmoid")
    x = np.random.default_rng(1).normal(size=(4, 80697)).astype(np.float32)
    out = est.predict_outputs(_mdata(x, authors_features()), required=[])["risk"]
    np.testing.assert_allclose(out, reference_risk(state, torch.from_numpy(x), "Sigmoid").numpy(), rtol=1e-4,
                               atol=1e-5)
    assert est.schema_["data"]["upstream"]["file_act_type"] == "None"


def test_nested_or_wrong_layouts_are_named(tmp_path):
    nested = {"encoder.0.0.weight": torch.zeros(4, 6), "encoder.0.0.bias": torch.zeros(4),
              "classifier.0.weight": torch.zeros(1, 4), "classifier.0.bias": torch.zeros(1)}
    with pytest.raises(FormatError, match="nested"):
        infer_architecture(nested)
    gap = {"encoder.0.weight": torch.zeros(4, 6), "encoder.0.bias": torch.zeros(4),
           "encoder.4.weight": torch.zeros(3, 4), "encoder.4.bias": torch.zeros(3),
           "classifier.0.weight": torch.zeros(1, 3), "classifier.0.bias": torch.zeros(1)}
    with pytest.raises(FormatError, match=r"\[0, 3\]"):
        infer_architecture(gap)
    small = tmp_path / "Checkpoint_pancancer_combined_omic_fold1_for_test.pt"
    write_authors_checkpoint(small, in_dim=12, hidden=(4,))
    with pytest.raises(SchemaMismatchError, match="12 inputs"):
        convert(small, tmp_path / "o")
    est = convert(small, tmp_path / "o2", features={"rna": [f"g{i}" for i in range(12)]})
    assert list(est.schema_["modalities"]) == ["rna"]


def test_folds_are_ordered_numerically():
    names = [f"Checkpoint_pancancer_combined_omic_fold{k}_for_test.pt" for k in (10, 2, 1, 9)]
    assert [f["fold"] for f in order_folds(names)] == [1, 2, 9, 10]
    assert [order_folds([n])[0]["fold"] for n in sorted(names)] != [1, 2, 9, 10]  # a string sort is wrong
    with pytest.raises(SchemaMismatchError, match="fold number"):
        order_folds(["weights.pt"])


def test_authors_configuration_is_registered_with_their_hyper_parameters():
    m = zoo.create_model("senmo-authors")
    p = m.get_params()
    assert (p["dropout"], p["lr"], p["weight_decay"], p["batch_size"], p["max_epochs"], p["l1"], p["ties"]) == \
        (0.1058, 5.8e-4, 0.006, 256, 100, 3e-4, "breslow")
    assert p["activation"] == "elu" and p["act_type"] == "None" and not p["use_masks"]


def test_authors_configuration_learns_a_planted_signal_and_not_shuffled_labels():
    from conftest import small_cohort

    mdata = small_cohort(240, 2, seed=5, n_genes=40, n_cpgs=20, n_mirnas=10, n_mutation_genes=8, n_proteins=6)
    kw = dict(hidden=(32, 16), max_epochs=25, batch_size=64, lr=3e-3, progress=False, random_state=0, patience=25)
    real = zoo.create_model("senmo-authors", **kw).fit(mdata)
    shuffled = mdata.copy()
    perm = np.random.default_rng(0).permutation(mdata.n_obs)
    for c in ("os_time", "os_event"):
        shuffled.obs[c] = mdata.obs[c].to_numpy()[perm]
    fake = zoo.create_model("senmo-authors", **kw).fit(shuffled)
    c_real, c_fake = real.score(mdata, split="test"), fake.score(mdata, split="test")
    assert c_real > 0.6 and c_real - c_fake > 0.1, (c_real, c_fake)


def max_abs_risk_difference(n=64, seed=0) -> float:
    """The report's figure: max |risk(converted) - risk(reference forward)| on random 80,697-wide inputs."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "Checkpoint_pancancer_combined_omic_fold1_for_test.pt"
        state = write_authors_checkpoint(p, hidden=(32, 16, 8, 8), seed=seed)
        est = convert(p, Path(d) / "ckpt")
        x = np.random.default_rng(seed).normal(size=(n, 80697)).astype(np.float32)
        ours = est.predict_outputs(_mdata(x, authors_features()), required=[])["risk"]
        ref = reference_risk(state, torch.from_numpy(x)).numpy()
        return float(np.abs(ours - ref).max())


def test_max_abs_risk_difference_is_float_rounding():
    assert max_abs_risk_difference(n=16) < 1e-4
