"""Survival benchmark: 5-fold CV, the same folds for every model, on real and simulated cohorts.

Rows = cohorts, columns = models; a cell is ``mean C-index ± std over folds``
and, below it, the mean integrated Brier score. Cohorts:

(a) the real clinical cohorts bundled inside scikit-survival's package (read
    offline from the installed package): whas500, gbsg2, veterans_lung_cancer,
    aids, flchain (one-hot categoricals; a missing value becomes 0 plus a
    ``<column>_missing`` flag, no statistic over rows);
(b) ``demo-pancancer`` at 600 and 5,000 patients (all its modalities; the
    oracle C-index of the true simulated log-hazard is shown);
(c) ``sim-highdim``: 300 patients x 10,000 features, 10 of them carry the
    hazard; ``sim-nonlinear``: 600 x 20 with a non-linear log-hazard
    (``sin``, an interaction, a square), so a model that only helps on linear
    data is caught. Both show the oracle.

Folds are stratified by event and seeded (``--seed``); each model is fitted on
4 folds (neural models carve their early-stopping rows out of those) and
scored on the fifth. ``auto-survival`` runs its own inner CV on the 4 folds.

    .venv/bin/python scripts/bench_survival.py                       # the whole table
    .venv/bin/python scripts/bench_survival.py --quick               # a small subset (minutes)
    .venv/bin/python scripts/bench_survival.py --cohorts gbsg2 demo-600 --models coxnet senmo
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

SKSURV = {"whas500": "load_whas500", "gbsg2": "load_gbsg2", "veterans_lung_cancer": "load_veterans_lung_cancer",
          "aids": "load_aids", "flchain": "load_flchain"}
COHORTS = list(SKSURV) + ["demo-600", "demo-5000", "sim-highdim", "sim-nonlinear"]
MODELS = ["coxnet", "rsf", "gbsa", "deepsurv", "senmo", "auto-survival"]


# ------------------------------------------------------------------ cohorts -> MuData
def _mudata(X: np.ndarray, features: list[str], time_, event, name: str, true_risk=None, modality="clinical"):
    import anndata as ad
    import mudata as md

    md.set_options(pull_on_update=False)
    idx = pd.Index([f"p{i}" for i in range(len(time_))], dtype=str)
    a = ad.AnnData(X=np.asarray(X, np.float32), obs=pd.DataFrame(index=idx),
                   var=pd.DataFrame(index=pd.Index(features, dtype=str)))
    mdata = md.MuData({modality: a})
    obs = pd.DataFrame({"os_time": np.asarray(time_, float), "os_event": np.asarray(event, float)}, index=idx)
    if true_risk is not None:
        obs["true_risk"] = true_risk
    mdata.obs = obs
    mdata.uns["bench_cohort"] = name
    return mdata


def sksurv_cohort(name: str):
    """A scikit-survival bundled cohort as a one-modality MuData (``clinical``)."""
    from sksurv import datasets

    X, y = getattr(datasets, SKSURV[name])()
    ev_name, t_name = y.dtype.names
    cols, names = [], []
    for c in X.columns:
        s = X[c]
        if str(s.dtype) in ("category", "object", "bool"):
            d = pd.get_dummies(s.astype(object).where(s.notna(), "NA").astype(str), prefix=c, dtype=float)
            cols.append(d.to_numpy())
            names += list(d.columns)
        else:
            v = s.to_numpy(float)
            miss = ~np.isfinite(v)
            cols.append(np.where(miss, 0.0, v)[:, None])
            names.append(c)
            if miss.any():
                cols.append(miss[:, None].astype(float))
                names.append(f"{c}_missing")
    return _mudata(np.hstack(cols), names, y[t_name], y[ev_name].astype(float), name)


def _times(log_hazard, rng, censor_frac=0.3):
    t = rng.exponential(1.0, len(log_hazard)) / np.exp(log_hazard) * 365.0
    c = rng.exponential(np.quantile(t, 0.5) / max(censor_frac, 1e-3) * 0.7, len(t))
    return np.minimum(t, c), (t <= c).astype(float)


def sim_highdim(seed: int, n: int = 300, p: int = 10_000, k: int = 10):
    """300 x 10,000 standard normal features; the log-hazard is a sparse linear sum over ``k`` of them."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(np.float32)
    beta = np.zeros(p)
    beta[rng.choice(p, k, replace=False)] = rng.choice([-1, 1], k) * rng.uniform(0.4, 0.8, k)
    lh = X @ beta
    t, e = _times(lh, rng)
    return _mudata(X, [f"g{j}" for j in range(p)], t, e, "sim-highdim", lh, modality="rna")


