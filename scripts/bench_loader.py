#!/usr/bin/env python
"""Loader benchmark: od.torch.stream vs the sequential read of the same chunks and annbatch, side by side.

    .venv/bin/python scripts/bench_loader.py                      # scaled: 4,000 dense rows, 40,000 cells
    .venv/bin/python scripts/bench_loader.py --rows 10000 --cells 100000   # the issue's size

Builds (once, cached under --out) from generated AnnData:

* dense bulk: ``rows`` x 20,000 float32 Poisson counts;
* sparse single-cell: ``cells`` x 20,000 CSR, ``--nnz`` (500) non-zero counts per cell;

each written twice from the same matrix, by each loader's own writer: ``od.write_store`` (our store) and
annbatch's ``write_sharded`` (its defaults: chunks of 64 rows, ~1 GB shards). Then, per shape, these run
in turn, --rounds times (the order rotating), each in a fresh process (so peak RSS is its own), batch 256,
--epochs epochs (2) or until --max-seconds:

* ``sequential``: our store's chunks read in order, 16 blocks a read, by the stream's own reader (the
  bound: a block-shuffled stream reads the same chunks); ``sequential-zarr``: the same with zarr's reads;
* ``stream``: ``od.torch.stream(shuffle=True)`` at its defaults on our store;
* ``annbatch``: ``annbatch.Loader(shuffle=True, batch_size=256)`` at its defaults on its own store;
* ``annbatch-our-store``: the configuration this bench used before (annbatch on our store; sparse 512 x 32,
  dense 256 x 16);
* ``stream-annbatch-store``: our stream on annbatch's store, read in place.

Each run checks exact-once itself (every row served once per completed epoch, from the batches' row
indices; annbatch with ``return_index=True``). The table gives each one's median samples/s (peak RSS: the
largest seen): a shared machine drifts by tens of percent over minutes, and interleaving spreads it over
all. Then the stream's peak RSS on stores 10x apart (``--rss-scale``: 0.1, the default, compares with a
store a tenth the size; 10 builds and compares with one ten times larger), and the GPU figure (or
"unmeasured").
annbatch needs Python >= 3.12: the script makes ``.venv312`` with pyenv's 3.12 and installs annbatch
there (skipped, and said so, if that fails). ``--also naive,scdataset`` adds those loaders.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_FEATURES = 20_000
BATCH = 256
VENV312 = ROOT / ".venv312"
PY312 = Path.home() / ".pyenv/versions/3.12.1/bin/python"


# ---------------------------------------------------------------- stores
def make_dense(path: Path, rows: int, seed: int = 0) -> Path:
    import anndata as ad
    import dask
    import dask.array as da
    import mudata as md
    import pandas as pd

    import omicsdata as od

    if (path / "manifest.json").is_file():
        return path
    block = 1000

    def gen(i, n):
        rng = np.random.default_rng([seed, i])
        lam = np.exp(rng.normal(0.3, 1.2, N_FEATURES)).astype(np.float32)
        return rng.poisson(lam, size=(n, N_FEATURES)).astype(np.float32)

    parts = [da.from_delayed(dask.delayed(gen)(i, min(block, rows - s)), shape=(min(block, rows - s), N_FEATURES),
                             dtype=np.float32) for i, s in enumerate(range(0, rows, block))]
    X = da.concatenate(parts)
    ids = [f"b{i}" for i in range(rows)]
    obs = pd.DataFrame({"split": "train"}, index=ids)
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=[f"g{j}" for j in range(N_FEATURES)]))
    m = md.MuData({"rna": a})
    m.obs = obs
    with dask.config.set(scheduler="threads"):
        od.write_store(m, path, dataset="bench-dense")
    return path


def make_sparse(path: Path, cells: int, nnz: int = 500, seed: int = 1) -> Path:
    import anndata as ad
    import mudata as md
    import pandas as pd
    import scipy.sparse as sp

    import omicsdata as od

    if (path / "manifest.json").is_file():
        return path
    rng = np.random.default_rng(seed)
    blocks = []
    thr = int(nnz / N_FEATURES * 65536)
    for s in range(0, cells, 4000):
        n = min(4000, cells - s)
        mask = rng.integers(0, 65536, size=(n, N_FEATURES), dtype=np.uint16) < thr
        r, c = np.nonzero(mask)
        vals = (1 + rng.poisson(1.0, len(r))).astype(np.float32)
        blocks.append(sp.csr_matrix((vals, (r, c)), shape=(n, N_FEATURES)))
    X = sp.vstack(blocks, format="csr")
    ids = [f"c{i}" for i in range(cells)]
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=[f"g{j}" for j in range(N_FEATURES)]))
    m = md.MuData({"rna": a})
    m.obs = pd.DataFrame({"split": "train"}, index=ids)
    od.write_store(m, path, dataset="bench-sparse")
    return path


def make_annbatch(src: Path, dst: Path) -> None:
    """(Python 3.12 venv) annbatch's own store of the same matrix: ``write_sharded`` at its defaults."""
    import anndata as ad
    import pandas as pd
    import zarr
    from annbatch import write_sharded

    root = zarr.open_group(str(src), mode="r")
    X = ad.io.read_elem(root["mod/rna/X"])
    n, p = X.shape
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"r{i}" for i in range(n)]),
                   var=pd.DataFrame(index=[f"g{j}" for j in range(p)]))
    write_sharded(zarr.open_group(str(dst), mode="w", zarr_format=3), a)


