#!/usr/bin/env python
"""Batch assembly for cell graphs that share one topology: graphs/s and peak memory.

Routes, side by side on the same rows and the same topology:

* ``shared``  - omicsdata.graph.CellGraphBatch: x ``[B, N, 1]`` + the one
  ``edge_index`` (PyG static-graph layout; what CellGraphDataset yields);
* ``offset``  - ``CellGraphBatch.to_pyg()``: the disjoint-union Batch with an
  offset edge index built on the fly (for layers without static-graph support);
* ``naive``   - one ``torch_geometric.data.Data`` per cell + ``Batch.from_data_list``.

Each (nodes, route) runs in a fresh subprocess; "peak RSS growth" is how
much the process's peak RSS grows during the timed loop (after the features
and the topology exist), i.e. what assembling batches costs on top of the
data; "edge index MiB per batch" is the int64 edge index one batch holds
(shared: the one stored copy; offset/naive: B copies).
The features are in memory (this measures assembly, not disk reads).
Edges: ``--degree`` x nodes random directed edges (the published edge
count is not confirmed here).

    .venv/bin/python scripts/bench_tosg.py                      # 10k, 50k, 500k nodes
    .venv/bin/python scripts/bench_tosg.py --nodes 10000 --batch 64 --seconds 1
    .venv/bin/python scripts/bench_tosg.py --storage   # dense vs CSR, as the builder measures it
    .venv/bin/python scripts/bench_tosg.py --ranges    # bytes read to sample 2,000 cells of 3 shards

``--ranges`` writes a 3-shard release in the published layout (tests/tosg_layout.py;
``--rows`` rows x ``--width`` float32 columns a shard), serves it from the Hub
look-alike (tests/hubserver.py, LFS mode) on 127.0.0.1 and builds
``omnicell-tosg`` with ``sample_size=2000``: bytes the server sent for the shards
against their total size, and the number of range requests.

``--storage`` runs the builder's own measurement (``choose_storage``: bytes
with the store codec and decode time) on rows of the published width
(533,458 entities, the last 121,419 zero as in the release) at several
densities of non-zero counts.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

ROUTES = ("shared", "offset", "naive")


def child(nodes: int, route: str, batch: int, degree: int, seconds: float, seed: int = 0) -> dict:
    import numpy as np
    import torch
    from torch_geometric.data import Batch, Data

    from omicsdata.graph import CellGraphBatch

    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    n_cells = 4 * batch
    feats = rng.random((n_cells, nodes), dtype=np.float32)
    edge_index = torch.from_numpy(rng.integers(0, nodes, size=(2, degree * nodes), dtype=np.int64))

    def assemble(rows):
        block = feats[rows]  # one row read per cell, as the dataset does
        if route == "naive":
            x = torch.from_numpy(block)
            return Batch.from_data_list([Data(x=x[i].unsqueeze(-1), edge_index=edge_index) for i in range(len(rows))])
        b = CellGraphBatch(torch.from_numpy(block).unsqueeze(-1), edge_index)
        return b.to_pyg() if route == "offset" else b

    assemble(np.arange(1))  # warm-up on one cell (lazy imports), so the peak below is the batches' own
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n, t0, it = 0, time.perf_counter(), 0
    while True:
        rows = rng.choice(n_cells, size=batch, replace=False)
        out = assemble(rows)
        n += batch
        it += 1
        del out
        el = time.perf_counter() - t0
        if el >= seconds and it >= 3:
            break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    e_bytes = edge_index.numel() * 8 * (1 if route == "shared" else batch)
    return {"nodes": nodes, "route": route, "edges": int(edge_index.shape[1]), "batch": batch, "edge_mib": e_bytes / 2**20,
            "graphs_per_s": n / el, "batches": it, "peak_mib": max(0, peak - base) / 1024}


def storage_table(n_rows: int = 128, width: int = 533_458, measured: int = 412_039) -> int:
    import numpy as np

    from omicsdata.datasets.omnicell_tosg.builder import choose_storage

    rng = np.random.default_rng(0)
    print(f"{n_rows} cells x {width:,} entities ({measured:,} measured columns), codec blosc-zstd-3\n")
    print("| non-zero | dense KiB | CSR KiB | dense decode ms | CSR decode ms | choice |")
    print("|---:|---:|---:|---:|---:|---|")
    for density in (0.002, 0.01, 0.05, 0.3, 1.5):  # 1.5 draws -> ~78% non-zero (meta-cell like)
        X = np.zeros((n_rows, width), np.float32)
        k = int(density * n_rows * measured)
        X[rng.integers(0, n_rows, k), rng.integers(0, measured, k)] = rng.poisson(1.5, k) + 1
        r = choose_storage(X)
        print(f"| {r['density']:.2%} | {r['dense_bytes'] / 1024:,.0f} | {r['csr_bytes'] / 1024:,.0f} | "
              f"{r['dense_read_s'] * 1e3:,.0f} | {r['csr_read_s'] * 1e3:,.0f} | {r['choice']} |")
    return 0


def ranges_figure(rows: int, width: int, sample: int = 2000) -> int:
    import os
    import tempfile
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import huggingface_hub.constants as hf_constants
    from hubserver import HubServer
    from tosg_layout import make_release, serve_release

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(OMICSDATA_HOME=f"{tmp}/home", HF_HOME=f"{tmp}/home/hf", HF_HUB_DISABLE_XET="1",
                          HF_HUB_DISABLE_TELEMETRY="1")
        hf_constants.HF_HUB_DISABLE_XET = True
        truth = make_release(f"{tmp}/rel", n_donors=3 * rows // 50, cells_per_donor=50, n_transcripts=width,
                             n_proteins=16, module=8, rows_per_shard=rows, pretrain_studies=(), seed=0,
                             tissues={"brain": "braincellatlas", "lung": "cellxgene", "blood": "cellxgene"})
        with HubServer(f"{tmp}/hub", lfs_threshold=1) as server:
            os.environ["HF_ENDPOINT"] = server.url
            serve_release(server, f"{tmp}/rel")
            import omicsdata as od

            t0 = time.perf_counter()
            m = od.load(od.build("omnicell-tosg", sample_size=sample, seed=0))
            el = time.perf_counter() - t0
            rep = m.uns["omicsdata"]["extra"]["report"]["expression_read"]
            total = sum(Path(f"{tmp}/rel/{s}").stat().st_size for s in truth["shards"])
            sent = rep["bytes_fetched"]  # shards only (the server also sent metadata, text, edges)
            assert sent <= server.bytes_sent("/cdn/")
    print(f"{len(truth['shards'])} shards x {rows:,} rows x {width:,} float32 columns; sampled {m.n_obs:,} cells\n")
    print("| shard bytes total | bytes downloaded | fraction | range requests | build s |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {total:,} | {sent:,} | {sent / total:.2%} | {rep['requests']:,} | {el:.1f} |")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="+", default=[10_000, 50_000, 500_000])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--degree", type=int, default=4, help="edges per node")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed loop length per case")
    ap.add_argument("--storage", action="store_true", help="dense vs CSR table instead")
    ap.add_argument("--ranges", action="store_true", help="bytes read to sample 2,000 cells of a 3-shard set")
    ap.add_argument("--rows", type=int, default=10_000, help="rows per shard (--ranges)")
    ap.add_argument("--width", type=int, default=2_000, help="float32 columns per shard (--ranges)")
    ap.add_argument("--child", nargs=2, metavar=("NODES", "ROUTE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(int(a.child[0]), a.child[1], a.batch, a.degree, a.seconds)))
        return 0
    if a.storage:
        return storage_table()
    if a.ranges:
        return ranges_figure(a.rows, a.width)
    rows = []
    for n in a.nodes:
        for r in ROUTES:
            cmd = [sys.executable, __file__, "--child", str(n), r, "--batch", str(a.batch), "--degree",
                   str(a.degree), "--seconds", str(a.seconds)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return out.returncode
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"batch={a.batch} cells, {a.degree} edges/node, torch threads=1\n")
    print("| nodes | edges | route | graphs/s | x naive | edge index MiB per batch | peak RSS growth MiB |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for n in a.nodes:
        naive = next(r for r in rows if r["nodes"] == n and r["route"] == "naive")
        for r in (r for r in rows if r["nodes"] == n):
            print(f"| {n:,} | {r['edges']:,} | {r['route']} | {r['graphs_per_s']:,.0f} | "
                  f"{r['graphs_per_s'] / naive['graphs_per_s']:.1f} | {r['edge_mib']:,.1f} | {r['peak_mib']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