def sim_nonlinear(seed: int, n: int = 600, p: int = 20):
    """600 x 20; log-hazard = 1.5 sin(2 x0) + x1 x2 + 0.7 (x3^2 - 1) - |x4| (plus 15 noise features)."""
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((n, p)).astype(np.float32)
    lh = 1.5 * np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.7 * (X[:, 3] ** 2 - 1) - np.abs(X[:, 4])
    t, e = _times(lh, rng)
    return _mudata(X, [f"x{j}" for j in range(p)], t, e, "sim-nonlinear", lh, modality="clinical")


def demo_cohort(n: int):
    import omicsdata as od

    # in memory (lazy=False): every model reads the same rows many times (folds, inner CV, epochs)
    return od.load("demo-pancancer", lazy=False, **({"n_patients": n} if n != 600 else {}))


def load_cohort(name: str, seed: int, max_rows: int | None):
    if name in SKSURV:
        m = sksurv_cohort(name)
    elif name.startswith("demo-"):
        m = demo_cohort(int(name.split("-")[1]))
    elif name == "sim-highdim":
        m = sim_highdim(seed)
    elif name == "sim-nonlinear":
        m = sim_nonlinear(seed)
    else:
        raise SystemExit(f"unknown cohort {name!r}; known: {COHORTS}")
    if max_rows and m.n_obs > max_rows and not name.startswith("demo-"):
        keep = np.sort(np.random.default_rng(seed).choice(m.n_obs, max_rows, replace=False))
        m = m[keep].copy()
    return m


# ------------------------------------------------------------------ CV
def folds_of(event, k: int, seed: int) -> np.ndarray:
    from zoo.models._stacking import inner_folds

    return inner_folds(event, k, seed)


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"senmo:n_ensemble=1,hidden=(256,64)"`` -> ``("senmo", {"n_ensemble": 1, "hidden": (256, 64)})``."""
    import ast

    name, _, rest = spec.partition(":")
    params = {}
    for part in filter(None, _split_top(rest)):
        k, _, v = part.partition("=")
        try:
            params[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            params[k.strip()] = v.strip()
    return name, params


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "([{" and 1 or 0
        depth -= ch in ")]}" and 1 or 0
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def model_kwargs(spec: str, fold: int, inner_cv, budget) -> tuple[str, dict]:
    import inspect

    import zoo

    name, params = parse_spec(spec)
    cls = zoo.get_model_class(name)
    sig = inspect.signature(cls.__init__).parameters
    kw = {"random_state": fold, "progress": False, "label_col": None}
    if name == "auto-survival":
        kw.update(cv=int(inner_cv) if str(inner_cv).isdigit() else inner_cv, time_budget_s=budget)
    return name, {**{k: v for k, v in kw.items() if k in sig}, **params}


_COHORT_CACHE: dict = {}


def cohort_data(name: str, seed: int, max_rows):
    """The cohort's MuData, its outer folds and its summary, loaded once per process."""

    key = (name, seed, max_rows)
    if key not in _COHORT_CACHE:
        mdata = load_cohort(name, seed, max_rows)
        obs = mdata.obs
        t, e = obs["os_time"].to_numpy(float), obs["os_event"].to_numpy(float)
        info = {"cohort": name, "n": int(mdata.n_obs), "p": int(sum(mdata.mod[m].n_vars for m in mdata.mod)),
                "events": int(e.sum()), "models": {}}
        _COHORT_CACHE.clear()  # one cohort held at a time (demo-5000 is 90 MB)
        _COHORT_CACHE[key] = (mdata, t, e, info)
    mdata, t, e, info = _COHORT_CACHE[key]
    return mdata, t, e, dict(info, models={})


