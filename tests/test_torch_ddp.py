"""A real 2-process DDP run (torchrun, gloo, CPU): every train sample once per epoch, equal batches per rank."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import omicsdata as od


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_ranks_exact_once(demo_store, tmp_path):
    out = tmp_path / "ddp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(Path(__file__).with_name("ddp_worker.py")), str(demo_store), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    m = od.open_store(demo_store)
    train = np.flatnonzero(m.obs["split"].astype(str).to_numpy() == "train").tolist()
    assert rep["world_size"] == 2
    for ep in rep["epochs"]:
        print(f"epoch {ep['epoch']}: served {ep['served']} of {len(train)} train samples, distinct "
              f"{ep['distinct']}, max times served {ep['max_times_served']}, samples per rank "
              f"{ep['samples_per_rank']}, batches per rank {ep['batches_per_rank']}")
        assert ep["rows"] == train  # every train sample exactly once across both ranks and their workers
        assert ep["max_times_served"] == 1
        assert len(set(ep["batches_per_rank"])) == 1 and ep["batches_per_rank"] == ep["len_per_rank"]
    assert rep["epochs"][0]["first_rows_rank0"] != rep["epochs"][1]["first_rows_rank0"]  # set_epoch reshuffles
