"""Streaming stores other tools wrote, in place (AnnData/MuData Zarr, annbatch collections); the chunk
decoder and the CSR gather the stream uses; the shuffle buffer's byte budget."""
from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import zarr

import omicsdata as od
from omicsdata import storage
from omicsdata.errors import OmicsDataError
from omicsdata.storage import CSRBlock
from omicsdata.storage.foreign import ForeignStoreError
from omicsdata.torch import gather

N, P = 300, 40


def _adata(seed=0, n=N, split=True):
    rng = np.random.default_rng(seed)
    dense = rng.poisson(1.0, size=(n, P)).astype(np.float32)
    csr = sp.random(n, P, density=0.1, format="csr", dtype=np.float32, random_state=seed)
    obs = pd.DataFrame({"split": np.where(np.arange(n) % 5 == 0, "test", "train")} if split else {},
                       index=[f"c{seed}_{i}" for i in range(n)])
    a = ad.AnnData(X=csr, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(P)]))
    a.layers["dense"] = dense
    a.obsm["pca"] = rng.normal(size=(n, 5)).astype(np.float32)
    return a


def _dense(x):
    if isinstance(x, torch.Tensor) and x.layout == torch.sparse_csr:
        return x.to_dense().numpy()
    return x.numpy()


def _collect(s, mods):
    idx, vals = [], {m: [] for m in mods}
    for b in s:
        idx.append(b["index"].numpy())
        for m in mods:
            vals[m].append(_dense(b[m]))
    return np.concatenate(idx), {m: np.concatenate(v) for m, v in vals.items()}


def _expected(a, m):
    x = a.X if m == "X" else a.layers[m[7:]] if m.startswith("layers/") else a.obsm[m[5:]]
    return x.toarray() if sp.issparse(x) else np.asarray(x)


@pytest.mark.parametrize("fmt", [2, 3])
def test_anndata_zarr_streams_every_row_once_with_its_values(tmp_path, fmt):
    a = _adata()
    with ad.settings.override(zarr_write_format=fmt):
        a.write_zarr(tmp_path / "a.zarr")
    st = storage.open(tmp_path / "a.zarr")
    mods = ["X", "layers/dense", "obsm/pca"]
    assert st.modalities == mods and st.n_obs == N
    s = od.torch.stream(tmp_path / "a.zarr", split=None, batch_size=64, seed=3)
    orders = []
    for _ in range(2):  # two epochs: each serves every row once, in a new order
        idx, vals = _collect(s, mods)
        orders.append(idx.tolist())
        assert sorted(idx.tolist()) == list(range(N))
        assert idx.tolist() != sorted(idx.tolist())
        for m in mods:
            np.testing.assert_array_equal(vals[m], _expected(a, m)[idx].astype(np.float32))
    assert orders[0] != orders[1]
    train = od.torch.stream(tmp_path / "a.zarr", split="train", batch_size=50, modalities=["X"])
    idx, _ = _collect(train, ["X"])
    assert sorted(idx.tolist()) == np.flatnonzero(a.obs["split"] == "train").tolist()
    assert st.var_names("X")[:2] == ["g0", "g1"]


def test_mudata_zarr_streams_in_place(tmp_path):
    a, b = _adata(0), _adata(0)
    b.X = b.layers["dense"]
    m = md.MuData({"rna": a, "prot": b})
    m.obs["split"] = a.obs["split"].to_numpy()
    m.write_zarr(tmp_path / "m.zarr")
    st = storage.open(tmp_path / "m.zarr")
    assert sorted(st.modalities) == ["prot", "rna"]
    s = od.torch.stream(tmp_path / "m.zarr", split="test", batch_size=16, seed=1)
    idx, vals = _collect(s, ["rna", "prot"])
    assert sorted(idx.tolist()) == np.flatnonzero(a.obs["split"] == "test").tolist()
    np.testing.assert_array_equal(vals["rna"], a.X.toarray()[idx])
    np.testing.assert_array_equal(vals["prot"], b.X[idx])


def test_mudata_with_a_partial_modality_is_refused_naming_it(tmp_path):
    a, b = _adata(0), _adata(0)[:100].copy()
    md.MuData({"rna": a, "atac": b}).write_zarr(tmp_path / "m.zarr")
    with pytest.raises(ForeignStoreError, match="'atac' holds 100 of the 300"):
        storage.open(tmp_path / "m.zarr")


