#!/usr/bin/env python
"""Pick the store's codec by measurement.

Compresses realistic demo-pancancer matrices at full GDC-like feature counts
(RNA counts, methylation betas, protein levels; ``omicsdata.synth``) with each
candidate codec, chunked exactly as ``write_store`` chunks them (whole rows,
~2 MiB per chunk), written to and read back from local disk through zarr v3.

Columns: compression ratio (uncompressed / on-disk bytes), write MB/s and read
MB/s (uncompressed MB per second, best of ``--repeat``), and "eff. read":
the uncompressed MB/s a loader gets from a disk delivering ``--disk-mbps`` of
compressed bytes (1 / (1/(ratio*disk) + 1/read)). The winner is the codec
with the best total eff. read over the three modalities among those that
write at least ``--min-write`` MB/s.

    .venv/bin/python scripts/bench_codecs.py            # 512 patients x full-size features
    .venv/bin/python scripts/bench_codecs.py --patients 256 --repeat 1
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

CODECS = ["none", "blosc-zstd-1", "blosc-zstd-3", "blosc-zstd-5", "blosc-zstd-3-bitshuffle",
          "blosc-lz4-1", "blosc-lz4-5", "blosc-lz4-5-bitshuffle", "blosc-lz4hc-5", "blosc-lz4hc-9",
          "zstd-1", "zstd-3", "zstd-5"]
MODS = ("rna", "methylation", "protein")


def data(n_patients: int, seed: int = 0) -> dict[str, np.ndarray]:
    from omicsdata import synth

    spec = synth.CohortSpec.full_size(n_patients=n_patients, seed=seed)
    m = synth.simulate_pancancer(spec, lazy=True)
    return {k: np.asarray(m[k].X.compute()) for k in MODS}


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(X: np.ndarray, codec: str, root: Path, repeat: int) -> dict:
    import zarr

    from omicsdata.store import make_codec, rows_per_chunk

    rows = min(rows_per_chunk(X.shape[1], X.dtype.itemsize), X.shape[0])
    comp = make_codec(codec)
    best_w = best_r = float("inf")
    size = 0
    for _ in range(repeat):
        path = root / f"{codec}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        arr = zarr.create_array(str(path), shape=X.shape, chunks=(rows, X.shape[1]), dtype=X.dtype,
                                compressors=comp, zarr_format=3, fill_value=0)
        arr[:] = X
        best_w = min(best_w, time.perf_counter() - t0)
        size = du(path)
        t0 = time.perf_counter()
        back = zarr.open_array(str(path), mode="r")[:]
        best_r = min(best_r, time.perf_counter() - t0)
        assert np.array_equal(back, X), codec
        shutil.rmtree(path)
    mb = X.nbytes / 1e6
    return {"ratio": X.nbytes / size, "write": mb / best_w, "read": mb / best_r, "bytes": size, "raw": X.nbytes,
            "t_read": best_r}


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--disk-mbps", type=float, default=500.0)
    ap.add_argument("--min-write", type=float, default=50.0)
    ap.add_argument("--codecs", nargs="*", default=CODECS)
    args = ap.parse_args(argv)

    mats = data(args.patients)
    shapes = ", ".join(f"{k} {v.shape[0]}x{v.shape[1]}" for k, v in mats.items())
    print(f"demo-pancancer full-size, {shapes} float32; disk model {args.disk_mbps:g} MB/s\n")
    res: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-codecs-") as tmp:
        for codec in args.codecs:
            res[codec] = {k: measure(X, codec, Path(tmp), args.repeat) for k, X in mats.items()}

    def eff(r):  # uncompressed MB/s through a disk of args.disk_mbps
        return 1 / (1 / (r["ratio"] * args.disk_mbps) + 1 / r["read"])

    head = "| codec | " + " | ".join(f"{k} ratio | {k} write MB/s | {k} read MB/s" for k in MODS) + \
        " | all ratio | all write MB/s | all read MB/s | all eff. read MB/s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    totals = {}
    for codec, per in res.items():
        raw = sum(r["raw"] for r in per.values()) / 1e6
        tot = {"ratio": sum(r["raw"] for r in per.values()) / sum(r["bytes"] for r in per.values()),
               "write": raw / sum(r["raw"] / 1e6 / r["write"] for r in per.values()),
               "read": raw / sum(r["t_read"] for r in per.values())}
        tot["eff"] = eff(tot)
        totals[codec] = tot
        cells = " | ".join(f"{per[k]['ratio']:.2f} | {per[k]['write']:.0f} | {per[k]['read']:.0f}" for k in MODS)
        lines.append(f"| {codec} | {cells} | {tot['ratio']:.2f} | {tot['write']:.0f} | {tot['read']:.0f} | {tot['eff']:.0f} |")
    ok = {c: t for c, t in totals.items() if t["write"] >= args.min_write}
    winner = max(ok or totals, key=lambda c: (ok or totals)[c]["eff"])
    from omicsdata.store import DEFAULT_CODEC

    lines.append("")
    lines.append(f"winner (best eff. read among codecs writing >= {args.min_write:g} MB/s): {winner}; "
                 f"store default DEFAULT_CODEC = {DEFAULT_CODEC}")
    d = totals[DEFAULT_CODEC] if DEFAULT_CODEC in totals else None
    if d:
        lines.append(f"default vs winner: eff. read {d['eff']:.0f} vs {totals[winner]['eff']:.0f} MB/s, "
                     f"ratio {d['ratio']:.2f} vs {totals[winner]['ratio']:.2f}")
    out = "\n".join(lines)
    print(out)
    return winner


if __name__ == "__main__":
    main()
