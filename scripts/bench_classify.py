"""Multi-omics classification benchmark: MOGONET, SGUQ, SeNMo's classification head, logistic regression.

Rows are datasets, columns models, cells ``accuracy / macro F1 / AUROC`` on
the test split, each the mean over ``--seeds`` model seeds (the split is the
dataset's own: the published train/test for MOGONET's files, with a seeded
stratified validation part carved from train). Two extra columns: the
majority-class accuracy on test, and SGUQ's accuracy on its 80% most certain
test samples (``acc@80%``).

Datasets:

* ``planted`` / ``planted-shuffled``: generated cohorts written in MOGONET's
  file layout (``1_tr.csv`` .. ``labels_te.csv``; :mod:`omicsdata.synth_classify`)
  and read back - a planted class signal, and the same features with the
  labels shuffled (every model should fall to the majority-class level);
* ``ROSMAP`` / ``BRCA``: any real copy found under ``--data-dir`` (a folder
  holding ``ROSMAP/`` and/or ``BRCA/`` in the authors' layout), read with
  ``omicsdata.builders.mogonet_files`` when present, else the local reader.

Defaults are sized to finish in a few minutes on 2 CPU cores (smaller GCNs
and a short schedule); ``--authors-schedule`` uses the authors' widths,
edges per node and 500 + 2500 epochs (what the paper's numbers need)::

    python scripts/bench_classify.py                       # generated data only
    python scripts/bench_classify.py --data-dir ~/MOGONET --authors-schedule
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REAL = {"ROSMAP": {"classes": ["Normal Control", "Alzheimer's Disease"], "hidden": (200, 200, 100), "adj": 2},
        "BRCA": {"classes": ["Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B"],
                 "hidden": (400, 400, 200), "adj": 10}}
MODELS = ("MOGONET", "SGUQ", "SeNMo", "LogReg")


def read_real(folder: Path, name: str):
    """A real copy in the authors' layout as a MuData (DATA-13's reader when present, else the local one)."""
    try:
        from omicsdata.builders import mogonet_files
    except ImportError:
        mogonet_files = None
    if mogonet_files is not None and hasattr(mogonet_files, "read_folder"):
        return mogonet_files.read_folder(folder, name, REAL[name]["classes"])
    from omicsdata.synth_classify import read_mogonet_layout

    return read_mogonet_layout(folder / name, class_names=REAL[name]["classes"])


def logreg_metrics(mdata, seed: int) -> dict:
    """L2 logistic regression on the concatenated standardised views; C chosen on the val rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from zoo.tasks import get_task

    X = np.concatenate([np.asarray(mdata[m].X, dtype=np.float64) for m in mdata.mod], 1)
    split = mdata.obs["split"].astype(str).to_numpy()
    classes = list(mdata.obs["label"].cat.categories)
    y = np.array([classes.index(str(v)) for v in mdata.obs["label"]])
    tr, va, te = split == "train", split == "val", split == "test"
    sc = StandardScaler().fit(X[tr])
    Xs = sc.transform(X)
    best = None
    for C in (0.001, 0.01, 0.1, 1.0):
        clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(Xs[tr], y[tr])
        acc = clf.score(Xs[va], y[va]) if va.any() else 0.0
        if best is None or acc > best[0]:
            best = (acc, clf)
    clf = best[1]
    proba = np.zeros((te.sum(), len(classes)))
    proba[:, clf.classes_] = clf.predict_proba(Xs[te])

    class _Est:  # the task's metrics read nothing from the estimator
        schema_ = {}
    return get_task("classification").metrics(_Est(), {"proba": proba}, {"label": y[te]})


def run_models(mdata, seed: int, args, hidden, adj) -> dict:
    import zoo

    common = dict(hidden=hidden, adj_parameter=adj, pretrain_epochs=args.pretrain_epochs, max_epochs=args.epochs,
                  random_state=seed, device=args.device)
    out = {}
    out["MOGONET"] = zoo.MOGONET(**common).fit(mdata).evaluate(mdata, split="test")
    out["SGUQ"] = zoo.SGUQ(n_trials=args.trials, **common).fit(mdata).evaluate(mdata, split="test")
    out["SeNMo"] = zoo.SeNMo(time_col=None, event_col=None, label_col="label", random_state=seed, use_stream=False,
                             progress=False, device=args.device).fit(mdata).evaluate(mdata, split="test")
    out["LogReg"] = logreg_metrics(mdata, seed)
    return out



def majority(mdata) -> float:
    from zoo.metrics import majority_accuracy

    return majority_accuracy(mdata.obs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, help="folder holding ROSMAP/ and/or BRCA/ in the authors' layout")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=200, help="joint epochs (authors: 2500)")
    ap.add_argument("--pretrain-epochs", type=int, default=60, help="view pre-training epochs (authors: 500)")
    ap.add_argument("--hidden", type=int, nargs=3, default=(64, 64, 32), help="GCN widths for generated data")
    ap.add_argument("--trials", type=int, default=10, help="SGUQ stochastic trials")
    ap.add_argument("--authors-schedule", action="store_true",
                    help="500 + 2500 epochs and the authors' per-dataset widths / edges per node on real data")
    ap.add_argument("--n-train", type=int, default=240)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--no-generated", action="store_true", help="only the real copies under --data-dir")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write every per-seed metric here")
    args = ap.parse_args(argv)
    if args.authors_schedule:
        args.epochs, args.pretrain_epochs = 2500, 500
    import torch

    torch.set_num_threads(1)  # small full-batch graphs: more threads only spin on a shared machine
    from omicsdata.synth_classify import read_mogonet_layout, write_mogonet_layout

    datasets = []
    tmp = tempfile.TemporaryDirectory()
    if not args.no_generated:
        for name, shuffle in (("planted", False), ("planted-shuffled", True)):
            folder = write_mogonet_layout(Path(tmp.name) / name, n_train=args.n_train, n_test=args.n_test, seed=0,
                                          shuffle_labels=shuffle)
            datasets.append((name, read_mogonet_layout(folder), tuple(args.hidden), 2))
    if args.data_dir:
        for name, spec in REAL.items():
            if (args.data_dir / name / "1_tr.csv").exists():
                hidden = spec["hidden"] if args.authors_schedule else tuple(args.hidden)
                datasets.append((name, read_real(args.data_dir, name), hidden, spec["adj"]))
    rows, dump, t0 = [], {}, time.perf_counter()
    for name, mdata, hidden, adj in datasets:
        per_seed = [run_models(mdata, s, args, hidden, adj) for s in range(args.seeds)]
        dump[name] = per_seed
        cells = {}
        for m in MODELS:
            vals = [np.mean([r[m].get(k, np.nan) for r in per_seed]) for k in ("accuracy", "macro_f1", "auroc")]
            cells[m] = " / ".join(f"{v:.3f}" for v in vals)
        cells["majority"] = f"{majority(mdata):.3f}"
        cells["SGUQ acc@80%"] = f"{np.mean([r['SGUQ']['accuracy_cov80'] for r in per_seed]):.3f}"
        rows.append((name, cells))
        print(f"[{time.perf_counter() - t0:.0f}s] {name} done", file=sys.stderr)
    cols = list(MODELS) + ["majority", "SGUQ acc@80%"]
    print(f"accuracy / macro F1 / AUROC on test, mean over {args.seeds} seeds "
          f"({args.pretrain_epochs}+{args.epochs} epochs)\n")
    print("| dataset | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells[c] for c in cols) + " |")
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(dump, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o),
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
