"""zoo.MOGONET end to end: files in the authors' layout -> MuData -> fit -> predict / evaluate / save / load.

The cohort is drawn with a planted class signal (``omicsdata.synth_classify``)
and written in MOGONET's published file layout; the model must beat the
majority class on the held-out (published ``te``) samples and fall to chance
when the labels are shuffled. The transductive graph is checked for batch
invariance (``test_graph="attach"``), and the authors' test-time graph
(``test_graph="authors"``) against an independent numpy transcription of
their ``utils.py`` / ``models.py`` formulas.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import zoo
from omicsdata.errors import FormatError, SchemaMismatchError
from omicsdata.synth_classify import read_mogonet_layout, write_mogonet_layout
from zoo.metrics import majority_accuracy

FAST = dict(hidden=(48, 48, 24), pretrain_epochs=60, max_epochs=150, random_state=0)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small full-batch graphs; threads only contend on a shared machine
    yield
    torch.set_num_threads(n)


def _cohort(tmp_path, shuffle=False, seed=3):
    folder = write_mogonet_layout(tmp_path / ("shuffled" if shuffle else "planted"), n_train=200, n_test=90,
                                  seed=seed, n_features=(60, 60, 40), shuffle_labels=shuffle)
    return read_mogonet_layout(folder, class_names=["control", "case"])



def _majority(mdata) -> float:
    return majority_accuracy(mdata.obs)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    mdata = _cohort(tmp_path_factory.mktemp("mog"))
    return mdata, zoo.create_model("mogonet", **FAST).fit(mdata, split="train")


def test_planted_signal_beats_majority_and_shuffled_labels_fall_to_chance(fitted, tmp_path):
    mdata, model = fitted
    res = model.evaluate(mdata, split="test")
    base = _majority(mdata)
    shuffled = _cohort(tmp_path, shuffle=True)
    res_s = zoo.MOGONET(**FAST).fit(shuffled).evaluate(shuffled, split="test")
    print(f"MOGONET planted: accuracy {res['accuracy']:.3f} (majority {base:.3f}); "
          f"shuffled: {res_s['accuracy']:.3f} (majority {_majority(shuffled):.3f})")
    assert res["accuracy"] >= base + 0.15
    assert res_s["accuracy"] <= _majority(shuffled) + 0.1
    for k in ("macro_f1", "auroc", "ece", "accuracy_cov50", "accuracy_cov80", "accuracy_cov100"):
        assert np.isfinite(res[k]), k
    assert res["accuracy_cov100"] == pytest.approx(res["accuracy"])
    assert set(model.predict(mdata, split="test")) <= {"control", "case"}


def test_one_call_and_sample_by_sample_give_the_same_answer(fitted):
    mdata, model = fitted
    together = model.predict_proba(mdata, split="test")
    model.batch_size = 1  # every test sample joins the graph alone
    try:
        alone = model.predict_proba(mdata, split="test")
    finally:
        model.batch_size = FAST.get("batch_size", 4096)
    np.testing.assert_allclose(alone, together, atol=1e-5)
    assert (alone.argmax(1) == together.argmax(1)).all()


def test_mc_dropout_std(fitted):
    mdata, model = fitted
    p, s = model.predict_proba(mdata, split="test", return_std=True, mc_samples=10)
    assert p.shape == s.shape == (int((mdata.obs["split"] == "test").sum()), 2)
    assert (s >= 0).all() and s.max() > 0
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-5)


def test_save_load_round_trip(fitted, tmp_path):
    mdata, model = fitted
    path = model.save_pretrained(tmp_path / "ckpt")
    back = zoo.Estimator.from_pretrained(path)
    assert type(back).__name__ == "MOGONET"
    np.testing.assert_allclose(back.predict_proba(mdata, split="test"), model.predict_proba(mdata, split="test"),
                               atol=1e-6)
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    n_train = int((mdata.obs["split"] == "train").sum())
    assert tensors["graph.x_0"].shape == (n_train, mdata["mrna"].n_vars)
    assert {"encoders.0.gc1.weight", "heads.2.clf.0.weight", "vcdn.model.0.weight", "vcdn.model.2.bias"} <= set(tensors)
    card = (tmp_path / "ckpt" / "README.md").read_text()
    assert f"features of the {n_train} training samples" in card


def _authors_reference(params, xs_tr, xs_new, thresholds):
    """The authors' test-time forward pass (their gen_test_adj_mat_tensor, GCN_E, Classifier_1, VCDN), in numpy."""
    def cos_dist(a, b):
        na, nb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
        return 1 - a @ b.T / np.maximum(na * nb.T, 1e-8)

    def leaky(x):
        return np.where(x > 0, x, 0.25 * x)

    sig = []
    for v, (xt, xn) in enumerate(zip(xs_tr, xs_new)):
        n, b = len(xt), len(xn)
        adj = np.zeros((n + b, n + b))
        d = cos_dist(xt, xn)
        adj[:n, n:] = (1 - d) * (d <= thresholds[v])
        d2 = cos_dist(xn, xt)
        adj[n:, :n] = (1 - d2) * (d2 <= thresholds[v])
        adj = np.maximum(adj, adj.T) + np.eye(n + b)
        adj = adj / np.abs(adj).sum(1, keepdims=True)
        h = np.concatenate([xt, xn])
        for i in (1, 2, 3):
            h = leaky(adj @ (h @ params[f"E{v + 1}"][f"gc{i}.weight"]) + params[f"E{v + 1}"][f"gc{i}.bias"])
        c = params[f"C{v + 1}"]
        sig.append(1 / (1 + np.exp(-(h[n:] @ c["clf.0.weight"].T + c["clf.0.bias"]))))
    x = sig[0]
    for s in sig[1:]:
        x = (x[:, :, None] * s[:, None, :]).reshape(len(x), -1)
    vc = params["C"]
    z = leaky(x @ vc["model.0.weight"].T + vc["model.0.bias"]) @ vc["model.2.weight"].T + vc["model.2.bias"]
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def test_authors_key_layout_maps_and_authors_test_graph_matches_their_formulas(fitted):
    mdata, _ = fitted
    rng = np.random.default_rng(0)
    C, V, h, hv = 2, 3, (20, 16, 8), 8
    dims = [mdata[m].n_vars for m in ("mrna", "methylation", "mirna")]
    params = {}  # the authors' files: E<v>.pth / C<v>.pth / C.pth with their key names and shapes
    for v, p in enumerate(dims, start=1):
        ins = (p,) + h[:2]
        params[f"E{v}"] = {f"gc{i}.{k}": rng.normal(0, 0.3, (ins[i - 1], h[i - 1]) if k == "weight" else h[i - 1])
                           for i in (1, 2, 3) for k in ("weight", "bias")}
        params[f"C{v}"] = {"clf.0.weight": rng.normal(0, 0.5, (C, h[2])), "clf.0.bias": rng.normal(0, 0.1, C)}
    params["C"] = {"model.0.weight": rng.normal(0, 0.5, (hv, C ** V)), "model.0.bias": rng.normal(0, 0.1, hv),
                   "model.2.weight": rng.normal(0, 0.5, (C, hv)), "model.2.bias": rng.normal(0, 0.1, C)}
    state = {f"encoders.{v - 1}.{k}": torch.tensor(t) for v in (1, 2, 3) for k, t in params[f"E{v}"].items()}
    state |= {f"heads.{v - 1}.{k}": torch.tensor(t) for v in (1, 2, 3) for k, t in params[f"C{v}"].items()}
    state |= {f"vcdn.{k}": torch.tensor(t) for k, t in params["C"].items()}
    tr = (mdata.obs["split"] == "train").to_numpy()
    te = (mdata.obs["split"] == "test").to_numpy()
    feats = {m: mdata[m].to_df()[tr] for m in ("mrna", "methylation", "mirna")}
    est = zoo.MOGONET.from_weights(state, feats, ["control", "case"], adj_parameter=2, test_graph="authors")
    ours = est.predict_proba(mdata, split="test")
    thr = est.module_.graph.threshold.numpy().astype(np.float64)
    ref = _authors_reference(params, [f.to_numpy().astype(np.float64) for f in feats.values()],
                             [mdata[m].X[te].astype(np.float64) for m in feats], thr)
    diff = float(np.abs(ours - ref).max())
    print(f"authors' test graph: max |ours - numpy transcription| = {diff:.2e}")
    assert diff < 1e-4
    # the threshold is the authors' adaptive parameter: position adj_parameter * n of the sorted distances
    x0 = feats["mrna"].to_numpy().astype(np.float64)
    nrm = np.linalg.norm(x0, axis=1, keepdims=True)
    d = np.sort((1 - x0 @ x0.T / (nrm * nrm.T)).ravel())
    assert thr[0] == pytest.approx(d[2 * len(x0)], abs=1e-5)


def test_honest_errors(fitted, tmp_path):
    mdata, model = fitted
    with pytest.raises(SchemaMismatchError, match="sample_weighting"):
        zoo.MOGONET(**dict(FAST, max_epochs=1, pretrain_epochs=1), sample_weighting="odd").fit(mdata)
    with pytest.raises(SchemaMismatchError, match="modality 'protein'"):
        zoo.MOGONET(modalities=["mrna", "protein"], **FAST).fit(mdata)
    bad = write_mogonet_layout(tmp_path / "bad", n_train=20, n_test=10, n_features=(5, 5, 5))
    (bad / "labels_te.csv").write_text("0.5\n" * 10)
    with pytest.raises(FormatError, match="labels_te.csv"):
        read_mogonet_layout(bad)
    (bad / "2_tr.csv").unlink()
    with pytest.raises(FormatError, match="2_tr.csv"):
        read_mogonet_layout(bad)
    with pytest.raises(SchemaMismatchError, match="missing"):
        zoo.MOGONET.from_weights({"heads.0.clf.0.weight": torch.zeros(2, 3)}, {"mrna": np.zeros((4, 3))}, ["a", "b"])
    assert json.loads(json.dumps(model.get_params()))["adj_parameter"] == 2