def run_fold(name: str, mname: str, f: int, k: int, seed: int, inner_cv, budget, max_rows) -> dict:
    """One model fitted on 4 outer folds of one cohort and scored on the fifth (one job of the pool)."""
    import zoo
    from zoo.models._stacking import relabelled

    torch_threads()
    mdata, t, e, _ = cohort_data(name, seed, max_rows)
    fold = folds_of(e, k, seed)
    view = relabelled(mdata, np.where(fold == f, "test", "train"))
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name_, kw = model_kwargs(mname, f, inner_cv, budget)
            est = zoo.create_model(name_, **kw)
            est.fit(view, split="train", val_split=None)
            ev = est.evaluate(view, split="test")
    except Exception as ex:  # reported in the table, never hidden
        return {"error": f"{type(ex).__name__}: {str(ex).splitlines()[0][:120] if str(ex) else ''}"}
    return {"c_index": float(ev["c_index"]), "ibs": float(ev.get("ibs", np.nan)),
            "seconds": time.perf_counter() - t0}


def cohort_info(name: str, k: int, seed: int, max_rows) -> dict:
    """Size, events and (for simulated cohorts) the per-fold oracle C-index of the true log-hazard."""
    from zoo.metrics import concordance_index_censored

    mdata, t, e, info = cohort_data(name, seed, max_rows)
    if "true_risk" in mdata.obs.columns:
        fold = folds_of(e, k, seed)
        tr = mdata.obs["true_risk"].to_numpy(float)
        info["oracle"] = [float(concordance_index_censored(e[fold == f], t[fold == f], tr[fold == f]))
                          for f in range(k)]
    return info


def log_line(name: str, mname: str, r: dict) -> str:
    cs = r["c_index"]
    body = (f"C {np.mean(cs):.3f} ± {np.std(cs, ddof=1):.3f}  IBS {np.nanmean(r['ibs']):.3f}  "
            f"{np.sum(r['seconds']):.0f}s fitting" if not r["error"] else f"ERROR {r['error']}")
    return f"  {name:<22} {mname:<14} {body}"


#: rough relative cost of a job, so the pool starts the longest ones first (a better packing on 2 cores)
def job_cost(info: dict, mname: str) -> float:
    return info["n"] * max(info["p"], 50) ** 0.5 * (8.0 if mname.startswith("auto-survival") else 1.0)