def _write_annbatch_collection(path, parts):
    """annbatch 0.3.1's on-disk layout (io.py: DatasetCollection + write_sharded): root attrs
    encoding-type 'annbatch-preshuffled' / version 0.1.0, AnnData groups dataset_<i> in Zarr 3 whose X is
    sharded along rows (dense: chunks of 64 rows; CSR: chunks of ~64 rows of non-zeros)."""
    g = zarr.open_group(path, mode="w", zarr_format=3)

    def callback(write_func, store, elem_name, elem, dataset_kwargs, *, iospec):
        kw = dict(dataset_kwargs)
        if iospec.encoding_type == "array" and elem_name == "X":
            kw.update(chunks=(16,) + elem.shape[1:], shards=(64,) + elem.shape[1:])
        elif iospec.encoding_type == "csr_matrix":
            per = max(1, int(16 * elem.nnz / elem.shape[0]))
            kw.update(chunks=(per,), shards=(per * 4,))
        write_func(store, elem_name, elem, dataset_kwargs=kw)

    with ad.settings.override(zarr_write_format=3):
        for i, a in enumerate(parts):
            ad.experimental.write_dispatched(g, f"dataset_{i}", a, callback=callback)
    g.attrs.update({"encoding-type": "annbatch-preshuffled", "encoding-version": "0.1.0"})


@pytest.mark.parametrize("dense", [False, True])
def test_annbatch_collection_streams_as_one_table(tmp_path, dense):
    parts = [_adata(i, n=n, split=False) for i, n in enumerate((130, 170))]
    for a in parts:
        del a.layers["dense"], a.obsm["pca"]
        if dense:
            a.X = a.X.toarray()
    _write_annbatch_collection(tmp_path / "c.zarr", parts)
    st = storage.open(tmp_path / "c.zarr")
    assert st.modalities == ["X"] and st.n_obs == 300
    s = od.torch.stream(tmp_path / "c.zarr", split=None, batch_size=32, seed=2)
    first = st.readers["X"].parts[0]
    first.read(np.array([0]), np.array([1]))
    assert first._direct, "sharded local chunks are read from the shard files directly"
    idx, vals = _collect(s, ["X"])
    assert sorted(idx.tolist()) == list(range(300))
    whole = np.concatenate([a.X.toarray() if sp.issparse(a.X) else a.X for a in parts])
    np.testing.assert_array_equal(vals["X"], whole[idx])


def test_h5ad_and_plain_zarr_get_clear_errors(tmp_path):
    _adata().write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(ForeignStoreError, match=r"read_h5ad\(.*a\.h5ad'\)\.write_zarr\(") as ei:
        od.torch.stream(tmp_path / "a.h5ad")
    assert isinstance(ei.value, OmicsDataError)
    zarr.open_group(tmp_path / "g.zarr", mode="w")
    with pytest.raises(ForeignStoreError, match="not an AnnData, MuData or annbatch"):
        storage.open(tmp_path / "g.zarr")


def test_direct_chunk_reads_equal_zarr_reads(tmp_path):
    a = _adata()
    m = md.MuData({"rna": a, "prot": ad.AnnData(X=a.layers["dense"], obs=a.obs[[]])})
    od.write_store(m, tmp_path / "s", dataset="t", chunk_bytes=1024)
    st = storage.open(tmp_path / "s")
    starts, stops = np.array([5, 40, 201]), np.array([30, 41, 300])
    for mod in ("rna", "prot"):
        r = st.readers[mod]
        r.read(starts[:1], stops[:1])
        assert r._direct, "a local store is read chunk file by chunk file"
        fast = storage.read_rows(r, np.r_[5:30, 40, 201:300])
        r._direct = False  # the zarr path
        np.testing.assert_array_equal(fast, storage.read_rows(r, np.r_[5:30, 40, 201:300]))


def test_a_chunk_read_in_part_by_many_ranges_is_decoded_once(tmp_path):
    a = _adata()
    od.write_store(md.MuData({"rna": a}), tmp_path / "s", dataset="t", chunk_bytes=4096)
    r = storage.open(tmp_path / "s").readers["rna"]
    assert r.g is not None  # opens the arrays and the direct chunk readers
    ptr_chunks = r._direct[2]
    calls = []
    real = ptr_chunks._decode_payload  # every whole-chunk decode, by chunk file
    ptr_chunks._decode_payload = lambda path, payload, out: (calls.append(int(path.rsplit("/", 1)[-1])),
                                                             real(path, payload, out))
    starts, stops = np.arange(0, 200, 20), np.arange(0, 200, 20) + 3  # 10 ranges, all in indptr chunk 0
    block = r.read(starts, stops)
    assert calls == [0]  # one decode of the indptr chunk for the 10 ranges
    r.read(starts + 1, stops + 1)
    assert calls == [0]  # and the next read takes it from the small cache
    rows = np.concatenate([np.arange(s0, s1) for s0, s1 in zip(starts, stops)])
    np.testing.assert_array_equal(block.to_scipy().toarray(), sp.csr_matrix(a.X)[rows].toarray())


@pytest.mark.parametrize("ind", [np.int32, np.int64, np.uint16, np.int16])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_csr_gather_equals_scipy(ind, dt):
    X = sp.random(500, 300, density=0.05, format="csr", dtype=np.float32, random_state=0)
    b = CSRBlock(X.data.astype(dt), X.indices.astype(ind), X.indptr.astype(np.int64), 300)
    pos = np.random.default_rng(1).permutation(500)[:77]
    # two row parts, gathered on two threads (into pooled arrays: annbatch's int16 indices take scipy's
    # gather through its value slot, then widen)
    buf = gather.csr_buffer(b, pos, threads=2, pool=gather.OutputPool())
    for a0, a1 in ((0, 77), (0, 30), (30, 77), (76, 77)):  # batches are slices of the gathered buffer
        o = buf.rows(a0, a1)
        assert o["crow"].dtype == o["col"].dtype and o["values"].dtype == torch.float32
        t = torch.sparse_csr_tensor(o["crow"], o["col"], o["values"], size=o["shape"]).to_dense().numpy()
        np.testing.assert_array_equal(t, X[pos[a0:a1]].toarray())


