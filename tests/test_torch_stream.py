"""od.torch.stream / MultiOmicsDataset: exact-once, contents, workers, sparse, missing modalities, remote."""
from __future__ import annotations

import functools
import http.server
import threading

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import omicsdata as od
from omicsdata.errors import OmicsDataError
from omicsdata.torch.stream import ShardStream


def _indices(s):
    return np.concatenate([b["index"].numpy() for b in s]) if len(s) else np.zeros(0, np.int64)


@pytest.fixture(scope="module")
def demo(demo_store):
    m = od.open_store(demo_store)
    return demo_store, m


def _split_rows(m, split):
    return np.flatnonzero(m.obs["split"].astype(str).to_numpy() == split)


def test_stream_serves_split_once_with_store_contents(demo):
    path, m = demo
    s = od.torch.stream(path, split="train", batch_size=32, seed=1, device="cpu",
                        targets=["os_time", "os_event", "cancer_type"])
    batches = list(s)
    assert len(batches) == len(s)
    idx = np.concatenate([b["index"].numpy() for b in batches])
    assert sorted(idx.tolist()) == _split_rows(m, "train").tolist()
    assert idx.tolist() != sorted(idx.tolist())  # shuffled
    b = batches[0]
    rows = b["index"].numpy()
    for mod in ("rna", "methylation", "protein"):
        assert b[mod].dtype == torch.float32
        np.testing.assert_array_equal(b[mod].numpy(), np.asarray(m.mod[mod].X[rows].compute()))
        np.testing.assert_array_equal(b[f"{mod}_mask"].numpy(), m.obs[f"has_{mod}"].to_numpy()[rows])
    np.testing.assert_array_equal(b["os_time"].numpy(), m.obs["os_time"].to_numpy()[rows])
    codes = m.obs["cancer_type"].cat.codes.to_numpy()[rows]
    np.testing.assert_array_equal(b["cancer_type"].numpy(), codes)
    assert s.target_classes["cancer_type"] == [str(c) for c in m.obs["cancer_type"].cat.categories]


def test_a_store_path_stream_reads_only_the_obs_columns_it_needs(demo):
    """The sample table of a store is never read whole (its index alone is n Python strings)."""
    from omicsdata import storage

    path, m = demo
    src = storage.open(path)
    s = od.torch.stream(src, split="test", batch_size=16, device="cpu", targets=["os_time", "cancer_type"])
    idx, times, codes = [], [], []
    for b in s:
        idx.append(b["index"].numpy())
        times.append(b["os_time"].numpy())
        codes.append(b["cancer_type"].numpy())
    assert src._obs is None and src._mudata is None  # split, has_<m> and the two targets: single columns
    idx = np.concatenate(idx)
    assert sorted(idx.tolist()) == _split_rows(m, "test").tolist()
    np.testing.assert_array_equal(np.concatenate(times), m.obs["os_time"].to_numpy()[idx])
    np.testing.assert_array_equal(np.concatenate(codes), m.obs["cancer_type"].cat.codes.to_numpy()[idx])
    assert src.n_obs == m.n_obs and src.obs_column_names() == [str(c) for c in m.obs.columns]
    with pytest.raises(OmicsDataError, match="no_such_column"):
        od.torch.stream(src, targets=["no_such_column"])


def test_sparse_modality_streams_as_csr_and_densifies(demo):
    path, m = demo
    s = od.torch.stream(m, split="val", batch_size=16, modalities=["mutation"], seed=0)
    b = next(iter(s))
    assert b["mutation"].layout == torch.sparse_csr
    ref = np.asarray(m.mod["mutation"].X[b["index"].numpy()].compute().todense())
    np.testing.assert_array_equal(b["mutation"].to_dense().numpy(), ref)
    s2 = od.torch.stream(m, split="val", batch_size=16, modalities=["mutation"], seed=0, densify=True, device="cpu")
    b2 = next(iter(s2))
    assert b2["mutation"].layout == torch.strided
    np.testing.assert_array_equal(b2["mutation"].numpy(), ref)