def run_all(cohorts, models, k, seed, inner_cv, budget, max_rows, jobs: int, log) -> list[dict]:
    """Every (cohort, model, outer fold) as one job on ``jobs`` worker processes; results in table order."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    infos = {c: cohort_info(c, k, seed, max_rows) for c in cohorts}
    _COHORT_CACHE.clear()
    work = sorted(((c, m, f) for c in cohorts for m in models for f in range(k)),
                  key=lambda j: -job_cost(infos[j[0]], j[1]))
    got: dict = {}

    def record(job, r):
        c, m, f = job
        slot = infos[c]["models"].setdefault(m, {"c_index": [None] * k, "ibs": [None] * k,
                                                  "seconds": [None] * k, "error": None, "done": 0})
        if "error" in r:
            slot["error"] = slot["error"] or r["error"]
        else:
            for key in ("c_index", "ibs", "seconds"):
                slot[key][f] = r[key]
        slot["done"] += 1
        if slot["done"] == k:
            del slot["done"]
            for key in ("c_index", "ibs", "seconds"):
                slot[key] = [v for v in slot[key] if v is not None]
            log(log_line(c, m, slot))
        got[job] = True

    if jobs <= 1:
        for job in work:
            record(job, run_fold(*job[:2], job[2], k, seed, inner_cv, budget, max_rows))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(run_fold, c, m, f, k, seed, inner_cv, budget, max_rows): (c, m, f)
                    for c, m, f in work}
            for fut in as_completed(futs):
                record(futs[fut], fut.result())
    return [dict(infos[c], models={m: infos[c]["models"][m] for m in models}) for c in cohorts]


# ------------------------------------------------------------------ table
def cell(r: dict) -> str:
    if r.get("error"):
        return "error"
    c = np.asarray(r["c_index"])
    return f"{c.mean():.3f} ± {c.std(ddof=1):.3f} ({np.nanmean(r['ibs']):.3f})"


def table(results: list[dict], models: list[str]) -> str:
    head = ["cohort (n x p, events)", "oracle"] + models
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        orc = f"{np.mean(r['oracle']):.3f}" if "oracle" in r else "-"
        cells = [cell(r["models"][m]) if m in r["models"] else "-" for m in models]
        lines.append(f"| {r['cohort']} ({r['n']} x {r['p']}, {r['events']}) | {orc} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals(results: list[dict], models: list[str]) -> list[str]:
    """The issue's goals, checked on these results."""
    out = []
    singles = [m for m in models if m != "auto-survival"]
    if "auto-survival" in models and singles:
        for r in results:
            ok = {m: np.asarray(r["models"][m]["c_index"]) for m in models
                  if m in r["models"] and not r["models"][m]["error"]}
            if "auto-survival" not in ok or not any(m in ok for m in singles):
                continue
            best = max((m for m in singles if m in ok), key=lambda m: ok[m].mean())
            a = ok["auto-survival"]
            se = np.sqrt(a.var(ddof=1) / len(a) + ok[best].var(ddof=1) / len(ok[best]))
            verdict = "yes" if a.mean() >= ok[best].mean() - se else "NO"
            out.append(f"auto-survival >= best single ({best}) within one SE on {r['cohort']}: {verdict} "
                       f"({a.mean():.3f} vs {ok[best].mean():.3f}, SE {se:.3f})")
    if "senmo" in models and "coxnet" in models:
        pairs = [(np.mean(r["models"]["senmo"]["c_index"]), np.mean(r["models"]["coxnet"]["c_index"]))
                 for r in results if not r["models"].get("senmo", {}).get("error", True)
                 and not r["models"].get("coxnet", {}).get("error", True)]
        if pairs:
            s, c = np.mean(pairs, 0)
            out.append(f"SeNMo >= coxnet on the average over {len(pairs)} cohorts: {'yes' if s >= c else 'NO'} "
                       f"({s:.3f} vs {c:.3f})")
        for r in results:
            if r["cohort"].startswith("demo-") and "senmo" in r["models"] and "coxnet" in r["models"]:
                s, c = np.mean(r["models"]["senmo"]["c_index"]), np.mean(r["models"]["coxnet"]["c_index"])
                out.append(f"SeNMo > linear Cox (coxnet) on {r['cohort']}: {'yes' if s > c else 'NO'} ({s:.3f} vs {c:.3f})")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", nargs="+", default=COHORTS, help=f"default: all of {COHORTS}")
    ap.add_argument("--models", nargs="+", default=MODELS,
                    help=f"default: {MODELS}; a model may carry parameters: 'senmo:n_ensemble=1,dropout=0.1'")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner-cv", default="auto",
                    help="auto-survival's inner folds (default: its own default, 'auto': 3, or 2 from 2,000 rows)")
    ap.add_argument("--time-budget", type=float, default=None, help="auto-survival's time_budget_s per outer fold")
    ap.add_argument("--max-rows", type=int, default=None,
                    help="subsample larger real/simulated cohorts (default: every row; only for quick looks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes, one (cohort, model, outer fold) fit each (default: every core)")
    ap.add_argument("--quick", action="store_true", help="gbsg2, veterans, sim-nonlinear, demo-600; 3 folds")
    ap.add_argument("--json", default=None, help="write the raw per-fold results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.cohorts = ["veterans_lung_cancer", "gbsg2", "sim-nonlinear", "demo-600"]
        args.folds = 3
    torch_threads()
    t0 = time.perf_counter()
    print(f"{len(args.cohorts) * len(args.models) * args.folds} jobs (cohort x model x outer fold) on "
          f"{args.jobs} worker process(es), one torch thread each", flush=True)
    results = run_all(args.cohorts, args.models, args.folds, args.seed, args.inner_cv, args.time_budget,
                      args.max_rows, args.jobs, lambda s: print(s, flush=True))
    total = time.perf_counter() - t0
    print()
    print(f"{args.folds}-fold CV (same folds for every model, seed {args.seed}); cell = mean C-index ± std over "
          "folds (mean integrated Brier score)")
    print(table(results, args.models))
    print()
    for g in goals(results, args.models):
        print(g)
    print(f"total {total / 60:.1f} min wall on {args.jobs} worker process(es) "
          f"({sum(sum(m['seconds']) for r in results for m in r['models'].values()) / 60:.1f} min of fitting)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "seconds": total}, indent=1))
    return 0


def torch_threads():
    import torch

    # one thread: these tensors are tiny (a few hundred rows x <= 10k features), so intra-op threads only add
    # synchronisation; on a shared 2-core machine two threads made a SeNMo fit ~20x slower (35 s -> 1.6 s on gbsg2)
    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))


if __name__ == "__main__":
    sys.exit(main())
