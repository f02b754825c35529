#!/usr/bin/env python
"""Where the shuffled stream spends its time: cProfile of ``od.torch.stream`` on a dense and a sparse store.

    .venv/bin/python scripts/profile_stream.py [--rows 4000] [--cells 40000] [--out bench_out/loader]

Uses the stores of ``scripts/bench_loader.py`` (built there on first use) and
prints, per shape, the cumulative seconds of the stream's stages run in one
thread (read-ahead off): read/decode (the readers), buffer planning, CSR
assembly + row gather, tensor conversion (the prefetcher's finish), then the
cost per batch of queueing (the prefetcher thread and queue), and the top
functions by own time; then the reads alone, in order and in the stream's shuffled buffers;
then the live stream (threads on): each epoch's wall seconds beside the read-ahead thread's seconds
preparing buffers (reads, the rest of the gather).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

STAGES = {  # stage -> function names (file suffix, function) whose cumulative time it is
    "read/decode (dense: rows placed as decoded)": [("readers.py", "read")],
    "buffer planning": [("stream.py", "_buffer_rows")],
    "CSR assembly + row gather (a buffer's batches)": [("stream.py", "_gather")],
    "tensor conversion (prefetcher finish)": [("prefetch.py", "_finish")],
}
GATHER, READ = "CSR assembly + row gather (a buffer's batches)", "read/decode (dense: rows placed as decoded)"


class _SyncPool:
    """Stands in for the read-ahead thread so every stage runs (and is profiled) in this thread."""

    def __init__(self, *a, **k):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def submit(self, fn, *a):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*a))
        return f


def profile(store: str, epochs: int = 2) -> str:
    """One thread, stage by stage: the worker's batches, then the prefetcher's finish of each."""
    import importlib

    import omicsdata as od
    from omicsdata.torch import prefetch

    stream = importlib.import_module("omicsdata.torch.stream")

    s = od.torch.stream(store, split=None, batch_size=256, shuffle=True, seed=0, device="cpu")
    pre = prefetch.Prefetcher([], "cpu")
    stream.ThreadPoolExecutor, keep = _SyncPool, stream.ThreadPoolExecutor
    prof = cProfile.Profile()
    n = 0
    try:
        prof.enable()
        for e in range(epochs):
            s.dataset.set_epoch(e)
            for b in s.dataset.iter_worker():
                n += int(pre._finish(b)[0]["index"].shape[0])
        prof.disable()
    finally:
        stream.ThreadPoolExecutor = keep
    st = pstats.Stats(prof)
    total = sum(v[2] for v in st.stats.values())
    lines = [f"samples served: {n}; profiled seconds: {total:.2f} (one thread, {epochs} epochs)"]
    cums = {stage: sum(v[3] for (f, _, name), v in st.stats.items() if any(f.endswith(a) and name == b for a, b in keys))
            for stage, keys in STAGES.items()}
    cums[GATHER] -= cums[READ]  # the reads run inside the buffer's gather: its own share is the rest
    for stage, cum in cums.items():
        lines.append(f"  {stage:50s} {cum:7.2f}s  {cum / total:5.0%}")
    lines.append(f"  {f'queueing (prefetcher, depth {s.prefetch})':50s} {queue_cost(s.dataset, s.prefetch):7.3f}ms per batch "
                 f"x {n // 256} batches")
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(14)
    lines.append(buf.getvalue().split("\n", 6)[-1])
    return "\n".join(lines)


def read_rates(store: str, epochs: int = 2) -> str:
    """Rows/s of the stream's own reader (its decode threads) reading the store's chunks in order, 16 blocks
    a read, and reading the stream's shuffled buffers (the same calls the stream makes, no gather): what a
    block-shuffled read costs in decoding alone (chunks at block ends are decoded by both neighbours)."""
    import time

    import numpy as np

    import omicsdata as od

    ds = od.torch.stream(store, split=None, batch_size=256, shuffle=True, seed=0, device="cpu").dataset
    reader = ds.source.readers[ds.modalities[0]]
    n_obs, step = len(ds.rows), ds.block_rows * 16

    def sequential():
        for a in range(0, n_obs, step):
            reader.read(np.array([a]), np.array([min(n_obs, a + step)]), reuse=True)

    def shuffled():
        shard = ds.plan()
        segs, bsz = shard.segments, shard.batch_sizes
        seg_end, batch_end = np.cumsum(segs[:, 2] - segs[:, 1]), np.cumsum(bsz)
        lo, k = 0, 0
        while lo < batch_end[-1]:  # buffers as iter_worker cuts them: >= buffer_size, on batch boundaries
            j = min(len(bsz) - 1, int(np.searchsorted(batch_end, lo + ds.buffer_size, side="left")))
            hi = int(batch_end[j])
            _, starts, stops, _ = ds._buffer_rows(segs, seg_end, lo, hi)
            reader.read(starts, stops, reuse=k % 2)
            lo, k = hi, k + 1

    out = []
    for name, fn in (("sequential", sequential), ("shuffled buffers", shuffled)):
        fn()  # warm: page cache, scratch buffers, threads
        t0 = time.perf_counter()
        for e in range(epochs):
            ds.set_epoch(e)
            fn()
        out.append(f"{name} {n_obs * epochs / (time.perf_counter() - t0):,.0f} rows/s")
    return "  reads only (the stream's reader, its decode threads): " + "; ".join(out)


def live(store: str, epochs: int = 3) -> str:
    """The stream as it runs (threads on): per epoch (after the first), its wall seconds and the seconds the
    read-ahead thread spent preparing buffers -- reading them (dense: rows placed as decoded) and the rest of
    the gather. Preparing near the whole epoch means the stream waits on it, not on serving batches."""
    import time

    import omicsdata as od

    s = od.torch.stream(store, split=None, batch_size=256, shuffle=True, seed=0, device="cpu")
    ds = s.dataset
    spent = {"prepare": 0.0, "read": 0.0}

    def timed(fn, key):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t0
        return run

    ds._gather = timed(ds._gather, "prepare")
    for m in ds.modalities:
        reader = ds.source.readers[m]
        reader.read = timed(reader.read, "read")
    out = []
    for e in range(epochs):
        spent.update(prepare=0.0, read=0.0)
        t0 = time.perf_counter()
        for _ in s:
            pass
        wall = time.perf_counter() - t0
        if e:
            out.append(f"epoch {e}: {wall:.3f}s, preparing buffers {spent['prepare']:.3f}s (reads "
                       f"{spent['read']:.3f}s, the rest of the gather {spent['prepare'] - spent['read']:.3f}s)")
    return "  live stream (threads on): " + "; ".join(out)


def queue_cost(ds, depth: int, n_batches: int = 200) -> float:
    """Milliseconds per batch to hand ready host batches through the Prefetcher (``depth`` 0: in this
    thread, the CPU default; more: its thread and queue)."""
    import time

    from omicsdata.torch import prefetch

    ds.set_epoch(0)
    first = [b for _, b in zip(range(4), ds.iter_worker())]
    items = [first[i % len(first)] for i in range(n_batches)]
    t0 = time.perf_counter()
    for _ in prefetch.Prefetcher(items, "cpu", depth=depth):
        pass
    return (time.perf_counter() - t0) * 1e3 / n_batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--cells", type=int, default=40000)
    ap.add_argument("--nnz", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "loader"))
    a = ap.parse_args()
    import bench_loader as bl

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for title, store in (("dense", bl.make_dense(out / f"dense-{a.rows}", a.rows)),
                         ("sparse", bl.make_sparse(out / f"sparse-{a.cells}-{a.nnz}", a.cells, a.nnz))):
        print(f"### {title}: {store}\n{profile(str(store))}\n{read_rates(str(store))}\n{live(str(store))}\n")


if __name__ == "__main__":
    main()
