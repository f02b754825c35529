#!/usr/bin/env python
"""Benchmark the GDC format parsers on generated full-size files.

For each format: MB/s of the omicsdata parser, of ``pandas.read_csv`` doing the
same job (same columns, same missing-value rules), and of reading the same
bytes from the (page-cached) file; measured side by side in one run, best of
``--repeat``. Then a projection of the full pan-cancer parse time on this
machine from the measured rates and approximate TCGA open-access file counts.

    .venv/bin/python scripts/bench_gdc_parse.py [--repeat 5] [--workers N]

Goals (issue): parser >= 3x pandas and >= 50 % of the raw read speed.
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from omicsdata.formats import read_beta_values, read_maf, read_mirna, read_rppa, read_star_counts  # noqa: E402
from omicsdata.synth_gdc import beta_text, maf_text, mirna_text, rppa_text, star_text  # noqa: E402

# Approximate counts of TCGA open-access files per modality (GDC portal, TCGA program, data release 3x),
# and typical full file sizes come from the files generated here.
TCGA_FILES = {"STAR counts": 11_500, "methylation betas": 12_400, "miRNA": 11_000, "MAF (masked)": 10_900,
              "RPPA": 7_900}


def make_files(root: Path, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    files = {}
    n_genes = 60_660
    genes = [f"ENSG{i:011d}.{1 + i % 20}" for i in range(n_genes)]
    counts = rng.negative_binomial(1, 0.002, n_genes).astype(np.float32)
    counts[rng.random(n_genes) < 0.35] = 0
    files["STAR counts"] = root / "x.rna_seq.augmented_star_gene_counts.tsv"
    files["STAR counts"].write_bytes(star_text(genes, counts))
    n_probes = 485_577
    probes = [f"cg{i:08d}" for i in range(n_probes)]
    beta = rng.beta(0.5, 0.5, n_probes).astype(np.float32)
    beta[rng.random(n_probes) < 0.03] = np.nan
    files["methylation betas"] = root / "x.methylation_array.sesame.level3betas.txt"
    files["methylation betas"].write_bytes(beta_text(probes, beta))
    files["miRNA"] = root / "x.mirbase21.mirnas.quantification.txt"
    files["miRNA"].write_bytes(mirna_text([f"hsa-mir-{i}" for i in range(1881)],
                                          rng.negative_binomial(1, 0.001, 1881).astype(np.float32)))
    files["MAF (masked)"] = root / "x.wxs.aliquot_ensemble_masked.maf.gz"
    genes_m = [f"GENE{i}" for i in rng.choice(18_000, 400, replace=False)]
    files["MAF (masked)"].write_bytes(gzip.compress(
        maf_text("TCGA-A1-A0SB-01A-11D-A142-09", "TCGA-A1-A0SB-10A-01D-A142-09", genes_m,
                 [f"GENE{i}" for i in range(100)]).encode(), mtime=0))
    files["RPPA"] = root / "x_RPPA_data.tsv"
    files["RPPA"].write_bytes(rppa_text([f"PROT{i}" for i in range(487)], rng.normal(0, 1, 487).astype(np.float32)))
    return files


def ours(kind: str, path: Path):
    return {"STAR counts": lambda: read_star_counts(path),
            "methylation betas": lambda: read_beta_values(path),
            "miRNA": lambda: read_mirna(path),
            "MAF (masked)": lambda: read_maf(path),
            "RPPA": lambda: read_rppa(path)}[kind]


def with_pandas(kind: str, path: Path):
    if kind == "STAR counts":
        def f():
            df = pd.read_csv(path, sep="\t", comment="#", usecols=["gene_id", "unstranded"])
            df = df[~df["gene_id"].str.startswith("N_")]
            return df["gene_id"].to_numpy(), df["unstranded"].to_numpy(np.float32)
    elif kind == "methylation betas":
        def f():
            df = pd.read_csv(path, sep="\t", header=None, names=["probe", "beta"], na_values=["NA", ""],
                             keep_default_na=False)
            return df["probe"].to_numpy(), df["beta"].to_numpy(np.float32)
    elif kind == "miRNA":
        def f():
            df = pd.read_csv(path, sep="\t", usecols=["miRNA_ID", "read_count"])
            return df["miRNA_ID"].to_numpy(), df["read_count"].to_numpy(np.float32)
    elif kind == "MAF (masked)":
        def f():
            df = pd.read_csv(path, sep="\t", comment="#", usecols=["Hugo_Symbol", "Tumor_Sample_Barcode",
                                                                   "Variant_Classification"], low_memory=False)
            from omicsdata.formats.maf import NON_SILENT
            df = df[df["Variant_Classification"].isin(NON_SILENT) & (df["Hugo_Symbol"] != "Unknown")]
            return {s: sorted(set(g["Hugo_Symbol"])) for s, g in df.groupby("Tumor_Sample_Barcode")}
    else:
        def f():
            df = pd.read_csv(path, sep="\t", usecols=["peptide_target", "protein_expression"], na_values=["NA"])
            g = df.groupby("peptide_target", sort=False)["protein_expression"].mean()
            return g.index.to_numpy(), g.to_numpy(np.float32)
    return f


def raw_read(kind: str, path: Path):
    if str(path).endswith(".gz"):
        def f():
            with gzip.open(path, "rb") as fh:
                return len(fh.read())
    else:
        def f():
            with open(path, "rb") as fh:
                return len(fh.read())
    return f


def best(fn, repeat: int) -> float:
    fn()  # warm: page cache, imports
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="parallel parse workers assumed for the projection (default: CPU count)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        files = make_files(Path(d))
        rows = []
        for kind, path in files.items():
            size = path.stat().st_size
            unpacked = size
            if str(path).endswith(".gz"):
                with gzip.open(path, "rb") as fh:
                    unpacked = len(fh.read())
            t_ours = best(ours(kind, path), args.repeat)
            t_pd = best(with_pandas(kind, path), args.repeat)
            t_raw = best(raw_read(kind, path), args.repeat)
            mb = unpacked / 1e6
            rows.append((kind, size, mb / t_ours, mb / t_pd, mb / t_raw, t_pd / t_ours, t_raw / t_ours, t_ours))
    print(f"GDC parser throughput (best of {args.repeat}; MB = uncompressed text; {os.cpu_count()} CPUs)\n")
    print("| format | file size | omicsdata MB/s | pandas MB/s | raw read MB/s | x pandas | % of raw read |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, size, r_o, r_p, r_r, x_pd, f_raw, _ in rows:
        print(f"| {kind} | {size / 1e6:.2f} MB | {r_o:,.0f} | {r_p:,.0f} | {r_r:,.0f} | {x_pd:.2f}x | {100 * f_raw:.0f} % |")
    print("\nProjected full pan-cancer parse on this machine (approximate TCGA open-access file counts):\n")
    print("| format | files | s/file | total, 1 worker | total, %d workers |" % args.workers)
    print("| --- | ---: | ---: | ---: | ---: |")
    tot = 0.0
    for kind, _size, *_, t_ours in rows:
        n = TCGA_FILES[kind]
        tot += n * t_ours
        print(f"| {kind} | {n:,} | {t_ours * 1e3:.1f} ms | {n * t_ours / 60:.1f} min | {n * t_ours / 60 / args.workers:.1f} min |")
    print(f"| **all** | {sum(TCGA_FILES.values()):,} | | {tot / 60:.1f} min | {tot / 60 / args.workers:.1f} min |")
    print("\n(parse only; downloads (~50 GB raw) and the store write come on top)")


if __name__ == "__main__":
    main()
