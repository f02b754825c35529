"""The stream's buffers: chunks read in part decode only their Blosc blocks, gathered buffers are
reused once their batches are gone, and the CPU stream serves the same batches with or without a
prefetch thread."""
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
from omicsdata.errors import CorruptStoreError
from omicsdata.storage import chunks
from omicsdata.torch import gather


@pytest.fixture(scope="module")
def csr_store(tmp_path_factory):
    """A CSR store whose data chunks (1 MiB, 4 chunks) hold four 256 KiB Blosc blocks each."""
    rng = np.random.default_rng(0)
    X = sp.random(4000, 500, density=0.5, format="csr", dtype=np.float32, random_state=rng)
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"c{i}" for i in range(4000)]))
    path = tmp_path_factory.mktemp("buffers") / "s"
    od.write_store(md.MuData({"rna": a}), path, dataset="t", chunk_bytes=1 << 20)
    return path, X


def _spy(lc, calls):
    """Record the chunk number of every whole-chunk decode of ``lc``."""
    real = lc._decode_payload
    lc._decode_payload = lambda path, payload, out: (calls.append(int(path.rsplit("/", 1)[-1])),
                                                     real(path, payload, out))


def test_a_small_part_of_a_chunk_decodes_only_its_blosc_blocks(csr_store):
    if chunks.blosc_getitem() is None:
        pytest.skip("this numcodecs build does not export blosc_getitem")
    path, X = csr_store
    r = storage.open(path).readers["rna"]
    assert r.g is not None
    data = r._direct[0]
    calls = []
    _spy(data, calls)
    ptr = X.indptr
    # a range whose non-zeros start near the end of data chunk 1 and end early in chunk 2: two chunks
    # read in small parts (a Blosc block each)
    row0 = int(np.searchsorted(ptr, 2 * data.chunk - 5000))
    row1 = int(np.searchsorted(ptr, 2 * data.chunk + 5000))
    block = r.read(np.array([row0]), np.array([row1]))
    assert calls == []  # both parts came through blosc_getitem, no whole-chunk decode
    np.testing.assert_array_equal(block.to_scipy().toarray(), X[row0:row1].toarray())
    # one part that needs every Blosc block of its chunk (all of chunk 1 but its first row) also decodes
    # straight into the block (no chunk-sized array to copy out of)
    row0 = int(np.searchsorted(ptr, data.chunk + 10))
    block = r.read(np.array([row0]), np.array([row1]))
    assert calls == []
    np.testing.assert_array_equal(block.to_scipy().toarray(), X[row0:row1].toarray())
    # many parts of one chunk that together touch all its Blosc blocks: one whole decode instead
    starts = np.searchsorted(ptr, np.arange(4) * (data.chunk // 4) + data.chunk + 10)
    r.read(starts, starts + 3)
    assert calls == [1]


def test_a_flipped_byte_in_a_chunk_read_in_part_is_named(csr_store, tmp_path):
    import shutil

    path, _ = csr_store
    copy = tmp_path / "s"
    shutil.copytree(path, copy)
    chunk_file = copy / "mod/rna/X/data/c/1"
    raw = bytearray(chunk_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk_file.write_bytes(bytes(raw))
    r = storage.open(copy).readers["rna"]
    assert r.g is not None
    ptr = np.asarray(zarr.open_group(str(copy), mode="r")["mod/rna/X/indptr"][:])
    row0 = int(np.searchsorted(ptr, 2 * r._direct[0].chunk - 5000))  # a small part of chunk 1: blosc_getitem
    with pytest.raises(CorruptStoreError, match="mod/rna/X/data/c/1"):
        r.read(np.array([row0]), np.array([row0 + 5]))


def test_gathered_buffers_are_reused_once_their_batches_are_gone():
    pool = gather.OutputPool(keep=2)
    block = np.arange(60, dtype=np.float32).reshape(20, 3)
    first = gather.dense_buffer(block, np.arange(20)[::-1], pool=pool, key="x", threads=2)
    np.testing.assert_array_equal(first.numpy(), block[::-1])
    batch = first[:5]  # a batch (a view) the consumer still holds
    del first
    second = gather.dense_buffer(block, np.arange(20), pool=pool, key="x")
    assert second.data_ptr() != batch.data_ptr()  # the held buffer is not written over
    np.testing.assert_array_equal(batch.numpy(), block[::-1][:5])
    kept = pool.nbytes
    del batch, second
    third = gather.dense_buffer(block, np.arange(20), pool=pool, key="x")
    assert pool.nbytes == kept  # a pooled array came back: nothing new allocated
    held = [gather.dense_buffer(block, np.arange(20), pool=pool, key="x") for _ in range(3)]
    assert pool.nbytes == kept  # buffers beyond `keep` are plain allocations, not kept by the pool
    assert len({t.data_ptr() for t in held + [third]}) == 4


def test_cpu_stream_serves_the_same_batches_with_or_without_a_prefetch_thread(csr_store):
    path, X = csr_store
    runs = {}
    for prefetch in (None, 2):  # default on a CPU device: no thread (0)
        s = od.torch.stream(path, split=None, batch_size=128, seed=3, prefetch=prefetch)
        assert s.prefetch == (0 if prefetch is None else 2)
        runs[prefetch] = [(b["index"].numpy().copy(), b["rna"].to_dense().numpy()) for b in s]
    for (i0, x0), (i1, x1) in zip(runs[None], runs[2], strict=True):
        np.testing.assert_array_equal(i0, i1)
        np.testing.assert_array_equal(x0, x1)
        np.testing.assert_array_equal(x0, X[i0].toarray())
    assert sorted(np.concatenate([i for i, _ in runs[None]]).tolist()) == list(range(4000))


def test_batches_kept_across_buffers_keep_their_values(csr_store):
    path, X = csr_store
    s = od.torch.stream(path, split=None, batch_size=64, buffer_size=256, seed=1)
    kept = list(s)  # every batch held at once: pooled buffers must never be written over
    assert len(kept) > 8
    for b in kept:
        np.testing.assert_array_equal(b["rna"].to_dense().numpy(), X[b["index"].numpy()].toarray())
    assert isinstance(kept[0]["rna"], torch.Tensor)


@pytest.fixture(scope="module")
def dense_store(tmp_path_factory):
    """A dense store of 1,000 x 300 float32 in chunks of a few rows; a train split of ~70% of the rows."""
    rng = np.random.default_rng(1)
    X = rng.poisson(2.0, (1000, 300)).astype(np.float32)
    obs = pd.DataFrame({"split": np.where(rng.random(1000) < 0.7, "train", "test")},
                       index=[f"s{i}" for i in range(1000)])
    m = md.MuData({"rna": ad.AnnData(X=X, obs=obs)})
    m.obs["split"] = obs["split"].to_numpy()
    path = tmp_path_factory.mktemp("dense") / "s"
    od.write_store(m, path, dataset="t", chunk_bytes=16 << 10)
    return path, X, np.flatnonzero(obs["split"].to_numpy() == "train")


def _batches(s):
    return [(b["index"].numpy().copy(), b["rna"].numpy().copy()) for b in s]


def test_dense_buffers_are_scattered_as_their_chunks_decode(dense_store, monkeypatch):
    from omicsdata.storage.chunks import LocalChunks

    path, X, train = dense_store
    scattered = []
    real = LocalChunks._decode_scatter
    monkeypatch.setattr(LocalChunks, "_decode_scatter", lambda self, c, dst: (scattered.append(c), real(self, c, dst)))
    # buffers of 100 samples cut blocks in two (chunks read in part), rows outside the split are dropped
    s = od.torch.stream(path, split="train", batch_size=32, buffer_size=100, seed=4)
    runs = [_batches(s) for _ in range(2)]
    assert scattered  # the whole chunks went through the scatter path
    assert not s.dataset.source.readers["rna"]._scratch  # no buffer-sized intermediate read
    for run in runs:
        idx = np.concatenate([i for i, _ in run])
        assert sorted(idx.tolist()) == train.tolist()  # every train row once per epoch, no test row
        for i, x in run:
            np.testing.assert_array_equal(x, X[i])
    assert not np.array_equal(runs[0][0][0], runs[1][0][0])  # the second epoch is reshuffled

    # the same batches where the chunks are not read directly (zarr reads into scratch, then the rows go to
    # their places)
    s2 = od.torch.stream(path, split="train", batch_size=32, buffer_size=100, seed=4)
    r = s2.dataset.source.readers["rna"]
    r.arr  # noqa: B018 - open it, then take the zarr path
    r._direct = False
    for (i0, x0), (i1, x1) in zip(runs[0], _batches(s2), strict=True):
        np.testing.assert_array_equal(i0, i1)
        np.testing.assert_array_equal(x0, x1)


def test_scatter_places_rows_and_drops_unwanted_ones():
    from omicsdata.storage import memory

    out = np.zeros((3, 2), np.float32)
    rows = np.arange(8, dtype=np.float32).reshape(4, 2)
    memory.Scatter(out, np.array([2, -1, 0, 1]))[0:4].put(rows)
    np.testing.assert_array_equal(out, rows[[2, 3, 0]])
    big = memory.empty((1 << 20, 2), np.float32)  # mapped: writable, the asked shape and dtype
    big[-1] = 5
    assert big.shape == (1 << 20, 2) and big.dtype == np.float32 and big[-1, 1] == 5