def test_epochs_reshuffle_and_seed_reproduces(demo):
    path, _ = demo
    s = od.torch.stream(path, split="train", batch_size=16, seed=5, modalities=["protein"])
    e0 = _indices(s)
    e1 = _indices(s)  # a new iteration is the next epoch
    assert not np.array_equal(e0, e1) and sorted(e0) == sorted(e1)
    s.set_epoch(0)  # an explicit epoch wins: the same seed and epoch reproduce the order
    assert np.array_equal(e0, _indices(s))
    assert np.array_equal(e1, _indices(s))
    u = od.torch.stream(path, split="train", batch_size=16, shuffle=False, modalities=["protein"])
    assert _indices(u).tolist() == sorted(e0.tolist())


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_dataloader_workers_exact_once(demo, ctx):
    path, m = demo
    s = od.torch.stream(path, split="train", batch_size=8, seed=2, num_workers=2, modalities=["rna", "mutation"],
                        multiprocessing_context=ctx, densify=["mutation"], buffer_size=40)
    batches = list(s)
    assert len(batches) == len(s)
    idx = np.concatenate([b["index"].numpy() for b in batches])
    assert sorted(idx.tolist()) == _split_rows(m, "train").tolist()
    b = batches[-1]
    np.testing.assert_array_equal(b["rna"].numpy(), np.asarray(m.mod["rna"].X[b["index"].numpy()].compute()))


def _toy(n, p=5, sparse_every=3):
    rng = np.random.default_rng(n)
    X = (np.arange(n)[:, None] * 10 + np.arange(p)[None]).astype(np.float32)
    S = sp.csr_matrix(np.where(rng.random((n, p)) < 0.3, X, 0).astype(np.float32))
    obs = pd.DataFrame({"split": np.where(np.arange(n) % sparse_every == 0, "test", "train"),
                        "y": np.arange(n, dtype=np.float32)}, index=[f"s{i}" for i in range(n)])
    mdata = md.MuData({"a": ad.AnnData(X, obs=obs[[]], var=pd.DataFrame(index=[f"a{j}" for j in range(p)])),
                       "b": ad.AnnData(S, obs=obs[[]], var=pd.DataFrame(index=[f"b{j}" for j in range(p)]))})
    mdata.obs = obs
    return mdata, X, S


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 120), block=st.integers(1, 25), batch=st.integers(2, 13), world=st.integers(1, 3),
       nw=st.integers(1, 3), epoch=st.integers(0, 3), buf=st.integers(1, 60), shuffle=st.booleans(),
       split=st.sampled_from(["train", "test", None]))
def test_exact_once_property(n, block, batch, world, nw, epoch, buf, shuffle, split):
    mdata, X, S = _toy(n)
    rows = np.arange(n) if split is None else np.flatnonzero(mdata.obs["split"].to_numpy() == split)
    if len(rows) == 0:
        return
    served, per_rank = [], []
    for r in range(world):
        ds = ShardStream(mdata, split=split, batch_size=batch, seed=7, shuffle=shuffle, block_rows=block,
                         buffer_size=buf, targets=["y"], rank=r, world_size=world)
        ds.set_epoch(epoch)
        if len(rows) < world:
            with pytest.raises(OmicsDataError):
                list(ds.iter_worker(0, nw))
            return
        nb = 0
        for w in range(nw):
            for b in ds.iter_worker(w, nw):
                i = b["index"].numpy()
                assert 1 <= len(i) <= batch
                np.testing.assert_array_equal(b["a"].numpy(), X[i])
                np.testing.assert_array_equal(b["y"].numpy(), i.astype(np.float32))
                np.testing.assert_array_equal(np.diff(b["b"]["crow"].numpy()), np.diff(S[i].indptr))
                served.extend(i.tolist())
                nb += 1
        per_rank.append(nb)
        assert nb == len(ds)
    assert sorted(served) == rows.tolist()
    assert len(set(per_rank)) == 1


