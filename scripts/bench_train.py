"""SeNMo epoch time: od.torch.stream vs a plain loop over in-memory tensors (same model, same steps).

    .venv/bin/python scripts/bench_train.py --n-patients 20000 --epochs 2

Both arms run the identical SeNMo training step (preprocessing, forward,
Cox + cross-entropy loss, L1, Adam) on the train split of demo-pancancer;
only the batch source differs. The in-memory arm's tensors are materialised
before timing (its load time is reported separately). Goal: ratio <= 1.15.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import omicsdata as od
import zoo
from zoo import data as zdata


def run_epochs(model, source, tg, epochs):
    module = model.module_
    opt, _ = model.configure_optimizers(module, 10 ** 6)
    times = []
    for ep in range(epochs):
        source.set_epoch(ep)
        module.train()
        if model.device_.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        n = 0
        for raw in source:
            inputs = model.preprocessor_(raw)
            targets = {k: v.index_select(0, inputs["index"]) for k, v in tg.items()}
            loss = model.loss(model.forward(module, inputs), targets) + model.penalty(module)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += inputs["index"].shape[0]
        if model.device_.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times, n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-patients", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    mdata = od.load("demo-pancancer", n_patients=args.n_patients)
    model = zoo.SeNMo(max_epochs=1, batch_size=args.batch_size, device=args.device, progress=False, random_state=0)
    # fit one epoch to get the fitted preprocessing and a module; timing below is separate
    model.fit(mdata, split="train")
    tg = model._targets_torch(model._targets(mdata), model.device_)
    mods = list(model.schema_["modalities"])
    rows = zdata.select_rows(mdata, "train")
    t = time.perf_counter()
    mem = zdata.InMemoryBatches(mdata, rows, mods, args.batch_size, shuffle=True, seed=0, device=model.device_)
    load_s = time.perf_counter() - t
    stream = zdata.StreamBatches(mdata, "train", rows, mods, args.batch_size, shuffle=True, seed=0,
                                 device=model.device_)
    init = {k: v.clone() for k, v in model.module_.state_dict().items()}
    arms = (("in-memory tensors", mem), ("od.torch.stream", stream))
    for _, src in arms:  # warm-up epoch of each arm (not timed)
        model.module_.load_state_dict(init)
        run_epochs(model, src, tg, 1)
    times = {name: [] for name, _ in arms}
    for ep in range(args.epochs):  # arms interleaved epoch by epoch: shared-machine load hits both alike
        for name, src in arms:
            model.module_.load_state_dict(init)
            src.set_epoch(ep + 1)
            (t_ep,), n = run_epochs(model, src, tg, 1)
            times[name].append(t_ep)
    res = {name: (float(np.median(ts)), n) for name, ts in times.items()}
    base = res["in-memory tensors"][0]
    print(f"SeNMo training epoch, demo-pancancer {args.n_patients:,} patients ({len(rows):,} train), "
          f"batch {args.batch_size}, device {model.device_}, torch threads {torch.get_num_threads()}")
    print("| data path | epoch s (median of %d) | samples/s | ratio vs in-memory |" % args.epochs)
    print("| --- | --- | --- | --- |")
    for name, (s, n) in res.items():
        print(f"| {name} | {s:.2f} | {n / s:,.0f} | {s / base:.3f} |")
    print(f"(in-memory arm: {load_s:.1f}s to materialise the train split before timing; goal ratio <= 1.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
