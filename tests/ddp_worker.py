"""One rank of the 2-process DDP exact-once check (run by torchrun from test_torch_ddp.py).

usage: torchrun --nproc_per_node 2 tests/ddp_worker.py STORE OUT.json
Each rank streams the train split for two epochs (2 DataLoader workers each,
rank/world size taken from torch.distributed), all-gathers the served store
rows, and rank 0 writes per-epoch counts to OUT.json.
"""
from __future__ import annotations

import json
import sys
from collections import Counter

import torch.distributed as dist

import omicsdata as od


def main(store: str, out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    s = od.torch.stream(store, split="train", batch_size=16, shuffle=True, seed=11, num_workers=2,
                        modalities=["rna", "mutation"], densify=True, multiprocessing_context="fork")
    report = {"world_size": world, "epochs": []}
    for epoch in range(2):
        s.set_epoch(epoch)
        rows, nbatches = [], 0
        for b in s:
            rows.extend(b["index"].tolist())
            nbatches += 1
        gathered = [None] * world
        dist.all_gather_object(gathered, {"rank": rank, "rows": rows, "batches": nbatches, "len": len(s)})
        if rank == 0:
            allrows = [r for g in gathered for r in g["rows"]]
            counts = Counter(allrows)
            report["epochs"].append({
                "epoch": epoch,
                "batches_per_rank": [g["batches"] for g in gathered],
                "len_per_rank": [g["len"] for g in gathered],
                "samples_per_rank": [len(g["rows"]) for g in gathered],
                "served": len(allrows),
                "distinct": len(counts),
                "max_times_served": max(counts.values()),
                "rows": sorted(allrows),
                "first_rows_rank0": gathered[0]["rows"][:8],
            })
    if rank == 0:
        with open(out, "w") as fh:
            json.dump(report, fh)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
