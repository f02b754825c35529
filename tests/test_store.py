"""Store: MuData on Zarr v3, row chunks holding whole rows, obs/var/categoricals, CSR, manifest."""
from __future__ import annotations

import json

import anndata as ad
import dask.array as da
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

import omicsdata as od
from omicsdata.store import (
    DEFAULT_CODEC,
    MANIFEST,
    make_codec,
    open_store,
    read_manifest,
    rows_per_chunk,
    verify_store,
    write_store,
)


def make_mdata(n=97, p_dense=33, p_sparse=21, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"S{i:04d}" for i in range(n)]
    obs = pd.DataFrame({
        "label": pd.Categorical(rng.choice(["a", "b", "c"], n), categories=["c", "b", "a"], ordered=True),
        "age": rng.normal(60, 10, n).astype(np.float32),
        "stage": rng.integers(1, 5, n).astype(np.int8),
        "flag": rng.random(n) < 0.5,
        "patient_id": [f"P{i // 2}" for i in range(n)],
    }, index=ids)
    dense = rng.normal(size=(n, p_dense)).astype(np.float32)
    spm = sp.random(n, p_sparse, density=0.1, format="csr", dtype=np.float32, random_state=seed)
    a = ad.AnnData(dense, obs=pd.DataFrame(index=ids),
                   var=pd.DataFrame({"chrom": pd.Categorical(["chr1"] * p_dense)}, index=[f"g{j}" for j in range(p_dense)]))
    b = ad.AnnData(spm, obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=[f"m{j}" for j in range(p_sparse)]))
    m = md.MuData({"dense": a, "sparse": b})
    m.obs = obs.loc[m.obs_names]
    return m, dense, spm, obs


def test_round_trip_values_lazy_and_eager(tmp_path):
    m, dense, spm, obs = make_mdata()
    path = write_store(m, tmp_path / "s.zarr", dataset="toy")
    for lazy in (True, False):
        back = open_store(path, lazy=lazy)
        X = back["dense"].X
        if lazy:
            assert isinstance(X, da.Array)
            X = X.compute()
        np.testing.assert_array_equal(np.asarray(X), dense)
        S = back["sparse"].X
        S = S.compute() if lazy else S
        assert sp.issparse(S)
        np.testing.assert_array_equal(S.toarray(), spm.toarray())
        assert list(back.obs_names) == list(obs.index)
        assert list(back["dense"].var_names) == [f"g{j}" for j in range(33)]
        assert back["dense"].var["chrom"].dtype.name == "category"


def test_obs_dtypes_and_categoricals(tmp_path):
    m, _, _, obs = make_mdata()
    back = open_store(write_store(m, tmp_path / "s.zarr"))
    o = back.obs
    assert o["label"].dtype.name == "category"
    assert list(o["label"].cat.categories) == ["c", "b", "a"] and o["label"].cat.ordered
    assert (o["label"].astype(str) == obs["label"].astype(str)).all()
    np.testing.assert_array_equal(o["age"].to_numpy(), obs["age"].to_numpy())
    assert o["age"].dtype == np.float32 and o["stage"].dtype == np.int8 and o["flag"].dtype == bool
    assert (o["patient_id"] == obs["patient_id"]).all()
    # write_store adds presence masks for every modality
    assert o["has_dense"].all() and o["has_sparse"].all()


