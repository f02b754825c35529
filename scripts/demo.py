"""The main job on the embedded default dataset, demo-pancancer.

Step 1: build (first run) and lazily load the store, print a summary table.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import omicsdata as od


def summary(mdata) -> str:
    man = mdata.uns["omicsdata"]
    obs = mdata.obs
    rows = [("modality", "features", "present", "storage", "chunk rows", "codec")]
    for m, meta in man["modalities"].items():
        rows.append((m, f"{meta['shape'][1]:,}", f"{meta['n_present']}/{man['n_obs']}", meta["storage"],
                     str(meta["chunks"][0]) if meta["storage"] == "dense" else "-", meta["codec"]))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [f"dataset {man['dataset']} v{man['version']}  ({man['n_obs']} patients, store {mdata.uns['omicsdata_path']})"]
    for i, r in enumerate(rows):
        out.append("  ".join(c.ljust(w[j]) for j, c in enumerate(r)))
        if i == 0:
            out.append("  ".join("-" * x for x in w))
    counts = obs["split"].value_counts()
    out.append("splits: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in ("train", "val", "test")))
    out.append(f"events: {int(obs['os_event'].sum())} deaths / {len(obs)} patients "
               f"(median follow-up {np.median(obs['os_time']):.0f} days)")
    ct = obs["cancer_type"].value_counts()
    out.append("cancer types: " + ", ".join(f"{k} {v}" for k, v in ct.items()))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-patients", type=int, default=None, help="cohort size (default: the catalog's 600)")
    ap.add_argument("--out", default="out", help="folder for the checkpoint and plots")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    opts = {"n_patients": args.n_patients} if args.n_patients else {}
    mdata = od.load("demo-pancancer", **opts)
    print(summary(mdata))
    print(f"loaded in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