def test_buffer_bytes_is_a_budget_that_holds(tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(4000, 2000, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}" for i in range(4000)]))
    od.write_store(md.MuData({"rna": a}), tmp_path / "s", dataset="t")
    held = {}
    for budget in (2 << 20, 8 << 20):
        s = od.torch.stream(tmp_path / "s", split=None, batch_size=64, buffer_bytes=budget)
        idx = np.concatenate([b["index"].numpy() for b in s])
        assert sorted(idx.tolist()) == list(range(4000))
        reader = s.dataset.source.readers["rna"]
        # read slots and gathered buffers held at once, as the stream saw them
        held[budget] = s.dataset.peak_bytes
        assert sum(v.nbytes for v in reader._scratch.values()) + s.dataset.outputs.nbytes <= held[budget] <= budget
    assert held[2 << 20] < held[8 << 20]


def test_foreign_store_streams_from_dataloader_workers(tmp_path):
    a = _adata()
    a.write_zarr(tmp_path / "a.zarr")
    s = od.torch.stream(tmp_path / "a.zarr", split=None, batch_size=32, modalities=["X", "layers/dense"],
                        num_workers=2)
    idx, vals = _collect(s, ["X", "layers/dense"])
    assert sorted(idx.tolist()) == list(range(N))
    np.testing.assert_array_equal(vals["layers/dense"], a.layers["dense"][idx])


def _shard_file_reversed(path, k):
    """Rewrite a shard file of ``k`` inner chunks (index at the end, crc32c) with its chunks in reverse order."""
    from numcodecs.checksum32 import CRC32C

    raw = path.read_bytes()
    idx = np.frombuffer(CRC32C(location="end").decode(raw[-(16 * k + 4):]), "<u8").reshape(k, 2)
    body, new = bytearray(), idx.copy()
    for i in reversed(range(k)):
        off, n = (int(v) for v in idx[i])
        if off != 2**64 - 1:
            new[i] = (len(body), n)
            body += raw[off:off + n]
    path.write_bytes(bytes(body) + bytes(CRC32C(location="end").encode(new.astype("<u8").tobytes())))


@pytest.mark.parametrize("layout", ["as written", "reversed"])
def test_small_sharded_chunks_decode_in_runs_equal_to_zarr(tmp_path, monkeypatch, layout):
    """Runs of whole inner chunks are one job and, stored back to back, one read; runs stop at shard ends;
    never-written (all-fill) inner chunks read as the fill value; a shard stored out of order reads the same."""
    from omicsdata.storage import chunks
    from omicsdata.storage.jobs import run_jobs

    x = np.arange(1000, dtype=np.float32)
    x[200:264] = 0  # whole inner chunks of fill: zarr does not write them
    arr = zarr.create_array(tmp_path / "a.zarr", shape=x.shape, chunks=(16,), shards=(128,), dtype=x.dtype,
                            fill_value=0.0)
    arr[:] = x
    if layout == "reversed":
        for f in (tmp_path / "a.zarr" / "c").iterdir():
            _shard_file_reversed(f, 8)
    monkeypatch.setattr(chunks, "RUN_BYTES", 5 * 16 * 4)  # runs of 5 inner chunks
    lc = chunks.LocalChunks.of(str(tmp_path / "a.zarr"), "", zarr.open_array(tmp_path / "a.zarr", mode="r"))
    assert lc is not None and lc.shard == (8, True) and lc.run_chunks == 5
    def shard_index(c):
        with open(lc.path(c), "rb") as fh:
            return lc._shard_index(fh, lc.path(c))
    index = shard_index(16)  # shard 2: rows 256-383, chunks 16-23
    shard1 = shard_index(8)
    assert (shard1[5:, 0] == 2**64 - 1).all()  # rows 208-255 (inner chunks 13-15) are fill: never written
    back_to_back = (index[1:, 0] == index[:-1, 0] + index[:-1, 1]).all()
    assert back_to_back == (layout == "as written")
    starts, stops = np.array([3, 100, 500]), np.array([90, 470, 1000])
    out = np.empty(int((stops - starts).sum()), np.float32)
    jobs = chunks.plan([(lc, out, starts, stops)])
    runs = [j for j in jobs if j[0].__name__ == "_decode_run"]
    assert runs and all(j[2] - j[1] <= 5 and (j[1] // 8) == ((j[2] - 1) // 8) for j in runs)
    run_jobs(jobs, 2)
    np.testing.assert_array_equal(out, np.concatenate([x[a:b] for a, b in zip(starts, stops)]))
