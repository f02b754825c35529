"""The main job on the embedded default dataset, demo-pancancer.

1. build (first run) and lazily load the store, print a summary table;
2. train SeNMo through ``od.torch.stream`` (train split, early stopping on val);
3. print the test C-index beside the oracle (true simulated risk) and a linear
   Cox baseline, the cancer-type accuracy and the run time;
4. save a checkpoint, reload it with ``from_pretrained``, check the predictions match;
5. write a Kaplan-Meier plot of predicted risk groups (PNG).
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
    ap.add_argument("--max-epochs", type=int, default=30, help="SeNMo training epochs (early stopping may stop sooner)")
    ap.add_argument("--no-train", action="store_true", help="only build/load and print the summary")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    opts = {"n_patients": args.n_patients} if args.n_patients else {}
    mdata = od.load("demo-pancancer", **opts)
    print(summary(mdata))
    print(f"loaded in {time.perf_counter() - t0:.1f}s")
    if args.no_train:
        return 0
    return train(mdata, Path(args.out), args.max_epochs, t0)


def linear_cox_baseline(model, mdata) -> np.ndarray:
    """Ridge Cox on the top principal components of the preprocessed train features; test risks."""
    import torch
    from sklearn.decomposition import PCA

    from zoo import data as zdata
    from zoo.losses import cox_ph_loss

    def feats(split):
        rows = zdata.select_rows(mdata, split)
        src = zdata.InMemoryBatches(mdata, rows, list(model.schema_["modalities"]), len(rows))
        b = model.preprocessor_(next(iter(src)))
        return torch.cat([b[m] for m in model.schema_["modalities"]], 1).numpy(), rows

    Xtr, rtr = feats("train")
    Xte, _ = feats("test")
    pca = PCA(n_components=20, random_state=0).fit(Xtr)
    Ztr = torch.tensor(pca.transform(Xtr) / pca.singular_values_ * np.sqrt(len(Xtr)), dtype=torch.float64)
    Zte = torch.tensor(pca.transform(Xte) / pca.singular_values_ * np.sqrt(len(Xtr)), dtype=torch.float64)
    obs = mdata.obs.iloc[rtr]
    t = torch.tensor(obs["os_time"].to_numpy(float))
    e = torch.tensor(obs["os_event"].to_numpy(float))
    beta = torch.zeros(Ztr.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([beta], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = cox_ph_loss(Ztr @ beta, t, e) + 1e-2 * beta.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return (Zte @ beta).detach().numpy()


def km_plot(risk, obs, path: Path) -> None:
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
    ax.set_title("SeNMo on demo-pancancer: test patients by predicted risk")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train(mdata, out: Path, max_epochs: int, t0: float) -> int:
    import zoo
    from zoo.metrics import concordance_index_censored

    out.mkdir(parents=True, exist_ok=True)
    t1 = time.perf_counter()
    model = zoo.SeNMo(random_state=0, max_epochs=max_epochs).fit(mdata, split="train")
    fit_s = time.perf_counter() - t1
    src = "od.torch.stream" if model.use_stream and zoo.data.stream_available() else "in-memory tensors"
    print(f"trained SeNMo through {src}: {model.n_epochs_} epochs in {fit_s:.1f}s "
          f"(best val C-index {model.best_val_score_:.3f})")
    res = model.evaluate(mdata, split="test")
    test = mdata.obs[mdata.obs["split"] == "test"]
    oracle = concordance_index_censored(test["os_event"], test["os_time"], test["true_risk"])
    base = concordance_index_censored(test["os_event"], test["os_time"], linear_cox_baseline(model, mdata))
    rows = [("model", "test C-index"), ("oracle (true simulated risk)", f"{oracle:.3f}"),
            ("SeNMo", f"{res['c_index']:.3f}"), ("linear Cox (20 PCs, ridge)", f"{base:.3f}")]
    w = max(len(r[0]) for r in rows)
    print("\n".join(f"{a.ljust(w)}  {b}" for a, b in rows))
    print(f"SeNMo Uno's C {res.get('uno_c', float('nan')):.3f}, integrated Brier {res.get('ibs', float('nan')):.3f}; "
          f"cancer-type accuracy {res['accuracy']:.3f} (AUROC {res.get('auroc', float('nan')):.3f}) "
          f"on {res['n']} test patients")
    ckpt = out / "senmo-demo"
    model.save_pretrained(ckpt)
    again = zoo.SeNMo.from_pretrained(ckpt)
    r1 = model.predict(mdata, split="test")
    r2 = again.predict(mdata, split="test")
    ok = np.allclose(r1, r2, rtol=1e-5, atol=1e-6)
    print(f"checkpoint {ckpt} reloaded with from_pretrained: predictions match = {ok} "
          f"(max abs diff {np.abs(r1 - r2).max():.2e})")
    png = out / "km_risk_groups.png"
    km_plot(r1, test, png)
    print(f"Kaplan-Meier plot: {png}")
    print(f"total run time {time.perf_counter() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
