"""Parquet stream throughput: od.text.ParquetStream against a plain pyarrow dataset scan, same files, one run.

    .venv/bin/python scripts/bench_parquet.py [--rows 1000000] [--batch 1024]

Writes a tables-only store (text + numeric columns, row groups sized by
omicsdata.store.TABLE_ROW_GROUP_BYTES), then reads every row once with each
reader and prints rows/s and MB/s (uncompressed Arrow bytes of the columns
read) and the ratio to the plain scan. Files are in the page cache after a
warm-up pass, so this measures decode + batching cost, not the disk.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import mudata as md
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds


def make_table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    words = np.array(["gene", "protein", "binds", "expressed", "in", "tumour", "cells", "pathway", "kinase", "the"])
    lens = rng.integers(8, 24, n)
    flat = words[rng.integers(0, len(words), int(lens.sum()))]
    offs = np.concatenate([[0], np.cumsum(lens)])
    text = [" ".join(flat[offs[i]:offs[i + 1]]) for i in range(n)]
    return pa.table({"id": np.arange(n, dtype=np.int64), "score": rng.normal(size=n).astype(np.float32),
                     "label": rng.integers(0, 10, n).astype(np.int32), "text": text,
                     "split": np.where(rng.random(n) < 0.8, "train", "test")})


def timed(fn):
    t = time.perf_counter()
    rows, nbytes = fn()
    return time.perf_counter() - t, rows, nbytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    import torch

    import omicsdata as od
    from omicsdata.text.stream import ParquetStream

    tmp = tempfile.mkdtemp(prefix="bench-parquet-")
    t = make_table(a.rows)
    store = od.write_store(md.MuData({}), f"{tmp}/store", dataset="bench", tables={"t": t})
    info = od.open_store(store).uns["omicsdata"]["tables"]["t"]
    files = [str(f) for f in od.text.table_files(store, "t")]
    disk = sum(__import__("os").path.getsize(f) for f in files)

    def pyarrow_scan():
        rows = nb = 0
        for b in ds.dataset(files, format="parquet").to_batches(batch_size=a.batch):
            rows += b.num_rows
            nb += b.nbytes
        return rows, nb

    def stream(fmt, shuffle, where=None, workers=0, via_loader=False):
        def run():
            s = ParquetStream(store, "t", batch_size=a.batch, shuffle=shuffle, seed=0, format=fmt, where=where,
                              columns=["id", "score", "label", "text", "split"])
            if via_loader:
                it = s.loader(num_workers=workers)
            else:
                it = torch.utils.data.DataLoader(s, batch_size=None, num_workers=workers) if workers else s
            rows = nb = 0
            for b in it:
                if fmt == "arrow":
                    rows += b.num_rows
                    nb += b.drop_columns(["index"]).nbytes
                else:
                    n = len(b["index"])
                    rows += n
                    nb += sum(v.numel() * v.element_size() if hasattr(v, "numel") else
                              sum(len(x) for x in v) + 4 * len(v) for k, v in b.items() if k != "index")
            return rows, nb
        return run

    cases = [("pyarrow dataset scan (baseline)", pyarrow_scan),
             ("ParquetStream arrow, in order", stream("arrow", False)),
             ("ParquetStream arrow, shuffled", stream("arrow", True)),
             ("ParquetStream torch, shuffled", stream("torch", True)),
             ("ParquetStream torch, shuffled, 2 workers: DataLoader(stream)", stream("torch", True, workers=2)),
             ("ParquetStream torch, shuffled, 2 workers: stream.loader()", stream("torch", True, workers=2,
                                                                                   via_loader=True))]
    pyarrow_scan()  # warm the page cache
    print(f"table: {a.rows:,} rows, {t.nbytes / 1e6:.1f} MB in Arrow, {disk / 1e6:.1f} MB on disk "
          f"({info['files']} file(s), {info['row_groups']} row groups of {info['row_group_rows']:,} rows); "
          f"batch {a.batch}; best of {a.repeats}")
    print("| reader | rows/s | MB/s | vs pyarrow scan |")
    print("|---|---:|---:|---:|")
    base = None
    for name, fn in cases:
        best = None
        for _ in range(a.repeats):
            sec, rows, nb = timed(fn)
            assert rows == a.rows, (name, rows)
            best = sec if best is None or sec < best else best
        rps, mbs = rows / best, nb / best / 1e6
        base = base or rps
        print(f"| {name} | {rps:,.0f} | {mbs:,.1f} | {rps / base:.2f}x |")


if __name__ == "__main__":
    main()
