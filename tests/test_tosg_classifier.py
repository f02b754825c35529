"""End to end: Hub look-alike -> builder -> store -> shared-topology batches -> zoo.TOSGClassifier.

The release is written by the test with a planted signal (disease donors
over-express a connected module). The classifier must beat the majority
class on held-out donors; with the disease labels shuffled across donors it
must not.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tosg_layout import make_release, serve_release

import omicsdata as od
import zoo

REPO = "FuhaiLiAiLab/OmniCellTOSG_Dataset"
SMALL = dict(n_donors=80, cells_per_donor=6, n_transcripts=80, n_proteins=40, module=10, signal=3.0, rows_per_shard=80)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the model is tiny; threads only contend on a shared machine
    yield
    torch.set_num_threads(n)


def _held_out(mdata, clf):
    obs = mdata.obs
    test, train = obs[obs["split"] == "test"], obs[obs["split"] == "train"]
    majority = train["disease"].astype(str).value_counts().idxmax()
    base = float((test["disease"].astype(str) == majority).mean())
    return clf.score(mdata, split="test"), base, len(test), test["donor_id"].nunique()


def _fit(mdata, **kw):
    return zoo.TOSGClassifier(label_col="disease", hidden=16, max_epochs=12, patience=12, random_state=0,
                              **kw).fit(mdata)


def test_planted_signal_beats_majority_on_held_out_donors(hub_server, tmp_path):
    folder = tmp_path / "rel"
    make_release(folder, seed=1, **SMALL)
    serve_release(hub_server, folder, REPO)
    mdata = od.load(od.build("omnicell-tosg", sample_size=None))
    tr = set(mdata.obs.loc[mdata.obs["split"] == "train", "donor_id"])
    te = set(mdata.obs.loc[mdata.obs["split"] == "test", "donor_id"])
    assert not tr & te
    clf = _fit(mdata)
    acc, base, n, donors = _held_out(mdata, clf)
    print(f"planted: held-out accuracy {acc:.3f} vs majority {base:.3f} ({n} cells, {donors} donors)")
    assert acc >= base + 0.2
    # predictions are labels from the classes seen in training
    pred = clf.predict(mdata, split="test")
    assert set(pred) <= {"normal", "Alzheimer disease"}
    # explanations through torch_geometric.explain: one importance per node and per edge
    ex = clf.explain(mdata, split="test", n_cells=2, epochs=40)
    n_nodes = mdata.mod["expression"].n_vars
    assert len(ex["nodes"]) == n_nodes and len(ex["edges"]) == len(clf.module_.edge_index[0])
    assert np.isfinite(ex["nodes"]["importance"]).all() and np.isfinite(ex["edges"]["importance"]).all()
    assert ex["explanations"][0].node_mask.shape[0] == n_nodes
    # checkpoint round trip keeps the graph and the predictions
    clf.save_pretrained(tmp_path / "ckpt")
    again = zoo.TOSGClassifier.from_pretrained(tmp_path / "ckpt")
    np.testing.assert_allclose(again.predict_proba(mdata, split="test"), clf.predict_proba(mdata, split="test"),
                               rtol=1e-5, atol=1e-6)


def test_shuffled_labels_do_not_beat_majority(tmp_path):
    folder = tmp_path / "rel"
    make_release(folder, seed=1, shuffle_labels=True, **SMALL)
    mdata = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None))
    clf = _fit(mdata)
    acc, base, n, donors = _held_out(mdata, clf)
    print(f"shuffled: held-out accuracy {acc:.3f} vs majority {base:.3f} ({n} cells, {donors} donors)")
    assert acc < base + 0.1


def test_gat_and_subsetting(tmp_path):
    folder = tmp_path / "rel"
    make_release(folder, seed=1, **SMALL)
    mdata = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None))
    clf = zoo.TOSGClassifier(label_col="sex", conv="gat", hidden=8, heads=2, top_k=30, hops=1, max_epochs=2,
                             random_state=0).fit(mdata)
    nodes = clf.schema_["graph"]["nodes"]
    assert 30 <= len(nodes) < mdata.mod["expression"].n_vars
    assert 0.0 <= clf.score(mdata, split="test") <= 1.0
    assert "tosg" in zoo.list_models()