@pytest.mark.parametrize("chunk_bytes", [4096, 1 << 20])
def test_dense_chunks_hold_whole_rows_sized_by_bytes(tmp_path, chunk_bytes):
    m, dense, _, _ = make_mdata(n=500, p_dense=40)
    path = write_store(m, tmp_path / "s.zarr", chunk_bytes=chunk_bytes)
    arr = zarr.open_array(str(path / "mod" / "dense" / "X"), mode="r")
    rows = rows_per_chunk(40, 4, chunk_bytes)
    assert rows == max(1, chunk_bytes // 160)
    assert arr.chunks == (min(rows, 500), 40)  # every feature of a row in one chunk
    assert arr.metadata.zarr_format == 3
    # on disk: one chunk file per row block, all with column-block index 0
    files = sorted(p.relative_to(path / "mod/dense/X/c").as_posix() for p in (path / "mod/dense/X/c").rglob("*") if p.is_file())
    n_blocks = -(-500 // min(rows, 500))
    assert files == sorted(f"{i}/0" for i in range(n_blocks))
    man = read_manifest(path)
    assert man["modalities"]["dense"]["chunks"] == [min(rows, 500), 40]
    np.testing.assert_array_equal(open_store(path)["dense"].X.compute(), dense)
    # the lazy dask array follows the stored chunks
    assert open_store(path)["dense"].X.chunks[0][0] == min(rows, 500)


def test_chunk_rows_and_shards(tmp_path):
    m, dense, _, _ = make_mdata(n=100, p_dense=10)
    path = write_store(m, tmp_path / "s.zarr", chunk_rows=7, shard_chunks=4)
    arr = zarr.open_array(str(path / "mod" / "dense" / "X"), mode="r")
    assert arr.chunks == (7, 10) and arr.shards == (28, 10)
    np.testing.assert_array_equal(arr[:], dense)


def test_dask_input_is_written_block_by_block(tmp_path):
    m, dense, _, _ = make_mdata(n=300, p_dense=16)
    m.mod["dense"].X = da.from_array(dense, chunks=(37, 16))  # chunks not aligned with the store's
    path = write_store(m, tmp_path / "s.zarr", chunk_rows=50)
    arr = zarr.open_array(str(path / "mod" / "dense" / "X"), mode="r")
    assert arr.chunks == (50, 16)
    np.testing.assert_array_equal(arr[:], dense)


def test_sparse_stays_csr(tmp_path):
    m, _, spm, _ = make_mdata(n=200, p_sparse=50)
    path = write_store(m, tmp_path / "s.zarr", chunk_bytes=256)
    g = zarr.open_group(str(path / "mod" / "sparse" / "X"), mode="r")
    assert g.attrs["encoding-type"] == "csr_matrix"
    assert set(g.keys()) == {"data", "indices", "indptr"}
    assert g["data"].chunks == (64,)  # 256 bytes of float32
    np.testing.assert_array_equal(g["indptr"][:], spm.indptr)
    man = read_manifest(path)["modalities"]["sparse"]
    assert man["storage"] == "csr" and man["shape"] == [200, 50]
    back = open_store(path, lazy=False)["sparse"].X
    assert isinstance(back, sp.csr_matrix)
    np.testing.assert_array_equal(back.toarray(), spm.toarray())
    lazy = open_store(path)["sparse"].X
    np.testing.assert_array_equal(lazy[10:60].compute().toarray(), spm[10:60].toarray())


def test_manifest_is_valid_and_complete(tmp_path):
    m, _, _, _ = make_mdata()
    m.obs["split"] = pd.Categorical(np.where(np.arange(m.n_obs) % 5 == 0, "test", "train"))
    path = write_store(m, tmp_path / "s.zarr", dataset="toy", version="2.1", builder="hand",
                       obs_fields={"age": {"description": "age", "unit": "years"}},
                       split_info={"by": "patient_id"})
    man = read_manifest(path)  # validated against schemas/store.schema.json
    assert man["dataset"] == "toy" and man["version"] == "2.1" and man["zarr_format"] == 3
    assert man["n_obs"] == 97 and man["modalities"]["dense"]["shape"] == [97, 33]
    assert man["modalities"]["dense"]["codec"] == DEFAULT_CODEC
    assert man["splits"]["counts"] == {"test": 20, "train": 77}
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(man["files"]) == on_disk
    assert verify_store(path)["ok"]
    assert open_store(path).uns["omicsdata"]["dataset"] == "toy"


@pytest.mark.parametrize("codec", ["blosc-zstd-3", "blosc-lz4-5", "blosc-lz4hc-9-bitshuffle", "zstd-3", "gzip-1", "none"])
def test_codecs_round_trip(tmp_path, codec):
    m, dense, _, _ = make_mdata(n=50)
    path = write_store(m, tmp_path / "s.zarr", codec=codec)
    arr = zarr.open_array(str(path / "mod" / "dense" / "X"), mode="r")
    names = [type(c).__name__ for c in arr.compressors]
    # the compressor, then the per-chunk CRC32C checksum (read-time integrity)
    assert names == ([] if codec == "none" else [type(make_codec(codec)).__name__]) + ["Crc32cCodec"]
    np.testing.assert_array_equal(arr[:], dense)


def test_unknown_codec(tmp_path):
    m, _, _, _ = make_mdata(n=10)
    with pytest.raises(od.StoreError, match="unknown codec 'brotli-9'"):
        write_store(m, tmp_path / "s.zarr", codec="brotli-9")
    assert not (tmp_path / "s.zarr").exists() and list(tmp_path.iterdir()) == []


def test_misaligned_modality_is_refused_and_existing_store_kept(tmp_path):
    m, dense, _, _ = make_mdata(n=40)
    path = write_store(m, tmp_path / "s.zarr")
    before = read_manifest(path)["files"]
    a = ad.AnnData(np.ones((10, 3), np.float32), obs=pd.DataFrame(index=["S0000"] * 10))  # a subset is expanded;
    bad = md.MuData({"dense": m["dense"], "short": a})  # repeated sample names are refused (issue 18)
    with pytest.raises(od.StoreError, match="modality 'short'"):
        write_store(bad, path)
    assert read_manifest(path)["files"] == before and verify_store(path)["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no temporary left over
    with pytest.raises(od.StoreError, match="store exists"):
        write_store(m, path, overwrite=False)


def test_anndata_and_tables(tmp_path):
    a = ad.AnnData(np.arange(12, dtype=np.float32).reshape(4, 3))
    text = pd.DataFrame({"question": ["what?", "why?"], "answer": ["x", "y"]})
    path = write_store(a, tmp_path / "s.zarr", tables={"qa": text})
    man = read_manifest(path)
    t = man["tables"]["qa"]
    assert (t["path"], t["n_rows"], t["columns"]) == ("tables/qa", 2, ["question", "answer"])
    back = open_store(path)
    np.testing.assert_array_equal(back["rna"].X.compute(), a.X)  # an AnnData is modality "rna" (issue 18)
    pd.testing.assert_frame_equal(pd.read_parquet(path / "tables" / "qa"), text)


def test_mudata_can_read_the_store(tmp_path):
    m, dense, _, _ = make_mdata(n=30)
    path = write_store(m, tmp_path / "s.zarr")
    back = md.read_zarr(str(path))
    np.testing.assert_array_equal(np.asarray(back["dense"].X), dense)


def test_manifest_json_is_plain_json(tmp_path):
    m, _, _, _ = make_mdata(n=10)
    path = write_store(m, tmp_path / "s.zarr", builder_options={"n": np.int64(3), "xs": (1, 2)})
    raw = json.loads((path / MANIFEST).read_text())
    assert raw["builder_options"] == {"n": 3, "xs": [1, 2]}