def test_missing_modalities_are_zero_rows_with_mask():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"split": ["train"] * 30}, index=[f"p{i}" for i in range(30)])
    rna = ad.AnnData(rng.random((30, 4)).astype(np.float32), obs=obs[[]], var=pd.DataFrame(index=list("ABCD")))
    keep = [f"p{i}" for i in range(30) if i % 3]  # protein only for 20 patients, MuData never written
    prot = ad.AnnData(rng.random((20, 2)).astype(np.float32), obs=pd.DataFrame(index=keep))
    mdata = md.MuData({"rna": rna, "protein": prot})
    mdata.obs["split"] = "train"
    s = od.torch.stream(mdata, split="train", batch_size=7, seed=0)
    seen = 0
    for b in s:
        i = b["index"].numpy()
        mask = b["protein_mask"].numpy()
        np.testing.assert_array_equal(mask, (i % 3) != 0)
        assert (b["protein"].numpy()[~mask] == 0).all()
        names = mdata.obs_names[i[mask]]
        np.testing.assert_array_equal(b["protein"].numpy()[mask], prot[names].X)
        seen += len(i)
    assert seen == 30
    ds = od.torch.MultiOmicsDataset(mdata, split="train")
    assert not ds[0]["protein_mask"] and ds[1]["protein_mask"]


def test_anndata_in_memory_and_map_dataset(demo):
    path, m = demo
    a = ad.AnnData(np.arange(60, dtype=np.float32).reshape(20, 3),
                   obs=pd.DataFrame({"split": ["train"] * 20}, index=[str(i) for i in range(20)]))
    b = next(iter(od.torch.stream(a, batch_size=20, shuffle=False)))
    np.testing.assert_array_equal(b["X"].numpy(), a.X)
    assert b["X_mask"].all()
    ds = od.torch.MultiOmicsDataset(m, split="test", modalities=["rna", "mutation"], targets=["os_event"])
    dl = torch.utils.data.DataLoader(ds, batch_size=9, shuffle=True, collate_fn=od.torch.collate,
                                     generator=torch.Generator().manual_seed(0))
    got = []
    for bt in dl:
        i = bt["index"].numpy()
        np.testing.assert_array_equal(bt["mutation"].numpy(), np.asarray(m.mod["mutation"].X[i].compute().todense()))
        np.testing.assert_array_equal(bt["rna"].numpy(), np.asarray(m.mod["rna"].X[i].compute()))
        got.extend(i.tolist())
    assert sorted(got) == _split_rows(m, "test").tolist()
    one = ds[2]
    assert one["rna"].shape == (m.mod["rna"].n_vars,) and int(one["index"]) == _split_rows(m, "test")[2]


def test_bad_requests_name_what_is_wrong(demo):
    path, _ = demo
    with pytest.raises(OmicsDataError, match="split"):
        od.torch.stream(path, split="holdout")
    with pytest.raises(OmicsDataError, match="proteome"):
        od.torch.stream(path, modalities=["proteome"])
    with pytest.raises(OmicsDataError, match="survival"):
        od.torch.MultiOmicsDataset(path, targets=["survival"])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_remote_store_over_http(demo):
    path, m = demo
    handler = functools.partial(_Quiet, directory=str(path.parent))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/{path.name}"
        s = od.torch.stream(url, split="test", batch_size=16, seed=0, modalities=["rna", "mutation"], densify=True)
        batches = list(s)
    finally:
        srv.shutdown()
    idx = np.concatenate([b["index"].numpy() for b in batches])
    assert sorted(idx.tolist()) == _split_rows(m, "test").tolist()
    b = batches[0]
    i = b["index"].numpy()
    np.testing.assert_array_equal(b["rna"].numpy(), np.asarray(m.mod["rna"].X[i].compute()))
    np.testing.assert_array_equal(b["mutation"].numpy(), np.asarray(m.mod["mutation"].X[i].compute().todense()))
