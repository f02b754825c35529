"""The main job on the embedded default dataset, demo-pancancer.

1. build (first run) and lazily load the store, print a summary table;
2. ``auto-survival`` on the train split: every zoo survival model under one
   inner K-fold CV of the training rows, the leaderboard printed, the best
   one (or a weighted ensemble) refit on all training rows (early stopping on val);
3. print the chosen model's test C-index beside the oracle (true simulated
   risk) and the linear Cox baseline (``coxnet``), and the run time;
4. save a checkpoint, reload it with ``zoo.Estimator.from_pretrained``, check the predictions match;
5. write a Kaplan-Meier plot of the chosen model's predicted risk groups (PNG).
"""
from __future__ import annotations

import argparse
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
    ap.add_argument("--inner-cv", type=int, default=3, help="auto-survival's inner folds on the train split")
    ap.add_argument("--time-budget", type=float, default=150.0,
                    help="auto-survival's time_budget_s for the inner CV (candidates not finished by then are left out)")
    ap.add_argument("--no-train", action="store_true", help="only build/load and print the summary")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    opts = {"n_patients": args.n_patients} if args.n_patients else {}
    mdata = od.load("demo-pancancer", **opts)
    print(summary(mdata))
    print(f"loaded in {time.perf_counter() - t0:.1f}s")
    if args.no_train:
        return 0
    return train(mdata, Path(args.out), args.inner_cv, args.time_budget, t0)


def km_plot(risk, obs, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.metrics import kaplan_meier

    high = risk > np.median(risk)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, sel in (("low predicted risk", ~high), ("high predicted risk", high)):
        t, s = kaplan_meier(obs["os_event"].to_numpy()[sel], obs["os_time"].to_numpy()[sel])
        ax.step(np.r_[0, t] / 365.25, np.r_[1, s], where="post", label=f"{name} (n={sel.sum()})")
    ax.set_xlabel("years")
    ax.set_ylabel("overall survival (Kaplan-Meier)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train(mdata, out: Path, inner_cv: int, budget: float, t0: float) -> int:
    import torch

    import zoo
    from zoo.metrics import concordance_index_censored

    # one intra-op thread: the demo's tensors are small; extra threads only synchronise (a SeNMo fit was
    # ~20x slower with two threads on a busy 2-core machine)
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    model = zoo.create_model("auto-survival", cv=inner_cv, time_budget_s=budget, random_state=0).fit(mdata, split="train")
    print(f"auto-survival: {len(model.leaderboard_) - 1} candidates, inner {inner_cv}-fold CV on the train split, "
          f"refit on all train rows, in {time.perf_counter() - t1:.1f}s")
    print(model.leaderboard_text())
    chosen = "weighted ensemble" if model.mode_ == "ensemble" else model.schema_["auto_survival"]["best"]
    res = model.evaluate(mdata, split="test")
    test = mdata.obs[mdata.obs["split"] == "test"]
    oracle = concordance_index_censored(test["os_event"], test["os_time"], test["true_risk"])
    if "coxnet" in set(model.leaderboard_["candidate"]) and chosen != "coxnet":
        lin = zoo.create_model("coxnet", random_state=0).fit(mdata, split="train").score(mdata, split="test")
    else:
        lin = res["c_index"] if chosen == "coxnet" else float("nan")
    rows = [("model", "test C-index"), ("oracle (true simulated risk)", f"{oracle:.3f}"),
            (f"auto-survival (chosen: {chosen})", f"{res['c_index']:.3f}"),
            ("linear Cox (coxnet, elastic net)", f"{lin:.3f}")]
    w = max(len(r[0]) for r in rows)
    print("\n".join(f"{a.ljust(w)}  {b}" for a, b in rows))
    print(f"chosen model: Uno's C {res.get('uno_c', float('nan')):.3f}, integrated Brier "
          f"{res.get('ibs', float('nan')):.3f} on {res['n']} test patients")
    ckpt = out / "auto-survival-demo"
    model.save_pretrained(ckpt)
    again = zoo.Estimator.from_pretrained(ckpt)
    r1 = model.predict(mdata, split="test")
    r2 = again.predict(mdata, split="test")
    ok = np.allclose(r1, r2, rtol=1e-5, atol=1e-6)
    print(f"checkpoint {ckpt} reloaded with zoo.Estimator.from_pretrained ({type(again).__name__}): "
          f"predictions match = {ok} (max abs diff {np.abs(r1 - r2).max():.2e})")
    png = out / "km_risk_groups.png"
    km_plot(r1, test, png, f"auto-survival ({chosen}) on demo-pancancer: test patients by predicted risk")
    print(f"Kaplan-Meier plot: {png}")
    print(f"total run time {time.perf_counter() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
