"""omnicell-tosg builder: published layout -> store (from a Hub look-alike and a local folder)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tosg_layout import make_release, serve_release

import omicsdata as od
from omicsdata import graph
from omicsdata.errors import BuildError, FormatError

REPO = "FuhaiLiAiLab/OmniCellTOSG_Dataset"


@pytest.fixture
def release(tmp_path):
    folder = tmp_path / "release"
    truth = make_release(folder, n_donors=24, cells_per_donor=5, rows_per_shard=40)
    return folder, truth


def test_hub_build_reads_only_needed_shards(hub_server, release):
    folder, truth = release
    serve_release(hub_server, folder, REPO)
    path = od.build("omnicell-tosg", tissue="brain", sample_size=None)
    mdata = od.load(path)
    man = mdata.uns["omicsdata"]
    rep, src = man["extra"]["report"], man["extra"]["source"]
    meta = truth["meta"]
    brain = meta[meta["tissue_general"] == "brain"]
    assert mdata.n_obs == len(brain) == rep["cells_kept"]
    assert set(mdata.obs["organ"].astype(str)) == {"brain"}
    # only the brain shards were downloaded, never the lung ones
    got = [p for _, p in hub_server.requested("GET") if "expression_matrix/" in p]
    assert got and all("brain" in p for p in got)
    assert rep["shards_read"] < rep["shards_in_source"]
    assert src["commit"] == hub_server.commit_sha("dataset", REPO)  # the build records what it read
    # values: each stored row equals the published shard row, zero-padded to all entities
    X = np.asarray(mdata.mod["expression"].X[:].compute() if hasattr(mdata.mod["expression"].X, "compute")
                   else mdata.mod["expression"].X)
    X = X.toarray() if hasattr(X, "toarray") else X
    for i in [0, 7, len(brain) - 1]:
        f, r = mdata.obs["matrix_file_path"].iloc[i], int(mdata.obs["matrix_row_idx"].iloc[i])
        row = np.load(folder / "expression_matrix" / f)[r]
        np.testing.assert_array_equal(X[i, :len(row)], row)
        assert not X[i, len(row):].any()
    assert rep["zero_padded_columns"] == truth["n_entities"] - truth["n_transcripts"]


def test_store_layout_topology_text_labels_splits(release):
    folder, truth = release
    path = od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    mdata = od.load(path)
    # topology stored once, with per-edge kinds
    topo = graph.read_topology(mdata)
    assert topo.num_nodes == truth["n_entities"] == mdata.mod["expression"].n_vars
    stored = {tuple(e) for e in topo.edge_index.T}
    assert stored == {tuple(e) for e in truth["edge_index"].T}
    ppi = graph.read_topology(mdata, kinds=["ppi"])
    assert {tuple(e) for e in ppi.edge_index.T} == {tuple(e) for e in truth["ppi"].T}
    internal = graph.read_topology(mdata, kinds=["internal"])
    assert {tuple(e) for e in internal.edge_index.T} == {tuple(e) for e in truth["internal"].T}
    zkeys = [k for k in man_files(mdata) if "/uns/graph/edge_index" in k]
    assert len([k for k in zkeys if k.endswith("zarr.json")]) == 1  # one array, not one per cell
    # node text in Parquet, in node order
    text = graph.read_node_text(mdata)
    assert list(text["entity_id"]) == truth["ids"]
    assert set(text.columns) >= {"name", "description", "biology"}
    assert any(k.startswith("tables/nodes/") and k.endswith(".parquet") for k in man_files(mdata))
    # labels under their canonical names, donor-wise splits
    for lab in ("cell_type", "disease", "sex", "age_group", "organ"):
        assert lab in mdata.obs
    by_donor = mdata.obs.groupby("donor_id", observed=True)["split"].nunique()
    assert (by_donor == 1).all()
    assert set(mdata.obs["split"].astype(str)) == {"train", "val", "test"}
    assert od.verify(path)["checked"] > 0


def man_files(mdata):
    return list(mdata.uns["omicsdata"]["files"])


def test_selection_sampling_and_storage(tmp_path, release):
    folder, truth = release
    path = od.build("omnicell-tosg", local_dir=str(folder), disease=["Alzheimer disease"], sex="FEMALE",
                    sample_size=10, seed=3, storage="csr")
    m = od.load(path)
    assert m.n_obs == 10
    assert set(m.obs["disease"].astype(str)) == {"Alzheimer disease"} and set(m.obs["sex"].astype(str)) == {"female"}
    assert m.uns["omicsdata"]["modalities"]["expression"]["storage"] == "csr"
    path2 = od.build("omnicell-tosg", local_dir=str(folder), sample_ratio=0.5, seed=1, storage="dense", force=True)
    m2 = od.load(path2)
    assert m2.n_obs == round(len(truth["meta"]) * 0.5)
    assert m2.uns["omicsdata"]["modalities"]["expression"]["storage"] == "dense"


def test_auto_storage_is_measured():
    from omicsdata.datasets.omnicell_tosg.builder import choose_storage

    rng = np.random.default_rng(0)
    sparse = np.zeros((128, 50_000), np.float32)  # ~0.3% non-zero, like single-cell counts
    sparse[rng.integers(0, 128, 20_000), rng.integers(0, 50_000, 20_000)] = rng.poisson(2, 20_000) + 1
    dense = rng.random((64, 400)).astype(np.float32)
    a, b = choose_storage(sparse), choose_storage(dense)
    assert a["choice"] == "csr" and a["csr_bytes"] < a["dense_bytes"]
    assert b["choice"] == "dense" and b["dense_bytes"] <= b["csr_bytes"]


def test_csv_metadata(tmp_path):
    folder = tmp_path / "rel"
    make_release(folder, n_donors=8, cells_per_donor=3, metadata_format="csv")
    m = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None))
    assert m.n_obs == 24


def test_bad_inputs_name_the_file_and_leave_no_store(tmp_path, release):
    folder, truth = release
    with pytest.raises(BuildError, match="tissue_general.*liver|liver"):
        od.build("omnicell-tosg", local_dir=str(folder), tissue="liver")
    with pytest.raises(BuildError, match="not both"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=3, sample_ratio=0.5)
    # a row index past the end of its shard
    meta = pd.read_parquet(folder / "cell_metadata_with_mappings.parquet")
    meta.loc[0, "matrix_row_idx"] = 10_000
    meta.to_parquet(folder / "cell_metadata_with_mappings.parquet", index=False)
    with pytest.raises(FormatError, match=r"expression_matrix/.*row 10000"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    # a missing column
    meta.drop(columns=["matrix_row_idx"]).to_parquet(folder / "cell_metadata_with_mappings.parquet", index=False)
    with pytest.raises(FormatError, match="cell_metadata_with_mappings.parquet.*matrix_row_idx"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    # an edge pointing outside the entity list
    meta.loc[0, "matrix_row_idx"] = 0
    make_release(folder, n_donors=6, cells_per_donor=2)
    np.save(folder / "edge_index.npy", np.array([[0, 1], [1, 10_000]]))
    with pytest.raises(FormatError, match="edge_index.npy.*outside"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    assert not od.api.store_path("omnicell-tosg").exists()
