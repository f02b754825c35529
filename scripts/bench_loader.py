#!/usr/bin/env python
"""Loader benchmark: od.torch.stream vs sequential Zarr reads, annbatch, scDataset, naive random access.

    .venv/bin/pip install -e ".[bench]"      # scDataset
    .venv/bin/python scripts/bench_loader.py [--rows 26000] [--cells 100000] [--rounds 3] [--out bench_out/loader]

Builds (once, cached under --out) generated stores in the omicsdata store format:

* dense bulk:  ``rows`` x 20,000 float32 (26,000 rows = 2.08 GB uncompressed), Poisson counts,
  chunks of whole rows (~2 MiB), the store's default codec -- plus a 1/10 copy to check that
  the stream's peak RSS does not grow with the store;
* sparse single-cell: ``cells`` x 20,000 CSR, ~2% non-zero counts.

Each loader runs in its own fresh process (so peak RSS is its own), single
process (no DataLoader workers), batch size 256, over --epochs epochs (2; the
first pays one-off costs, opening and first allocations) or until --max-seconds,
after a warm-up sequential pass so every method reads from the
page cache. The methods run in turn, --rounds times (the order rotating each
round), and the table gives each one's median: a shared machine's speed drifts
by tens of percent over minutes, and interleaving spreads the drift over all.
annbatch needs Python >= 3.12: the script makes ``.venv312`` with
pyenv's 3.12 and installs annbatch there (skipped, and said so, if that fails).
Prints one table per shape with samples/s, MB/s (uncompressed bytes served),
peak RSS and ratios; then the GPU prefetch figure, or "no GPU: unmeasured".
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


def make_sparse(path: Path, cells: int, density: float = 0.02, seed: int = 1) -> Path:
    import anndata as ad
    import mudata as md
    import pandas as pd
    import scipy.sparse as sp

    import omicsdata as od

    if (path / "manifest.json").is_file():
        return path
    rng = np.random.default_rng(seed)
    blocks = []
    thr = int(density * 256)
    for s in range(0, cells, 4000):
        n = min(4000, cells - s)
        mask = rng.integers(0, 256, size=(n, N_FEATURES), dtype=np.uint8) < thr
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


# ---------------------------------------------------------------- runners (each in its own process)
def _rss_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the pre-exec parent's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


EPOCHS = 2  # set from --epochs


def _loop(epoch_iter, max_s, nbytes_of):
    """Serve EPOCHS epochs (``epoch_iter(e)`` -> that epoch's batches), or until ``max_s`` seconds."""
    t0 = time.perf_counter()
    n = nb = 0
    for e in range(EPOCHS):
        for b in epoch_iter(e):
            k, by = nbytes_of(b)
            n += k
            nb += by
            if time.perf_counter() - t0 > max_s:
                return n, nb, time.perf_counter() - t0
    return n, nb, time.perf_counter() - t0


def run_method(method: str, store: str, max_s: float) -> dict:
    import zarr

    root = zarr.open_group(store, mode="r")
    man = json.loads((Path(store) / "manifest.json").read_text())
    meta = man["modalities"]["rna"]
    sparse = meta["storage"] == "csr"
    n_obs = meta["shape"][0]
    p = meta["shape"][1]

    def dense_bytes(x):
        return x.shape[0], x.shape[0] * p * 4

    def csr_bytes(rows, nnz):
        return rows, nnz * 8  # float32 values + int32 column indices

    if method in ("stream", "stream-noshuffle"):
        import omicsdata as od

        s = od.torch.stream(store, split=None, batch_size=BATCH, shuffle=(method == "stream"), seed=0, device="cpu")

        def nbytes(b):
            x = b["rna"]
            if x.layout != __import__("torch").strided:
                return csr_bytes(x.shape[0], x.values().numel())
            return dense_bytes(x)
        def epoch(e):
            s.set_epoch(e)
            return iter(s)
        n, nb, dt = _loop(epoch, max_s, nbytes)
    elif method == "sequential":
        if sparse:
            g = root["mod/rna/X"]
            data, ind, ptr = g["data"], g["indices"], g["indptr"]
            step = int(data.chunks[0])
            nnz = data.shape[0]

            def gen(e):
                for a in range(0, nnz, step):
                    d = data[a:a + step]
                    i = ind[a:a + step]
                    yield d, i
            pt = np.asarray(ptr[:])
            _, nb, dt = _loop(gen, max_s, lambda di: (0, di[0].nbytes + di[1].nbytes))
            full, rest = divmod(nb // 8, int(pt[-1]))  # samples: whole epochs plus the rows of the part read
            n = full * n_obs + int(np.searchsorted(pt, rest, side="right") - 1)
        else:
            X = root["mod/rna/X"]
            step = int(X.chunks[0]) * 16

            def gen(e):
                for a in range(0, n_obs, step):
                    yield X[a:a + step]
            n, nb, dt = _loop(gen, max_s, dense_bytes)
    elif method == "annbatch":
        import anndata as ad
        from annbatch import Loader

        Xz = ad.io.sparse_dataset(root["mod/rna/X"]) if sparse else root["mod/rna/X"]
        # dense: 256-row slices x 16 = 4,096-row buffer (~330 MB, like our 256 MiB cap);
        # sparse: annbatch's defaults (512 x 32)
        chunk, pre = (512, 32) if sparse else (256, 16)
        loader = Loader(chunk_size=chunk, preload_nchunks=pre, batch_size=BATCH, shuffle=True,
                        rng=np.random.default_rng(0))
        loader.add_dataset(Xz)

        def nbytes(out):
            x = out["X"] if isinstance(out, dict) else (out[0] if isinstance(out, tuple) else out.X if hasattr(out, "X") else out)
            if hasattr(x, "nnz"):
                return csr_bytes(x.shape[0], x.nnz)
            return dense_bytes(x)
        n, nb, dt = _loop(lambda e: iter(loader), max_s, nbytes)
    elif method == "scdataset":
        import anndata as ad
        from scdataset import BlockShuffling, scDataset

        def runs(c, idx):  # fetch_callback: one slice read per run of consecutive rows
            idx = np.sort(idx)
            brk = np.flatnonzero(np.diff(idx) != 1) + 1
            parts = [c[int(r[0]):int(r[-1]) + 1] for r in np.split(idx, brk)]
            if sparse:
                import scipy.sparse as sp
                return sp.vstack(parts, format="csr")
            return np.concatenate(parts)

        fetch = runs
        if sparse:
            coll = ad.io.sparse_dataset(root["mod/rna/X"])
            block = 256
        else:
            coll = root["mod/rna/X"]
            block = int(meta["chunks"][0])
        class Sized:  # scDataset wants len(); zarr arrays / anndata CSR datasets have .shape
            def __init__(self, x):
                self.x = x

            def __len__(self):
                return n_obs

            def __getitem__(self, idx):
                return self.x[idx]

        coll = Sized(coll)
        fetch0 = fetch
        fetch = lambda c, idx: fetch0(c.x, idx)  # noqa: E731
        ds = scDataset(coll, BlockShuffling(block_size=block), batch_size=BATCH, fetch_factor=16,
                       fetch_callback=fetch, seed=0)

        def nbytes(x):
            if hasattr(x, "nnz"):
                return csr_bytes(x.shape[0], x.nnz)
            return dense_bytes(x)
        n, nb, dt = _loop(lambda e: iter(ds), max_s, nbytes)
    elif method == "naive":
        import anndata as ad
        import torch

        Xz = ad.io.sparse_dataset(root["mod/rna/X"]) if sparse else root["mod/rna/X"]

        class Naive(torch.utils.data.Dataset):  # anndata/zarr backed X, one row per __getitem__
            def __len__(self):
                return n_obs

            def __getitem__(self, i):
                r = Xz[i:i + 1]
                return r if sparse else r[0]

        def coll(rows):
            if sparse:
                import scipy.sparse as sp
                return sp.vstack(rows, format="csr")
            return np.stack(rows)
        dl = torch.utils.data.DataLoader(Naive(), batch_size=BATCH, shuffle=True, collate_fn=coll,
                                         generator=torch.Generator().manual_seed(0))

        def nbytes(x):
            if hasattr(x, "nnz"):
                return csr_bytes(x.shape[0], x.nnz)
            return dense_bytes(x)
        n, nb, dt = _loop(lambda e: iter(dl), max_s, nbytes)
    else:
        raise SystemExit(f"unknown method {method}")
    return {"method": method, "samples": int(n), "seconds": dt, "bytes": int(nb),
            "samples_per_s": n / dt, "mb_per_s": nb / dt / 1e6, "peak_rss_mb": _rss_mb()}


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
    med["rounds"] = len(ok)
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


def table(title: str, results: list[dict | tuple]) -> str:
    ok = {r["method"]: r for r in results if isinstance(r, dict)}
    best_other = max([ok[m]["samples_per_s"] for m in ("annbatch", "scdataset") if m in ok] or [float("nan")])
    seq = ok.get("sequential", {}).get("samples_per_s", float("nan"))
    lines = [f"### {title}", "", "median of the interleaved rounds; peak RSS: the largest seen", "",
             "| loader | samples | samples/s | MB/s | peak RSS MB | vs best of annbatch/scDataset | vs sequential |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        if isinstance(r, tuple):
            lines.append(f"| {r[0]} | {r[1]} | | | | | |")
            continue
        lines.append(f"| {r['label']} | {r['samples']:,} | {r['samples_per_s']:,.0f} | {r['mb_per_s']:,.0f} | "
                     f"{r['peak_rss_mb']:,.0f} | {r['samples_per_s'] / best_other:.2f}x | "
                     f"{r['samples_per_s'] / seq:.0%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=26_000, help="dense bulk rows (26,000 x 20,000 float32 = 2.08 GB)")
    ap.add_argument("--cells", type=int, default=100_000, help="sparse single-cell rows")
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "loader"))
    ap.add_argument("--max-seconds", type=float, default=15.0, help="cap per loader run")
    ap.add_argument("--naive-seconds", type=float, default=5.0, help="cap per run of the (slow) naive loader")
    ap.add_argument("--rounds", type=int, default=3, help="runs per loader, interleaved; the median is reported")
    ap.add_argument("--epochs", type=int, default=2,
                    help="epochs per run (the first pays one-off costs: opening, first allocations, thread start)")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    a = ap.parse_args()
    global EPOCHS
    EPOCHS = a.epochs
    if a.run:
        print(json.dumps(run_method(a.run, a.store, a.max_seconds)))
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dense = make_dense(out / f"dense-{a.rows}", a.rows)
    dense_small = make_dense(out / f"dense-{a.rows // 10}", a.rows // 10)
    sparse = make_sparse(out / f"sparse-{a.cells}", a.cells)
    print(f"stores ready in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    py312 = ensure_venv312()
    me = sys.executable
    labels = {"sequential": "sequential Zarr chunk read (upper bound)", "stream": "od.torch.stream shuffled",
              "stream-noshuffle": "od.torch.stream unshuffled", "annbatch": "annbatch 0.3 (Loader, shuffled)",
              "scdataset": "scDataset (BlockShuffling)", "naive": "naive per-sample random access (zarr-backed X)"}
    report = []
    for title, store in (("dense bulk", dense), ("sparse single-cell", sparse)):
        man = json.loads((store / "manifest.json").read_text())["modalities"]["rna"]
        size = man["shape"][0] * man["shape"][1] * 4 / 1e9
        _child(me, "sequential", store, a.max_seconds)  # warm the page cache
        methods = ["sequential", "stream", "stream-noshuffle", "annbatch", "scdataset", "naive"]
        runs: dict[str, list] = {m: [] for m in methods}
        for rnd in range(a.rounds):
            for m in methods[rnd % len(methods):] + methods[:rnd % len(methods)]:
                py = py312 if m == "annbatch" else me
                if py is None:
                    runs[m].append("not run: no Python 3.12 venv")
                    continue
                r = _child(py, m, store, a.naive_seconds if m == "naive" else a.max_seconds)
                runs[m].append(r)
                print(f"{title} round {rnd} {m}: {r if isinstance(r, str) else round(r['samples_per_s'])}",
                      file=sys.stderr)
        results = []
        for m in methods:
            r = _median_run(runs[m])
            if isinstance(r, str):
                results.append((labels[m], r))
            else:
                r["label"] = labels[m]
                results.append(r)
        rows = f"{man['shape'][0]:,} x {man['shape'][1]:,} ({man['storage']}, {size:.2f} GB if dense)"
        report.append(table(f"{title}: {rows}, chunks {man['chunks']}", results))
    small = _median_run([_child(me, "stream", dense_small, a.max_seconds) for _ in range(a.rounds)])
    big = _median_run([_child(me, "stream", dense, a.max_seconds) for _ in range(a.rounds)])
    report.append(f"Peak RSS of the shuffled stream: {small['peak_rss_mb']:,.0f} MB on {a.rows // 10:,} rows "
                  f"vs {big['peak_rss_mb']:,.0f} MB on {a.rows:,} rows (store 10x larger; ratio "
                  f"{big['peak_rss_mb'] / small['peak_rss_mb']:.2f})")
    report.append(gpu_figure())
    print("\n\n".join(report))
    print(f"\n(total {time.perf_counter() - t0:.0f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
