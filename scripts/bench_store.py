#!/usr/bin/env python
"""Store throughput on demo-pancancer, and the cost of a lazy open.

Default: build ``demo-pancancer`` at 10k patients with full-size features
(``od.build("demo-pancancer", n_patients=10000, full_size=True)``) in a
scratch ``$OMICSDATA_HOME``, then per modality:

* read MB/s: the whole matrix from the store into memory (dask over the
  Zarr row chunks, as ``od.load(...).X.compute()``), uncompressed MB/s;
* write MB/s: ``write_store`` of the in-memory MuData (no simulation cost),
  with each codec of ``--codecs`` side by side in one run.

``--lazy-open``: the measurement of ``tests/test_load.py``: a store with
10 GB of real on-disk chunks, opened lazily; prints seconds and bytes read
(``/proc/self/io`` rchar).

    .venv/bin/python scripts/bench_store.py
    .venv/bin/python scripts/bench_store.py --patients 2000
    .venv/bin/python scripts/bench_store.py --lazy-open
    .venv/bin/python scripts/bench_store.py --verify-cost        # od.load(verify=...) on the 10 GB store
    .venv/bin/python scripts/bench_store.py --chunk-accounting   # manifest-recorded vs write_empty_chunks
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]


def _rchar() -> int:
    with open("/proc/self/io") as fh:
        for line in fh:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no rchar")


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _nbytes(X) -> int:
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes if sp.issparse(X) else X.nbytes


def lazy_open(repeat: int) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from test_load import make_big_store  # the test's own construction

    from omicsdata.store import open_store, read_manifest, store_nbytes

    with tempfile.TemporaryDirectory(prefix="bench-lazy-") as tmp:
        t0 = time.perf_counter()
        path, _, rows, n_chunks = make_big_store(Path(tmp))
        made = time.perf_counter() - t0
        man = read_manifest(path)
        open_store(Path(tmp) / "one-chunk.zarr")  # warm-up (imports)
        times, reads = [], []
        for _ in range(repeat):
            r0, t0 = _rchar(), time.perf_counter()
            m = open_store(path)
            times.append(time.perf_counter() - t0)
            reads.append(_rchar() - r0)
        print(f"store: {path.name}, {store_nbytes(man) / 1e9:.2f} GB of float32 matrices "
              f"({m['rna'].shape[0]:,} x {m['rna'].shape[1]:,}, {n_chunks:,} chunks of {rows} rows), "
              f"{_du(path) / 1e6:.0f} MB on disk, made in {made:.1f} s\n")
        print("| lazy open | best | median | worst |")
        print("|---|---|---|---|")
        print(f"| seconds | {min(times):.3f} | {np.median(times):.3f} | {max(times):.3f} |")
        print(f"| MB read (rchar) | {min(reads) / 1e6:.2f} | {np.median(reads) / 1e6:.2f} | {max(reads) / 1e6:.2f} |")
        print(f"| fraction of matrix bytes read | {min(reads) / store_nbytes(man):.1e} | | {max(reads) / store_nbytes(man):.1e} |")


def verify_cost(repeat: int) -> None:
    """Seconds to open the 10 GB store of ``--lazy-open`` with each ``verify`` mode (best/median of ``repeat``)."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_load import make_big_store

    from omicsdata.store import open_store, read_manifest, store_nbytes

    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        path, _, rows, n_chunks = make_big_store(Path(tmp))
        man = read_manifest(path)
        open_store(Path(tmp) / "one-chunk.zarr")  # warm-up (imports)
        print(f"store: {store_nbytes(man) / 1e9:.2f} GB of float32 matrices, {len(man['files']):,} files "
              f"({n_chunks:,} chunks), {_du(path) / 1e6:.0f} MB on disk, page cache warm\n")
        print("| verify | what it checks | best s | median s | MB read (rchar) |")
        print("|---|---|---|---|---|")
        what = {"none": "manifest only", "fast": "small files re-hashed + every chunk file present (one walk)",
                "full": "every file re-hashed (sha256)"}
        for mode in ("none", "fast", "full"):
            times, reads = [], []
            for _ in range(repeat if mode != "full" else max(1, min(repeat, 2))):
                r0, t0 = _rchar(), time.perf_counter()
                open_store(path, verify=mode)
                times.append(time.perf_counter() - t0)
                reads.append(_rchar() - r0)
            print(f"| {mode} | {what[mode]} | {min(times):.3f} | {np.median(times):.3f} | {np.median(reads) / 1e6:.1f} |")


