"""omnicell-tosg builder: published layout -> store (from a Hub look-alike by range reads, and a local folder)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tosg_layout import make_release, serve_release

import omicsdata as od
from omicsdata import graph
from omicsdata.datasets.omnicell_tosg.authors import authors_split
from omicsdata.errors import BuildError, FormatError

REPO = "FuhaiLiAiLab/OmniCellTOSG_Dataset"


@pytest.fixture
def release(tmp_path):
    folder = tmp_path / "release"
    truth = make_release(folder, n_donors=24, cells_per_donor=5, rows_per_shard=40, pretrain_studies=("study-4",))
    return folder, truth


def _dense(mdata):
    X = mdata.mod["expression"].X
    X = X[:].compute() if hasattr(X, "compute") else X
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def _authors_norm(row):  # written from their l1_normalize_log1p: total 1e4 per cell, then log1p
    row = row.astype(np.float64)
    return np.log1p(row * 1e4 / max(row.sum(), 1e-12)).astype(np.float32)


def _kept(meta):
    return meta[~meta["is_pretrain_data"].astype(bool)]


def test_hub_build_reads_only_the_rows_by_range(hub_server, release):
    folder, truth = release
    serve_release(hub_server, folder, REPO)
    path = od.build("omnicell-tosg", tissue="brain", sample_size=None)
    mdata = od.load(path)
    man = mdata.uns["omicsdata"]
    rep, src = man["extra"]["report"], man["extra"]["source"]
    brain = _kept(truth["meta"][truth["meta"]["tissue_general"] == "brain"])
    assert mdata.n_obs == len(brain) == rep["cells_kept"]
    assert rep["pretrain_cells_excluded"] == int(truth["meta"].query("tissue_general == 'brain'")["is_pretrain_data"].sum()) > 0
    assert set(mdata.obs["organ"].astype(str)) == {"brain"}
    # no lung shard is touched; every shard GET is a Range request
    shard_reqs = [(i, p) for i, (m, p) in enumerate(hub_server.requests) if "expression_matrix/" in p and m == "GET"]
    assert shard_reqs and all("brain" in p for _, p in shard_reqs)
    assert all(hub_server.request_headers[i].get("range", "").startswith("bytes=") for i, _ in shard_reqs)
    assert rep["shards_read"] < rep["shards_in_source"]
    # bytes: the header probe of each shard read + exactly the selected rows
    expected, total = 0, 0
    for shard in sorted(brain["matrix_file_path"].unique()):
        f = folder / "expression_matrix" / shard
        arr = np.load(f, mmap_mode="r")
        n_sel = int((brain["matrix_file_path"] == shard).sum())
        expected += min(4096, f.stat().st_size) + n_sel * arr.shape[1] * arr.dtype.itemsize
        total += f.stat().st_size
    assert hub_server.bytes_sent("expression_matrix/") == rep["expression_read"]["bytes_fetched"] == expected
    assert rep["expression_read"]["shard_bytes"] == total
    assert src["commit"] == hub_server.commit_sha("dataset", REPO)  # the build records what it read
    assert {s["path"] for s in src["shards"]} == {f"expression_matrix/{s}" for s in brain["matrix_file_path"].unique()}
    assert all(s["etag"] and s["commit"] == src["commit"] for s in src["shards"])
    # values: the authors' normalisation of the published row, zero-padded to all entities
    X = _dense(mdata)
    for i in [0, 7, len(brain) - 1]:
        f, r = mdata.obs["matrix_file_path"].iloc[i], int(mdata.obs["matrix_row_idx"].iloc[i])
        row = np.load(folder / "expression_matrix" / f)[r]
        np.testing.assert_allclose(X[i, :len(row)], _authors_norm(row), rtol=1e-6)
        assert not X[i, len(row):].any()
    assert rep["zero_padded_columns"] == truth["n_entities"] - truth["n_transcripts"]
    assert rep["normalization"]["method"] == "log1p_cp10k"
    # a rebuild reads no shard byte twice (row cache), and stores the values as published with normalize="none"
    before = hub_server.bytes_sent("expression_matrix/")
    m2 = od.load(od.build("omnicell-tosg", tissue="brain", sample_size=None, normalize="none", force=True))
    assert hub_server.bytes_sent("expression_matrix/") == before
    assert m2.uns["omicsdata"]["extra"]["report"]["expression_read"]["rows_from_cache"] == len(brain)
    X2 = _dense(m2)
    f, r = m2.obs["matrix_file_path"].iloc[3], int(m2.obs["matrix_row_idx"].iloc[3])
    row = np.load(folder / "expression_matrix" / f)[r]
    np.testing.assert_array_equal(X2[3, :len(row)], row)


def test_labels_are_the_harmonised_columns_raw_kept_as_raw(release):
    folder, truth = release
    m = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None))
    obs = m.obs
    meta = truth["meta"].assign(cell=lambda d: d["matrix_file_path"] + ":" + d["matrix_row_idx"].astype(str))
    meta = meta.set_index("cell").loc[obs.index]
    for lab, harmonised, raw in [("cell_type", "CMT_name", "cell_type"), ("disease", "disease_BMG_name", "disease"),
                                 ("sex", "sex_normalized", "sex"), ("age_group", "development_stage_category", None)]:
        assert list(obs[lab].astype(str)) == list(meta[harmonised].astype(str)), lab
        if raw:
            assert list(obs[f"raw_{raw}"].astype(str)) == list(meta[raw].astype(str))
            assert (obs[f"raw_{raw}"].astype(str) != obs[lab].astype(str)).any()  # the fixture makes them differ
    assert list(obs["raw_development_stage"].astype(str)) == list(meta["development_stage"].astype(str))
    # conditions match the harmonised values, not the raw ones
    ad = od.load(od.build("omnicell-tosg", local_dir=str(folder), disease="Alzheimer disease", sample_size=None,
                          force=True))
    assert set(ad.obs["disease"].astype(str)) == {"Alzheimer disease"}
    with pytest.raises(BuildError, match="disease_BMG_name"):
        od.build("omnicell-tosg", local_dir=str(folder), disease="dementia || Alzheimer's disease", force=True)
    raw = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None, force=True,
                           conditions={"raw_disease": "dementia || Alzheimer's disease"}))
    assert raw.n_obs == ad.n_obs


def test_authors_split_rule():
    # sizes 1, 2, 3, 10 (n=16): test takes donors while within floor(0.2 n) = 3 -> a, b
    keys = pd.Series(["a"] + ["b"] * 2 + ["c"] * 3 + ["d"] * 10)
    assert set(keys[authors_split(keys) == "test"]) == {"a", "b"}
    # sizes 2, 5, 9: a alone (2 < 3); adding b would pass floor(0.4 n) = 6 -> a only
    keys = pd.Series(["a"] * 2 + ["b"] * 5 + ["c"] * 9)
    assert set(keys[authors_split(keys) == "test"]) == {"a"}
    # sizes 2, 3, 11: a (2 < 3), then b would pass 3 but stays within the cap 6 -> a, b
    keys = pd.Series(["a"] * 2 + ["b"] * 3 + ["c"] * 11)
    assert set(keys[authors_split(keys) == "test"]) == {"a", "b"}
    with pytest.raises(BuildError, match="at least 2 donors"):
        authors_split(pd.Series(["a"] * 4))


def test_default_split_is_the_authors_and_ours_is_an_option(release):
    folder, truth = release
    m = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None))
    obs = m.obs
    assert set(obs["split"].astype(str)) == {"train", "test"}
    assert (obs.groupby("donor_key", observed=True)["split"].nunique() == 1).all()
    assert set(obs["donor_key"].astype(str)) == set(obs["dataset_id"].astype(str) + "||" + obs["donor_id"].astype(str))
    n, n_test = len(obs), int((obs["split"] == "test").sum())
    assert 0 < n_test <= math.floor(0.4 * n)
    assert not obs["is_pretrain_data"].astype(str).isin(["True", "true"]).any()
    assert m.uns["omicsdata"]["extra"]["report"]["split"]["method"] == "authors"
    ours = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None, split="donor",
                            exclude_pretrain=False, force=True))
    assert ours.n_obs == len(truth["meta"])
    assert set(ours.obs["split"].astype(str)) == {"train", "val", "test"}
    assert (ours.obs.groupby("donor_key", observed=True)["split"].nunique() == 1).all()
    with pytest.raises(BuildError, match="split must be"):
        od.build("omnicell-tosg", local_dir=str(folder), split="random", force=True)


def test_store_layout_topology_text(release):
    folder, truth = release
    path = od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    mdata = od.load(path)
    topo = graph.read_topology(mdata)
    assert topo.num_nodes == truth["n_entities"] == mdata.mod["expression"].n_vars
    assert {tuple(e) for e in topo.edge_index.T} == {tuple(e) for e in truth["edge_index"].T}
    ppi = graph.read_topology(mdata, kinds=["ppi"])
    assert {tuple(e) for e in ppi.edge_index.T} == {tuple(e) for e in truth["ppi"].T}
    internal = graph.read_topology(mdata, kinds=["internal"])
    assert {tuple(e) for e in internal.edge_index.T} == {tuple(e) for e in truth["internal"].T}
    files = list(mdata.uns["omicsdata"]["files"])
    assert len([k for k in files if "/uns/graph/edge_index" in k and k.endswith("zarr.json")]) == 1
    # node text by header: Name, Description, Type + Sequence (Type is the column before Sequence)
    text = graph.read_node_text(mdata)
    bio = pd.read_csv(folder / "s_bio.csv")
    assert list(text["entity_id"]) == truth["ids"]
    assert list(text["name"]) == list(pd.read_csv(folder / "s_name.csv")["Name"])
    assert list(text["description"]) == list(pd.read_csv(folder / "s_desc.csv")["Description"])
    assert list(text["biology"]) == list(bio["Sequence"]) and list(text["biology_type"]) == list(bio["Type"])
    assert any(k.startswith("tables/nodes/") and k.endswith(".parquet") for k in files)
    assert od.verify(path)["checked"] > 0


def test_text_files_are_read_by_header(tmp_path):
    folder = tmp_path / "rel"
    make_release(folder, n_donors=10, cells_per_donor=2)
    bio = pd.read_csv(folder / "s_bio.csv")
    bio[["Sequence", "Type", "BioMedGraphica_Conn_ID"]].to_csv(folder / "s_bio.csv", index=False)  # reordered
    name = pd.read_csv(folder / "s_name.csv")
    name[["Name"]].to_csv(folder / "s_name.csv", index=False)  # no id column: ids are row numbers
    text = graph.read_node_text(od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)))
    assert list(text["biology"]) == list(bio["Sequence"]) and list(text["name"]) == list(name["Name"])
    assert text["entity_id"].iloc[3] == "entity_3"
    bio.rename(columns={"Sequence": "Seq"}).to_csv(folder / "s_bio.csv", index=False)
    with pytest.raises(FormatError, match=r"s_bio.csv.*'Sequence'.*has: BioMedGraphica_Conn_ID, Type, Seq"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None, force=True)


def test_selection_sampling_and_storage(release):
    folder, truth = release
    path = od.build("omnicell-tosg", local_dir=str(folder), disease=["Alzheimer disease"], sex="FEMALE",
                    sample_size=10, seed=3, storage="csr")
    m = od.load(path)
    assert m.n_obs == 10
    assert set(m.obs["disease"].astype(str)) == {"Alzheimer disease"} and set(m.obs["sex"].astype(str)) == {"female"}
    assert m.uns["omicsdata"]["modalities"]["expression"]["storage"] == "csr"
    m2 = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_ratio=0.5, seed=1, storage="dense", force=True))
    assert m2.n_obs == round(len(_kept(truth["meta"])) * 0.5)
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
    truth = make_release(folder, n_donors=8, cells_per_donor=3, metadata_format="csv", pretrain_studies=("study-4",))
    m = od.load(od.build("omnicell-tosg", local_dir=str(folder), sample_size=None))
    assert m.n_obs == len(_kept(truth["meta"]))


def test_bad_inputs_name_the_file_and_leave_no_store(release):
    folder, truth = release
    with pytest.raises(BuildError, match="tissue_general.*liver|liver"):
        od.build("omnicell-tosg", local_dir=str(folder), tissue="liver")
    with pytest.raises(BuildError, match="not both"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=3, sample_ratio=0.5)
    with pytest.raises(BuildError, match="normalize must be"):
        od.build("omnicell-tosg", local_dir=str(folder), normalize="zscore")
    meta = pd.read_parquet(folder / "cell_metadata_with_mappings.parquet")
    keep = meta.copy()
    first = int(np.flatnonzero(~meta["is_pretrain_data"].to_numpy())[0])
    meta.loc[first, "matrix_row_idx"] = 10_000
    meta.to_parquet(folder / "cell_metadata_with_mappings.parquet", index=False)
    with pytest.raises(FormatError, match=r"expression_matrix/.*row 10000"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    meta.drop(columns=["matrix_row_idx"]).to_parquet(folder / "cell_metadata_with_mappings.parquet", index=False)
    with pytest.raises(FormatError, match="cell_metadata_with_mappings.parquet.*matrix_row_idx"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    # negative values cannot be normalised as abundances: the error names the shard
    keep.to_parquet(folder / "cell_metadata_with_mappings.parquet", index=False)
    shard = folder / "expression_matrix" / keep.loc[first, "matrix_file_path"]
    arr = np.load(shard)
    arr[keep.loc[first, "matrix_row_idx"], 0] = -1.0
    np.save(shard, arr)
    with pytest.raises(FormatError, match=r"expression_matrix/.*negative"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    # an edge pointing outside the entity list
    make_release(folder, n_donors=6, cells_per_donor=2)
    np.save(folder / "edge_index.npy", np.array([[0, 1], [1, 10_000]]))
    with pytest.raises(FormatError, match="edge_index.npy.*outside"):
        od.build("omnicell-tosg", local_dir=str(folder), sample_size=None)
    assert not od.api.store_path("omnicell-tosg").exists()
