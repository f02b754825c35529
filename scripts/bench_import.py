"""Peak memory and time of ``od.import_anndata`` on a large CSR ``.h5ad`` (issue 17: goal < 1 GB peak RSS).

    python scripts/bench_import.py --cells 200000 --genes 20000 --nnz 1500   # ~2.4 GB of X on disk
    python scripts/bench_import.py --cells 100000 --genes 20000 --nnz 1300   # ~1 GB of X (data + indices)

The file is written block by block with h5py in AnnData's on-disk layout
(``X`` a ``csr_matrix`` group: data float32, indices int32, indptr int64;
obs with ``cell_type`` and ``donor``), so writing it does not need it in
memory either. The import runs in a child process; its peak RSS comes from
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_big_h5ad(path: Path, n_cells: int, n_genes: int, nnz_per_cell: int, seed: int = 0, block: int = 500):
    """A CSR ``.h5ad`` of random counts written in row blocks (h5py, AnnData's encoding attributes)."""
    import anndata as ad
    import h5py
    import pandas as pd

    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice([f"type_{i}" for i in range(8)], n_cells)),
                        "donor": pd.Categorical(rng.choice([f"donor_{i}" for i in range(12)], n_cells))},
                       index=[f"c{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"g{i}" for i in range(n_genes)])
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        ad.io.write_elem(f, "obs", obs)
        ad.io.write_elem(f, "var", var)
        for k in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            ad.io.write_elem(f, k, {})
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        g.attrs["shape"] = (n_cells, n_genes)
        total = n_cells * nnz_per_cell
        data = g.create_dataset("data", shape=(total,), dtype="float32", chunks=(1 << 20,))
        indices = g.create_dataset("indices", shape=(total,), dtype="int32", chunks=(1 << 20,))
        g.create_dataset("indptr", data=np.arange(n_cells + 1, dtype=np.int64) * nnz_per_cell)
        for a in range(0, n_cells, block):
            b = min(n_cells, a + block)
            idx = np.sort(np.argsort(rng.random((b - a, n_genes)), axis=1)[:, :nnz_per_cell], axis=1)
            data[a * nnz_per_cell:b * nnz_per_cell] = rng.poisson(2.0, (b - a) * nnz_per_cell).astype(np.float32) + 1
            indices[a * nnz_per_cell:b * nnz_per_cell] = idx.ravel().astype(np.int32)


CHILD = """
import sys, time, json, omicsdata as od
t = time.perf_counter()
od.import_anndata(sys.argv[1], "bench-import", label="cell_type", split_by="donor", preprocess=sys.argv[2] or None,
                  overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--nnz", type=int, default=1300, help="non-zeros per cell")
    ap.add_argument("--preprocess", default="", choices=["", "scverse"])
    ap.add_argument("--workdir", default=None, help="where the .h5ad and the cache go (default: a temp folder)")
    args = ap.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    h5ad = work / f"cells-{args.cells}x{args.genes}-{args.nnz}.h5ad"
    if not h5ad.exists():
        t = time.perf_counter()
        write_big_h5ad(h5ad, args.cells, args.genes, args.nnz)
        print(f"wrote {h5ad} ({h5ad.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s")
    env = dict(os.environ, OMICSDATA_HOME=str(work / "home"))
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(h5ad), args.preprocess], env=env, check=True,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    res = {"file_gb": round(h5ad.stat().st_size / 1e9, 3), "cells": args.cells, "genes": args.genes,
           "nnz_per_cell": args.nnz, "preprocess": args.preprocess or None,
           "import_seconds": round(json.loads(out.stdout.strip().splitlines()[-1])["seconds"], 1),
           "child_wall_seconds": round(wall, 1), "peak_rss_gb": round(peak_kb * 1024 / 1e9, 3)}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
