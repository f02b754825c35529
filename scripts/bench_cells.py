"""Cell-type classification on held-out cells: CellGAT vs logistic regression on PCA vs kNN vs shuffled labels.

    python scripts/bench_cells.py                       # scanpy's bundled pbmc68k_reduced, 3 split seeds
    python scripts/bench_cells.py --data synthetic      # omicsdata.synth_cells (planted types, donors)

Data (``--data pbmc68k``): ``10x_pbmc68k_reduced.h5ad``, shipped INSIDE the
scanpy wheel (``scanpy/datasets/``; read here from the installed package
folder with anndata, offline, without importing scanpy). 700 PBMCs x 765
genes, 10 ``bulk_labels`` types (8 to 240 cells each); its ``.raw.X`` holds
log-normalised expression, used as is (its ``.X`` is scaled). It has no donor
column, so held-out cells are stratified by label (cell level). scanpy is
BSD-3-Clause; the cells are a subsample of 10x Genomics' "Fresh 68k PBMCs"
(Zheng et al. 2017, Nat Commun 8:14049), which 10x publishes under CC BY 4.0.

Every data set is imported with ``od.import_anndata`` (so the benchmark runs
the import path) and split train/val/test 0.7/0.15/0.15 per seed. Methods
see the train cells (CellGAT also its val cells for early stopping) and are
scored on the test cells: accuracy, macro F1 and per-class F1 (the rarest
types are printed); the table is mean +- sd over seeds.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def pbmc68k_reduced():
    """The bundled pbmc68k_reduced as an AnnData (X = the log-normalised ``.raw.X``; obs ``bulk_labels``)."""
    import anndata as ad
    import pandas as pd

    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scanpy is not installed: pip install 'omicszoo[scverse]' (the data ship in its wheel)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "10x_pbmc68k_reduced.h5ad"
    a = ad.read_h5ad(path)
    obs = pd.DataFrame({"bulk_labels": a.obs["bulk_labels"].astype(str).to_numpy()}, index=a.obs_names)
    return ad.AnnData(X=a.raw.X.astype(np.float32), obs=obs, var=pd.DataFrame(index=a.raw.var_names)), "bulk_labels", None, str(path)


def synthetic(n_cells: int = 3000):
    from omicsdata.synth_cells import make_cells

    return make_cells(n_cells=n_cells, n_genes=500, n_types=8, n_donors=8, seed=0), "cell_type", "donor", "synth_cells"


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def _scores(y, pred, classes):
    from sklearn.metrics import accuracy_score, f1_score

    per = f1_score(y, pred, labels=classes, average=None, zero_division=0)
    return {"accuracy": float(accuracy_score(y, pred)),
            "macro_f1": float(f1_score(y, pred, labels=classes, average="macro", zero_division=0)),
            "per_class_f1": {str(c): float(f) for c, f in zip(classes, per)}}


def baselines(X, y, split, classes, seed, n_pcs=50, log1p=False):
    """LR on PCA, kNN on PCA, and LR on PCA with shuffled training labels (the control)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    if log1p:
        X = np.log1p(X / np.maximum(X.sum(1, keepdims=True), 1) * 1e4)
    tr, te = split == "train", split == "test"
    sc = StandardScaler().fit(X[tr])
    pca = PCA(n_components=min(n_pcs, X.shape[1], tr.sum() - 1), random_state=seed).fit(sc.transform(X[tr]))
    Z = pca.transform(sc.transform(X))
    out = {}
    lr = LogisticRegression(max_iter=2000).fit(Z[tr], y[tr])
    out["logreg-pca"] = _scores(y[te], lr.predict(Z[te]), classes)
    knn = KNeighborsClassifier(n_neighbors=15).fit(Z[tr], y[tr])
    out["knn-pca"] = _scores(y[te], knn.predict(Z[te]), classes)
    ysh = np.random.default_rng(seed).permutation(y[tr])
    out["shuffled-control"] = _scores(y[te], LogisticRegression(max_iter=2000).fit(Z[tr], ysh).predict(Z[te]), classes)
    return out


def cellgat(mdata, label, classes, seed, max_epochs):
    try:
        import zoo
        model = zoo.create_model("cell-gat", label_col=label, random_state=seed, max_epochs=max_epochs)
    except Exception as e:  # the model is not there (yet): the column says so
        return {"not_available": f"{type(e).__name__}: {e}"}
    model.fit(mdata, split="train")
    res = model.evaluate(mdata, split="test")
    per = {r["class"]: r["f1"] for r in res["per_class"]}
    return {"accuracy": float(res["accuracy"]), "macro_f1": float(res.get("macro_f1", np.nan)),
            "per_class_f1": {str(c): float(per.get(str(c), 0.0)) for c in classes}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=["pbmc68k", "synthetic"], default="pbmc68k")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-gat", action="store_true", help="skip CellGAT (baselines only)")
    ap.add_argument("--gat-epochs", type=int, default=30)
    ap.add_argument("--json", default=None, help="write all results here")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMICSDATA_HOME", tempfile.mkdtemp(prefix="bench-cells-"))
    import omicsdata as od

    adata, label, split_by, origin = pbmc68k_reduced() if args.data == "pbmc68k" else synthetic()
    counts = adata.obs[label].value_counts()
    classes = np.array(sorted(counts.index))
    rarest = list(counts.sort_values().index[:3])
    runs = []
    for seed in range(args.seeds):
        name = f"bench-cells-{args.data}-{seed}"
        od.import_anndata(adata, name, label=label, split_by=split_by, seed=seed, overwrite=True,
                          preprocess="scverse" if args.data == "synthetic" else None, n_top_genes=400)
        m = od.load(name)
        X = _dense(m.mod["rna"].X.compute())
        y = m.obs[label].astype(str).to_numpy()
        split = m.obs["split"].astype(str).to_numpy()
        t = time.perf_counter()
        res = baselines(X, y, split, classes, seed)
        res["cell-gat"] = {"not_available": "skipped (--no-gat)"} if args.no_gat else \
            cellgat(m, label, classes, seed, args.gat_epochs)
        res["_seconds"] = round(time.perf_counter() - t, 1)
        res["_n_test"] = int((split == "test").sum())
        runs.append(res)
        print(f"seed {seed}: " + ", ".join(f"{k} F1 {v['macro_f1']:.3f}" for k, v in res.items()
                                         if isinstance(v, dict) and "macro_f1" in v), flush=True)
    methods = ["cell-gat", "logreg-pca", "knn-pca", "shuffled-control"]
    print(f"\ndata: {origin}; {adata.n_obs} cells x {adata.n_vars} genes; {len(classes)} types; "
          f"held-out: {'by ' + split_by if split_by else 'stratified by ' + label}; seeds: {args.seeds}")
    print("| method | accuracy | macro F1 | " + " | ".join(f"F1 {c} (n={counts[c]})" for c in rarest) + " |")
    print("|---|---|---|" + "---|" * len(rarest))
    for mth in methods:
        vals = [r[mth] for r in runs]
        if any("not_available" in v for v in vals):
            print(f"| {mth} | not available: {vals[0].get('not_available', '')[:60]} |")
            continue
        def cell(k, vals=vals):
            return f"{np.mean([v[k] for v in vals]):.3f} +- {np.std([v[k] for v in vals]):.3f}"
        rare = [f"{np.mean([v['per_class_f1'][c] for v in vals]):.2f}" for c in rarest]
        print(f"| {mth} | {cell('accuracy')} | {cell('macro_f1')} | " + " | ".join(rare) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
