"""zoo.CellGAT end to end: planted cell types -> Zarr store -> kNN graph, edge pretext, GAT -> held-out donors.

Counts come from :func:`omicsdata.synth_cells.make_cells` (planted marker genes
per cell type, donor batch effects, a rare type). The store is written with
``od.write_store`` and reopened, so node features are read from Zarr rows.
The model must beat the majority class by a wide margin on a held-out donor
and fall to chance when the labels are shuffled; predicting a set at once
equals predicting cell by cell; a checkpoint reloads to equal predictions.
"""
from __future__ import annotations

import json

import mudata as md
import numpy as np
import pytest
import torch

import omicsdata as od
import zoo
from omicsdata.errors import SchemaMismatchError
from omicsdata.synth_cells import make_cells

FAST = dict(n_pcs=10, k=10, hidden=16, heads=2, n_layers=2, num_neighbors=(5, 5), pretext_epochs=1, batch_size=128,
            max_epochs=5, patience=5, lr=1e-2, device="cpu", random_state=0)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small graphs; threads only contend on a shared machine
    yield
    torch.set_num_threads(n)


def _store(tmp_path_factory, shuffle: bool):
    adata = make_cells(n_cells=700, n_genes=120, n_types=4, n_donors=4, seed=7, n_rare=1, rare_weight=0.3,
                       shuffle_labels=shuffle)
    held_out = str(adata.obs["donor"].cat.categories[-1])
    adata.obs["split"] = np.where(adata.obs["donor"].astype(str) == held_out, "test", "train")
    mu = md.MuData({"rna": adata})
    for col in ("cell_type", "donor", "split"):
        mu.obs[col] = adata.obs[col].astype(str).to_numpy()
    path = tmp_path_factory.mktemp("shuffled" if shuffle else "planted") / "cells.zarr"
    od.write_store(mu, path)
    return od.open_store(path)


def _majority(mdata) -> float:
    obs = mdata.obs
    train = obs[obs["split"] == "train"]["cell_type"].astype(str)
    test = obs[obs["split"] == "test"]["cell_type"].astype(str)
    return float((test == train.value_counts().idxmax()).mean())


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    torch.set_num_threads(1)
    mdata = _store(tmp_path_factory, shuffle=False)
    return mdata, zoo.create_model("cell-gat", label_col="cell_type", **FAST).fit(mdata, split="train")


def test_learns_planted_cell_types_on_held_out_donor(planted, tmp_path):
    mdata, est = planted
    res = est.evaluate(mdata, split="test", plot=tmp_path / "confusion.png")
    base = _majority(mdata)
    assert res["accuracy"] > base + 0.6 * (1 - base), (res["accuracy"], base)
    assert res["macro_f1"] > 2.0 / len(est.classes_)
    assert {r["class"] for r in res["per_class"]} == set(est.classes_)
    assert sum(r["support"] for r in res["per_class"]) == res["n"] == int(np.sum(res["confusion"]))
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    g = est.schema_["cell_gat"]
    n_split = int((mdata.obs["split"] == "train").sum())
    assert g["n_train"] == n_split - max(1, round(n_split * est.val_fraction))  # the carved validation cells are out
    assert g["pretext_accuracy"] > max(g["pretext_positive_share"], 1 - g["pretext_positive_share"])


def test_shuffled_labels_stay_at_chance(planted, tmp_path_factory):
    mdata_real, est_real = planted
    mdata = _store(tmp_path_factory, shuffle=True)
    est = zoo.create_model("cell-gat", label_col="cell_type", **FAST).fit(mdata, split="train")
    res, real = est.evaluate(mdata, split="test"), est_real.metrics_.get("test") or est_real.evaluate(mdata_real, "test")
    assert res["accuracy"] < _majority(mdata) + 0.1
    assert res["macro_f1"] < real["macro_f1"] - 0.4


def test_predict_at_once_equals_cell_by_cell(planted):
    mdata, est = planted
    test_rows = np.flatnonzero(mdata.obs["split"].to_numpy() == "test")
    together = est.predict_proba(mdata, split="test")
    for j, r in enumerate(test_rows[:8]):
        single = mdata[[mdata.obs_names[r]]].copy()
        np.testing.assert_allclose(est.predict_proba(single, split=None)[0], together[j], atol=1e-5)


def test_embed_and_hook_point(planted):
    mdata, est = planted
    seen = []
    h = est.module_.embedding.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    try:
        emb = est.embed(mdata, split="test")
    finally:
        h.remove()
    n_test = int((mdata.obs["split"] == "test").sum())
    assert emb.shape == (n_test, est.hidden) and sum(seen) == n_test and np.isfinite(emb).all()


def test_checkpoint_round_trip(planted, tmp_path):
    mdata, est = planted
    path = est.save_pretrained(tmp_path / "ckpt")
    loaded = zoo.Estimator.from_pretrained(path)
    assert type(loaded).__name__ == "CellGAT"
    np.testing.assert_allclose(loaded.predict_proba(mdata, "test"), est.predict_proba(mdata, "test"), atol=1e-6)
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert tensors["index_z"].shape == (est.schema_["cell_gat"]["n_train"], est.schema_["cell_gat"]["n_pcs"])
    card = (tmp_path / "ckpt" / "README.md").read_text()
    assert "attach to their nearest training cells" in card
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "cell-gat"


def test_bad_parameters_are_named(planted):
    mdata, _ = planted
    with pytest.raises(SchemaMismatchError, match="num_neighbors"):
        zoo.create_model("cell-gat", label_col="cell_type", **dict(FAST, num_neighbors=(5,))).fit(mdata)
    with pytest.raises(SchemaMismatchError, match="multiple of heads"):
        zoo.create_model("cell-gat", label_col="cell_type", **dict(FAST, hidden=15)).fit(mdata)


def test_neighbour_sampler_respects_graph_and_fanout():
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader

    from zoo.models.cell_graph import TorchNeighborSampler, knn, knn_edges

    z = torch.randn(120, 4, generator=torch.Generator().manual_seed(0))
    nbr, _ = knn(z, z, 6, exclude_self=True, block=16)
    d = torch.cdist(z, z).fill_diagonal_(float("inf"))
    assert torch.equal(nbr, d.topk(6, largest=False).indices)
    data = Data(edge_index=knn_edges(nbr), num_nodes=120)
    loader = NeighborLoader(data, [3, 2], batch_size=10, input_nodes=torch.arange(40), shuffle=True,
                            neighbor_sampler=TorchNeighborSampler(data, [3, 2], seed=1))
    real = set(zip(data.edge_index[0].tolist(), data.edge_index[1].tolist()))
    for b in loader:
        src, dst = b.n_id[b.edge_index[0]].tolist(), b.n_id[b.edge_index[1]].tolist()
        assert all(e in real for e in zip(src, dst))
        assert torch.bincount(b.edge_index[1], minlength=b.batch_size)[:b.batch_size].tolist() == [3] * b.batch_size