def chunk_accounting(n: int = 20_000, p: int = 2_000, absent: float = 0.4) -> None:
    """Recording every chunk file in the manifest (what write_store does) vs writing every chunk
    (zarr ``write_empty_chunks``): write seconds, bytes on disk, manifest bytes, on a matrix where
    ``absent`` of the samples lack the modality (zero rows, sorted together as after a merge)."""
    import anndata as ad
    import mudata as md
    import pandas as pd
    import zarr

    from omicsdata.store import write_store

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, p)).astype(np.float32)
    X[int(n * (1 - absent)):] = 0
    m = md.MuData({"rna": ad.AnnData(X=X, obs=pd.DataFrame(index=[f"s{i}" for i in range(n)]))})
    print(f"| chunks of a {n:,} x {p:,} float32 matrix, {absent:.0%} zero rows | write s | files | MB on disk | "
          "manifest kB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-chunks-") as tmp:
        for label, empty in (("record written chunks in the manifest (chosen)", False),
                             ("write_empty_chunks=True", True)):
            out = Path(tmp) / f"s-{empty}.zarr"
            with zarr.config.set({"array.write_empty_chunks": empty}):
                t0 = time.perf_counter()
                write_store(m, out)
                dt = time.perf_counter() - t0
            files = [f for f in out.rglob("*") if f.is_file()]
            print(f"| {label} | {dt:.2f} | {len(files):,} | {_du(out) / 1e6:.1f} | "
                  f"{(out / 'manifest.json').stat().st_size / 1e3:.1f} |")


def throughput(n_patients: int, full_size: bool, codecs: list[str]) -> None:
    import omicsdata as od
    from omicsdata.store import DEFAULT_CODEC, open_store, write_store

    codecs = codecs or [DEFAULT_CODEC]
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        os.environ["OMICSDATA_HOME"] = tmp
        t0 = time.perf_counter()
        path = od.build("demo-pancancer", n_patients=n_patients, full_size=full_size)
        t_build = time.perf_counter() - t0
        man = od.store.read_manifest(path)
        lazy = open_store(path)
        print(f"demo-pancancer, {n_patients:,} patients, full_size={full_size}; od.build (simulation + write, "
              f"codec {man['modalities']['rna']['codec']}): {t_build:.1f} s, {_du(path) / 1e6:.0f} MB on disk\n")
        mem = {}
        rows_read = []
        for name in lazy.mod:
            t0 = time.perf_counter()
            X = lazy[name].X.compute()
            dt = time.perf_counter() - t0
            mem[name] = X
            rows_read.append((name, lazy[name].shape, _nbytes(X), dt))
        eager = od.load(path, lazy=False)
        import mudata as md
        md.set_options(pull_on_update=False)
        results = {}
        for codec in codecs:
            results[codec] = {}
            for name in lazy.mod:
                sub = md.MuData({name: eager[name]})
                sub.obs = eager.obs[[f"has_{name}"]].copy()
                out = Path(tmp) / f"w-{codec}-{name}.zarr"
                t0 = time.perf_counter()
                write_store(sub, out, codec=codec)
                dt = time.perf_counter() - t0
                results[codec][name] = (dt, _du(out))
                import shutil
                shutil.rmtree(out)
        head = "| modality | shape | storage | MB (uncompressed) | read MB/s | " + \
            " | ".join(f"write MB/s {c} | ratio {c}" for c in codecs) + " |"
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        tot_mb = tot_read = 0.0
        tot_w = {c: [0.0, 0] for c in codecs}
        for name, shape, nb, dt in rows_read:
            mb = nb / 1e6
            tot_mb += mb
            tot_read += dt
            cells = []
            for c in codecs:
                wdt, size = results[c][name]
                tot_w[c][0] += wdt
                tot_w[c][1] += size
                cells.append(f"{mb / wdt:.0f} | {nb / size:.2f}")
            storage = man["modalities"][name]["storage"]
            print(f"| {name} | {shape[0]:,} x {shape[1]:,} | {storage} | {mb:.0f} | {mb / dt:.0f} | " + " | ".join(cells) + " |")
        cells = [f"{tot_mb / tot_w[c][0]:.0f} | {tot_mb * 1e6 / tot_w[c][1]:.2f}" for c in codecs]
        print(f"| all | | | {tot_mb:.0f} | {tot_mb / tot_read:.0f} | " + " | ".join(cells) + " |")
        print("\n(write = write_store from memory incl. obs/var, hashing and manifest; read = whole matrix "
              "from disk into memory through the lazy dask arrays; page cache warm)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--small", action="store_true", help="default feature counts instead of full_size")
    ap.add_argument("--codecs", nargs="*", default=None, help="codecs for the write column (default: the store default)")
    ap.add_argument("--lazy-open", action="store_true", help="time a lazy open of a 10 GB store instead")
    ap.add_argument("--verify-cost", action="store_true",
                    help="time opening the 10 GB store with verify='none' | 'fast' | 'full'")
    ap.add_argument("--chunk-accounting", action="store_true",
                    help="manifest-recorded chunks vs write_empty_chunks: time and bytes")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if args.verify_cost:
        verify_cost(args.repeat)
    elif args.chunk_accounting:
        chunk_accounting()
    elif args.lazy_open:
        lazy_open(args.repeat)
    else:
        throughput(args.patients, not args.small, args.codecs)


if __name__ == "__main__":
    main()