# ---------------------------------------------------------------- runners (each in its own process)
def _rss_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the pre-exec parent's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


EPOCHS = 2  # set from --epochs
LATER = [0, 0.0]  # bytes and seconds of the epochs after the first, of the latest _loop


def _loop(epoch_iter, max_s, nbytes_of, index_of=None, n_obs=0):
    """Serve EPOCHS epochs (``epoch_iter(e)`` -> that epoch's batches), or until ``max_s`` seconds.

    With ``index_of`` (batch -> row indices) every completed epoch is checked to serve each of the
    ``n_obs`` rows exactly once; returns (samples, bytes, seconds, exact-once verdict). The bytes and
    seconds of the epochs after the first (no one-off costs: first allocations, threads) go to ``LATER``.
    """
    t0 = time.perf_counter()
    n = nb = 0
    done, bad = 0, []
    LATER[:] = [0, 0.0]
    for e in range(EPOCHS):
        seen = []
        te, nbe = time.perf_counter(), nb
        for b in epoch_iter(e):
            k, by = nbytes_of(b)
            n += k
            nb += by
            if index_of is not None:
                seen.append(np.asarray(index_of(b)).reshape(-1))
            if time.perf_counter() - t0 > max_s:
                if e:
                    LATER[:] = [LATER[0] + nb - nbe, LATER[1] + time.perf_counter() - te]
                return n, nb, time.perf_counter() - t0, _verdict(done, bad, index_of)
        if e:
            LATER[:] = [LATER[0] + nb - nbe, LATER[1] + time.perf_counter() - te]
        if index_of is not None:
            idx = np.concatenate(seen) if seen else np.zeros(0, np.int64)
            if len(idx) != n_obs or not np.array_equal(np.sort(idx), np.arange(n_obs)):
                bad.append(f"epoch {e}: {len(idx)} rows, {len(np.unique(idx))} distinct of {n_obs}")
            done += 1
    return n, nb, time.perf_counter() - t0, _verdict(done, bad, index_of)


def _verdict(done, bad, index_of) -> str:
    if index_of is None:
        return "n/a"
    if bad:
        return "NO: " + "; ".join(bad)
    return f"yes ({done} epochs)" if done else "no full epoch in time"


def _csr_bytes(rows, nnz):
    return rows, nnz * 8  # float32 values + int32 column indices


