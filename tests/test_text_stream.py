"""Parquet-shard tables in a store and the ParquetStream over their row groups."""
from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

import omicsdata as od
from omicsdata.storage import write as st
from omicsdata.text.stream import ParquetStream

N = 1003


@pytest.fixture
def text_store(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "TABLE_ROW_GROUP_BYTES", 4096)   # many small row groups
    monkeypatch.setattr(st, "TABLE_FILE_BYTES", 40_000)      # and several shards
    df = pd.DataFrame({"x": np.arange(N, dtype=np.int64), "y": np.arange(N) * 0.5,
                       "text": [f"record {i} " + "w" * (i % 17) for i in range(N)],
                       "split": np.where(np.arange(N) % 4 == 0, "test", "train")})
    return od.write_store(md.MuData({}), tmp_path / "s", dataset="t", tables={"t": df})


def test_tables_only_store_shards_and_verify(text_store):
    man = od.open_store(text_store).uns["omicsdata"]
    info = man["tables"]["t"]
    files = od.text.table_files(text_store, "t")
    assert info["files"] == len(files) > 1 and info["n_rows"] == N
    groups = sum(pq.ParquetFile(f).metadata.num_row_groups for f in files)
    assert groups == info["row_groups"] > 5
    assert all(f"tables/t/{f.name}" in man["files"] for f in files)
    assert od.verify(text_store)["ok"]
    import pyarrow.dataset as ds

    t = od.text.read_table(text_store, "t", columns=["x"], filter=ds.field("split") == "test")
    assert t["x"].to_pylist() == list(range(0, N, 4))
    with pytest.raises(od.StoreError, match="no table 'nope'"):
        od.text.read_table(text_store, "nope")


@pytest.mark.parametrize("world,workers,bs,shuffle", [(1, 1, 64, False), (3, 2, 32, True), (4, 3, 7, True)])
def test_exact_once_equal_batches(text_store, world, workers, bs, shuffle):
    seen, n_batches = [], []
    for r in range(world):
        nb = 0
        for w in range(workers):
            s = ParquetStream(text_store, "t", batch_size=bs, shuffle=shuffle, seed=3, rank=r, world_size=world)
            shard = s._plan(worker=w, num_workers=workers)
            assert len(s) == shard.n_rank_batches
            # iterate as that worker would
            s._plan = (lambda w=w, s=s: ParquetStream._plan(s, worker=w, num_workers=workers))
            for b in s:
                assert 1 <= len(b["index"]) <= bs
                assert b["x"].tolist() == b["index"].tolist()                 # rows are the right rows
                assert all(t.startswith(f"record {i} ") for t, i in zip(b["text"], b["index"].tolist()))
                seen += b["index"].tolist()
                nb += 1
        n_batches.append(nb)
    assert sorted(seen) == list(range(N))           # every row exactly once across ranks x workers
    assert len(set(n_batches)) == 1                 # same number of batches on every rank


def test_where_filter_shuffle_and_epochs(text_store):
    s = ParquetStream(text_store, "t", batch_size=50, where={"split": "train"}, shuffle=True, seed=0,
                      columns=["x", "split"])
    e0 = np.concatenate([b["index"].numpy() for b in s])
    assert sorted(e0.tolist()) == [i for i in range(N) if i % 4]
    s.set_epoch(1)
    e1 = np.concatenate([b["index"].numpy() for b in s])
    assert sorted(e1.tolist()) == sorted(e0.tolist()) and not np.array_equal(e0, e1)
    s.set_epoch(0)
    assert np.array_equal(np.concatenate([b["index"].numpy() for b in s]), e0)   # reproducible
    first = next(iter(ParquetStream(text_store, "t", batch_size=50, where={"split": "train"}, shuffle=True)))
    assert set(first) == {"x", "y", "text", "split", "index"}


def test_dataloader_workers(text_store):
    s = ParquetStream(text_store, "t", batch_size=40, shuffle=True, seed=1, columns=["x"])
    got = []
    for b in torch.utils.data.DataLoader(s, batch_size=None, num_workers=2):
        got += b["x"].tolist()
    assert sorted(got) == list(range(N))


def test_loader_workers_ship_arrow_and_format_here(text_store):
    s = ParquetStream(text_store, "t", batch_size=40, shuffle=True, seed=1, columns=["x", "text"])
    batches = list(s.loader(num_workers=2))
    assert all(isinstance(b["x"], torch.Tensor) and isinstance(b["text"], list) for b in batches)
    assert sorted(v for b in batches for v in b["x"].tolist()) == list(range(N))  # exact once over 2 workers
    assert [len(b["index"]) for b in batches] == [len(b["index"]) for b in s]      # same batch sizes as in-process


def test_formats_and_errors(text_store):
    b = next(iter(ParquetStream(text_store, "t", batch_size=10, format="pandas")))
    assert isinstance(b, pd.DataFrame) and len(b) == 10
    b = next(iter(ParquetStream(text_store, "t", batch_size=10, format="arrow")))
    assert b.num_rows == 10 and "index" in b.column_names
    b = next(iter(ParquetStream(text_store, "t", batch_size=10, format="numpy", transform=lambda d: d["y"].sum())))
    assert b == pytest.approx(sum(i * 0.5 for i in range(10)))
    with pytest.raises(od.StoreError, match="no column"):
        ParquetStream(text_store, "t", columns=["zzz"])
    with pytest.raises(od.StoreError, match="format"):
        ParquetStream(text_store, "t", format="csv")
