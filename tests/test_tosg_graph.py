"""omicsdata.graph: shared-topology batches, PyG compatibility, subsetting, topology encoding."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import home_at
from tosg_layout import make_release

import omicsdata as od
from omicsdata import graph
from omicsdata.errors import FormatError, SchemaMismatchError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with home_at(tmp_path_factory.mktemp("home")) as home:
        folder = home / "rel"
        truth = make_release(folder, n_donors=12, cells_per_donor=4, n_transcripts=60, n_proteins=30, module=8)
        path = od.build("omnicell-tosg", local_dir=str(folder), sample_size=None, storage="csr")
        dense = od.build("omnicell-tosg", local_dir=str(folder), sample_size=None, storage="dense", version="dense")
    return path, dense, truth


def test_batches_share_one_edge_index_and_match_the_store(store):
    path, dense_path, truth = store
    for p in (path, dense_path):
        m = od.load(p)
        ds = graph.CellGraphDataset(m, split=None, label="disease", transform=None)
        batches = list(ds.loader(batch_size=16, shuffle=True, seed=0))
        assert sum(b.num_graphs for b in batches) == len(ds) == m.n_obs
        assert all(b.edge_index is ds.edge_index for b in batches)  # one tensor, never copied
        b = batches[0]
        assert b.x.shape == (16, truth["n_entities"], 1)
        full = od.load(p, lazy=False).mod["expression"].X
        full = full.toarray() if hasattr(full, "toarray") else np.asarray(full)
        np.testing.assert_array_equal(b.x[..., 0].numpy(), full[b.index.numpy()])
        codes = {c: i for i, c in enumerate(ds.classes_)}
        assert b.y.tolist() == [codes[str(v)] for v in m.obs["disease"].iloc[b.index.numpy()]]
    # seeded shuffle is reproducible; every cell once per epoch
    a = torch.cat([b.index for b in ds.loader(batch_size=7, shuffle=True, seed=3)])
    c = torch.cat([b.index for b in ds.loader(batch_size=7, shuffle=True, seed=3)])
    assert torch.equal(a, c) and sorted(a.tolist()) == list(range(m.n_obs))


def test_static_layout_equals_pyg_disjoint_batch(store):
    from torch_geometric.data import Batch, Data
    from torch_geometric.nn import GCNConv, global_mean_pool

    path, _, _ = store
    ds = graph.CellGraphDataset(od.load(path), split="train")
    b = ds[list(range(5))]
    conv = GCNConv(1, 4)
    static = conv(b.x, b.edge_index).mean(1)  # [B, N, C] with one edge_index
    naive = Batch.from_data_list([Data(x=b.x[i], edge_index=b.edge_index) for i in range(5)])
    ref = global_mean_pool(conv(naive.x, naive.edge_index), naive.batch)
    torch.testing.assert_close(static, ref, rtol=1e-5, atol=1e-5)
    pyg = b.to_pyg()  # on-the-fly offset layout for layers without static-graph support
    assert torch.equal(pyg.edge_index, naive.edge_index) and torch.equal(pyg.batch, naive.batch)
    assert pyg.num_graphs == 5


def test_subsetting_gene_list_pathway_topk_and_induced_subgraph(store):
    path, _, truth = store
    m = od.load(path)
    by_name = graph.select_nodes(m, genes=["GENE3", "gene1", "BMGC_PT000002"])
    assert by_name.tolist() == [1, 3, 60 + 2]
    with pytest.warns(UserWarning, match="not entities"):
        graph.select_nodes(m, genes=["GENE3", "NOPE"])
    with pytest.raises(SchemaMismatchError):
        graph.select_nodes(m, genes=["NOPE"])
    wnt = graph.select_nodes(m, pathway="wnt signaling")
    assert wnt.tolist() == list(range(8))  # the module's descriptions mention it
    top = graph.select_nodes(m, top_k=10)
    assert len(top) == 10 and top.max() < truth["n_transcripts"]  # padded protein columns never vary
    wider = graph.select_nodes(m, genes=["GENE0"], hops=1)
    assert set(wider.tolist()) == {0, 1, 60}  # chain neighbour and its protein
    # induced subgraph: exactly the stored edges with both ends kept, relabelled
    topo = graph.read_topology(m)
    keep = np.array([60 + 5, 0, 1, 2, 60])
    sub = topo.subgraph(keep)
    want = {(int(np.flatnonzero(keep == s)[0]), int(np.flatnonzero(keep == t)[0]))
            for s, t in topo.edge_index.T if s in keep and t in keep}
    assert {tuple(e) for e in sub.edge_index.T} == want and sub.num_nodes == 5
    assert sub.node_index.tolist() == keep.tolist()
    ds = graph.CellGraphDataset(m, nodes=keep)
    b = ds[[0, 1]]
    assert b.x.shape == (2, 5, 1) and torch.equal(b.edge_index, torch.from_numpy(sub.edge_index))


def test_encode_topology_stores_each_edge_once():
    ei = np.array([[0, 1, 2], [1, 2, 0]])
    enc = graph.encode_topology(ei, 4, {"internal": np.array([[0], [1]]), "ppi": np.array([[1, 3], [2, 0]])})
    pairs = {tuple(e): t for e, t in zip(enc["edge_index"].T, enc["edge_type"])}
    assert pairs == {(0, 1): 1, (1, 2): 2, (2, 0): 0, (3, 0): 2}  # (3,0) only in ppi: appended once
    with pytest.raises(FormatError, match="outside"):
        graph.encode_topology(np.array([[0], [9]]), 4)
    with pytest.raises(FormatError, match=r"\[2, E\]"):
        graph.encode_topology(np.zeros((3, 2), int), 4)