def _batch_bytes(x, p):
    """(rows, bytes served) of a batch matrix: torch dense/CSR, numpy, scipy."""
    if type(x).__module__.startswith("torch") and str(x.layout) == "torch.sparse_csr":  # no torch import in 3.12
        return _csr_bytes(x.shape[0], x.values().numel())
    if hasattr(x, "nnz"):
        return _csr_bytes(x.shape[0], x.nnz)
    return x.shape[0], x.shape[0] * p * 4


def _open_x(store: str):
    """(X element of the store as anndata reads it lazily, n_obs, n_features, sparse?) for ours or annbatch's."""
    import anndata as ad
    import zarr

    root = zarr.open_group(store, mode="r")
    key = "mod/rna/X" if "mod" in root else "X"
    node = root[key]
    sparse = not isinstance(node, zarr.Array)
    X = ad.io.sparse_dataset(node) if sparse else node
    return X, int(X.shape[0]), int(X.shape[1]), sparse


def run_method(method: str, store: str, max_s: float) -> dict:
    X, n_obs, p, sparse = _open_x(store)
    exact = "n/a"

    if method in ("stream", "stream-annbatch-store"):
        import omicsdata as od

        s = od.torch.stream(store, split=None, batch_size=BATCH, shuffle=True, seed=0, device="cpu")
        mod = s.dataset.modalities[0]

        def epoch(e):
            s.set_epoch(e)
            return iter(s)
        n, nb, dt, exact = _loop(epoch, max_s, lambda b: _batch_bytes(b[mod], p), lambda b: b["index"].numpy(), n_obs)
    elif method == "sequential":  # the stream's own reader over its blocks, in order, 16 blocks a read
        from omicsdata import storage

        st = storage.open(store)
        r = st.readers["rna"]
        step = st.block_rows() * 16

        def gen(e):
            for a in range(0, n_obs, step):
                yield r.read(np.array([a]), np.array([min(n_obs, a + step)]), reuse=True)

        def size(b):
            return (len(b.indptr) - 1, len(b.data) * 8) if sparse else (b.shape[0], b.shape[0] * p * 4)
        n, nb, dt, _ = _loop(gen, max_s, size)
    elif method == "sequential-zarr":
        import zarr

        g = zarr.open_group(store, mode="r")["mod/rna/X"]
        if sparse:
            data, ind, ptr = g["data"], g["indices"], g["indptr"]
            step = int(data.chunks[0])
            nnz = data.shape[0]

            def gen(e):
                for a in range(0, nnz, step):
                    yield data[a:a + step], ind[a:a + step]
            pt = np.asarray(ptr[:])
            _, nb, dt, _ = _loop(gen, max_s, lambda di: (0, di[0].nbytes + di[1].nbytes))
            full, rest = divmod(nb // 8, int(pt[-1]))  # samples: whole epochs plus the rows of the part read
            n = full * n_obs + int(np.searchsorted(pt, rest, side="right") - 1)
        else:
            step = int(g.chunks[0]) * 16

            def gen(e):
                for a in range(0, n_obs, step):
                    yield g[a:a + step]
            n, nb, dt, _ = _loop(gen, max_s, lambda x: _batch_bytes(x, p))
    elif method in ("annbatch", "annbatch-our-store"):
        import torch  # noqa: F401 - a training process has torch loaded (our stream's runs do too): same RSS base
        from annbatch import Loader

        if method == "annbatch":  # its defaults (chunk_size 512, preload_nchunks 32) on its own store
            loader = Loader(batch_size=BATCH, shuffle=True, return_index=True, rng=np.random.default_rng(0))
        else:  # the configuration used before: sparse 512 x 32, dense 256 x 16 (~330 MB, like our old cap)
            chunk, pre = (512, 32) if sparse else (256, 16)
            loader = Loader(chunk_size=chunk, preload_nchunks=pre, batch_size=BATCH, shuffle=True,
                            return_index=True, rng=np.random.default_rng(0))
        loader.add_dataset(X)
        n, nb, dt, exact = _loop(lambda e: iter(loader), max_s, lambda out: _batch_bytes(out["X"], p),
                                 lambda out: out["index"], n_obs)
    elif method in ("scdataset", "naive"):
        n, nb, dt = _other(method, X, n_obs, p, sparse, max_s)
    else:
        raise SystemExit(f"unknown method {method}")
    later = LATER[0] / nb * n / LATER[1] if LATER[1] > 0 and nb else float("nan")  # samples in proportion to bytes
    return {"method": method, "samples": int(n), "seconds": dt, "bytes": int(nb), "exact_once": exact,
            "samples_per_s": n / dt, "later_samples_per_s": later, "mb_per_s": nb / dt / 1e6,
            "peak_rss_mb": _rss_mb()}


def _other(method, X, n_obs, p, sparse, max_s):
    """scDataset (block shuffling, one slice per run of rows) or naive per-row random access."""
    import scipy.sparse as sp
    import torch

    def stack(parts):
        return sp.vstack(parts, format="csr") if sparse else np.concatenate(parts)

    if method == "scdataset":
        from scdataset import BlockShuffling, scDataset

        class Sized:  # scDataset wants len()
            def __len__(self):
                return n_obs

            def __getitem__(self, idx):
                return X[idx]

        def fetch(c, idx):
            idx = np.sort(idx)
            brk = np.flatnonzero(np.diff(idx) != 1) + 1
            return stack([X[int(r[0]):int(r[-1]) + 1] for r in np.split(idx, brk)])
        ds = scDataset(Sized(), BlockShuffling(block_size=256), batch_size=BATCH, fetch_factor=16,
                       fetch_callback=fetch, seed=0)
        n, nb, dt, _ = _loop(lambda e: iter(ds), max_s, lambda x: _batch_bytes(x, p))
        return n, nb, dt

    class Naive(torch.utils.data.Dataset):  # one row per __getitem__
        def __len__(self):
            return n_obs

        def __getitem__(self, i):
            r = X[i:i + 1]
            return r if sparse else r[0]

    dl = torch.utils.data.DataLoader(Naive(), batch_size=BATCH, shuffle=True,
                                     collate_fn=lambda rows: sp.vstack(rows, format="csr") if sparse else np.stack(rows),
                                     generator=torch.Generator().manual_seed(0))
    n, nb, dt, _ = _loop(lambda e: iter(dl), max_s, lambda x: _batch_bytes(x, p))
    return n, nb, dt


def _child(python: str, method: str, store: Path, max_s: float) -> dict | str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [python, str(Path(__file__).resolve()), "--run", method, "--store", str(store), "--max-seconds", str(max_s),
           "--epochs", str(EPOCHS)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else str(p.returncode)
        if "No module named 'scdataset'" in last:
            last += " (pip install -e '.[bench]')"
        return f"failed: {last}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def _median_run(runs: list) -> dict | str:
    """The run with the median samples/s (peak RSS: the largest seen); a failure if every round failed."""
    ok = sorted((r for r in runs if isinstance(r, dict)), key=lambda r: r["samples_per_s"])
    if not ok:
        return runs[0]
    med = dict(ok[len(ok) // 2])
    med["peak_rss_mb"] = max(r["peak_rss_mb"] for r in ok)
    later = sorted(r.get("later_samples_per_s", float("nan")) for r in ok)
    med["later_samples_per_s"] = later[len(later) // 2]
    med["rounds"] = len(ok)
    worst = [r["exact_once"] for r in ok if str(r.get("exact_once", "")).startswith("NO")]
    med["exact_once"] = worst[0] if worst else med.get("exact_once", "n/a")
    return med


def ensure_venv312() -> str | None:
    py = VENV312 / "bin/python"
    if py.exists():
        ok = subprocess.run([str(py), "-c", "import annbatch, zarr"], capture_output=True).returncode == 0
        if ok:
            return str(py)
    if not PY312.exists():
        return None
    subprocess.run([str(PY312), "-m", "venv", str(VENV312)], check=False)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "annbatch", "psutil"], capture_output=True)
    return str(py) if r.returncode == 0 else None


def gpu_figure() -> str:
    import torch

    if not torch.cuda.is_available():
        return "GPU prefetch (host-to-device): no GPU: unmeasured"
    from omicsdata.torch.prefetch import Prefetcher

    dev = torch.device("cuda")
    host = [{"x": torch.randn(BATCH, N_FEATURES)} for _ in range(8)]
    total = sum(b["x"].numel() * 4 for b in host) * 8
    pinned = torch.empty(BATCH, N_FEATURES, pin_memory=True)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(8):
        for b in host:
            pinned.copy_(b["x"])
            pinned.to(dev, non_blocking=True)
    torch.cuda.synchronize()
    plain = total / (time.perf_counter() - t0) / 1e6
    t0 = time.perf_counter()
    for _ in range(8):
        for b in Prefetcher(host, dev):
            b["x"].sum()
    torch.cuda.synchronize()
    pre = total / (time.perf_counter() - t0) / 1e6
    return (f"GPU prefetch (host-to-device, {torch.cuda.get_device_name()}): prefetcher {pre:,.0f} MB/s vs plain "
            f"pinned copy {plain:,.0f} MB/s (ratio {pre / plain:.2f})")


LABELS = {"sequential": "sequential read of our store's chunks, our reader (bound)",
          "sequential-zarr": "sequential read of our store's chunks, zarr", "stream": "od.torch.stream shuffled",
          "annbatch": "annbatch Loader(shuffle=True), defaults", "annbatch-our-store": "annbatch, config used before",
          "stream-annbatch-store": "od.torch.stream shuffled", "scdataset": "scDataset (BlockShuffling)",
          "naive": "naive per-row random access"}
STORE_OF = {"annbatch": "annbatch write_sharded", "stream-annbatch-store": "annbatch write_sharded"}


def table(title: str, results: list[dict | tuple]) -> str:
    ok = {r["method"]: r for r in results if isinstance(r, dict)}
    base = ok.get("annbatch", {}).get("samples_per_s", float("nan"))
    seq = ok.get("sequential", {}).get("samples_per_s", float("nan"))
    later_seq = ok.get("sequential", {}).get("later_samples_per_s", float("nan"))
    lines = [f"### {title}", "",
             "median of the interleaved rounds (each a fresh process); peak RSS: the largest seen; 'after epoch 1': "
             "the epochs after the first (no one-off costs), median", "",
             "| loader | store | samples | samples/s | MB/s | peak RSS MB | exact-once | vs annbatch defaults "
             "| vs sequential | samples/s after epoch 1 | vs sequential after epoch 1 |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        if isinstance(r, tuple):
            lines.append(f"| {LABELS[r[0]]} | {STORE_OF.get(r[0], 'od.write_store')} | {r[1]} | | | | | | | | |")
            continue
        later = r.get("later_samples_per_s", float("nan"))
        lines.append(f"| {LABELS[r['method']]} | {STORE_OF.get(r['method'], 'od.write_store')} | {r['samples']:,} | "
                     f"{r['samples_per_s']:,.0f} | {r['mb_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['exact_once']} | {r['samples_per_s'] / base:.2f}x | {r['samples_per_s'] / seq:.0%} | "
                     f"{later:,.0f} | {later / later_seq:.0%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4_000, help="dense bulk rows (the issue: 10,000)")
    ap.add_argument("--cells", type=int, default=40_000, help="sparse single-cell rows (the issue: 100,000)")
    ap.add_argument("--nnz", type=int, default=500, help="non-zeros per cell")
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "loader"))
    ap.add_argument("--max-seconds", type=float, default=30.0, help="cap per loader run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per loader, interleaved; the median is reported")
    ap.add_argument("--epochs", type=int, default=2,
                    help="epochs per run (the first pays one-off costs: opening, first allocations, thread start)")
    ap.add_argument("--also", default="", help="extra loaders: naive,scdataset")
    ap.add_argument("--shapes", default="dense,sparse")
    ap.add_argument("--rss-scale", type=float, default=0.1,
                    help="the peak-RSS line compares the stream on the main store with one this many times its "
                         "size (default 0.1; 10 builds stores 10x larger: 100,000 dense rows are ~3 GB on disk)")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--dst", help=argparse.SUPPRESS)
    a = ap.parse_args()
    global EPOCHS
    EPOCHS = a.epochs
    if a.run == "make-annbatch":
        make_annbatch(Path(a.store), Path(a.dst))
        return
    if a.run:
        print(json.dumps(run_method(a.run, a.store, a.max_seconds)))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    py312 = ensure_venv312()
    me = sys.executable
    stores = {}
    if "dense" in a.shapes:
        stores["dense bulk"] = [make_dense(out / f"dense-{n}", n) for n in (a.rows, int(a.rows * a.rss_scale))]
    if "sparse" in a.shapes:
        stores["sparse single-cell"] = [make_sparse(out / f"sparse-{n}-{a.nnz}", n, a.nnz)
                                        for n in (a.cells, int(a.cells * a.rss_scale))]
    theirs = {}
    for title, (big, _) in stores.items():
        theirs[title] = Path(str(big) + "-annbatch.zarr")
        if py312 and not (theirs[title] / "zarr.json").is_file():
            subprocess.run([py312, str(Path(__file__).resolve()), "--run", "make-annbatch", "--store", str(big),
                            "--dst", str(theirs[title])], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    print(f"stores ready in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    report = []
    for title, (store, small) in stores.items():
        man = json.loads((store / "manifest.json").read_text())["modalities"]["rna"]
        _child(me, "sequential", store, a.max_seconds)  # warm the page cache
        methods = ["sequential", "sequential-zarr", "stream", "annbatch", "annbatch-our-store", "stream-annbatch-store"]
        methods += [m for m in a.also.split(",") if m]
        runs: dict[str, list] = {m: [] for m in methods}
        for rnd in range(a.rounds):
            for m in methods[rnd % len(methods):] + methods[:rnd % len(methods)]:
                py = py312 if m.startswith("annbatch") else me
                where = theirs[title] if m in STORE_OF else store
                if py is None:
                    r = "not run: no Python 3.12 venv with annbatch"
                else:
                    r = _child(py, m, where, a.max_seconds)
                runs[m].append(r)
                print(f"{title} round {rnd} {m}: {r if isinstance(r, str) else round(r['samples_per_s'])}",
                      file=sys.stderr)
        results = []
        for m in methods:
            r = _median_run(runs[m])
            results.append((m, r) if isinstance(r, str) else r)
        rows = f"{man['shape'][0]:,} x {man['shape'][1]:,} {man['storage']}"
        report.append(table(f"{title}: {rows}, our chunks {man['chunks']}", results))
        main_run = _median_run(runs["stream"])
        other = _median_run([_child(me, "stream", small, a.max_seconds) for _ in range(a.rounds)])
        if isinstance(main_run, dict) and isinstance(other, dict):
            sm, big = (other, main_run) if a.rss_scale < 1 else (main_run, other)
            n_sm, n_big = sorted((man["shape"][0], int(man["shape"][0] * a.rss_scale)))
            report.append(f"Peak RSS of the shuffled stream ({title}): {sm['peak_rss_mb']:,.0f} MB on "
                          f"{n_sm:,} rows vs {big['peak_rss_mb']:,.0f} MB on {n_big:,} rows "
                          f"(store {n_big / n_sm:.0f}x larger; ratio {big['peak_rss_mb'] / sm['peak_rss_mb']:.2f})")
    report.append(gpu_figure())
    print("\n\n".join(report))
    print(f"\n(total {time.perf_counter() - t0:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
