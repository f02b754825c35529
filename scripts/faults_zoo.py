"""Fault rows for models and checkpoints (issue 15); same row contract as :mod:`faults_io`.

A small SeNMo is fitted once per process (:func:`fitted`) on an in-memory
simulated cohort; each row tampers with a copy of its checkpoint or its data.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from faults_io import outcome  # noqa: E402

FAST = dict(hidden=(16, 8), max_epochs=2, patience=2, batch_size=32, progress=False, random_state=0, n_ensemble=1)
_CACHE: dict = {}


def cohort():
    """A small in-memory cohort with a train/val/test split (cached per process)."""
    if "cohort" not in _CACHE:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import small_cohort

        _CACHE["cohort"] = small_cohort(120, 3, seed=1, n_genes=40, n_cpgs=20, n_mirnas=10, n_mutation_genes=10,
                                        n_proteins=10)
    return _CACHE["cohort"]


def fitted():
    if "model" not in _CACHE:
        import zoo

        _CACHE["model"] = zoo.SeNMo(**FAST).fit(cohort())
    return _CACHE["model"]


def _ckpt(tmp: Path) -> Path:
    path = tmp / "ckpt"
    fitted().save_pretrained(path)
    return path


class _Evil:
    """Unpickling this would create the marker file named in its argument."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickle_config(tmp):
    import zoo

    ck = _ckpt(tmp)
    marker = tmp / "PWNED"
    (ck / "config.json").write_bytes(pickle.dumps(_Evil(marker)))
    clean, detail = outcome(lambda: zoo.Estimator.from_pretrained(ck), "config.json", "pickle")
    return clean and not marker.exists(), (ck / "model.safetensors").is_file(), detail


def absurd_sizes(tmp):
    import zoo

    ck = _ckpt(tmp)
    cfg = json.loads((ck / "config.json").read_text())
    cfg["params"]["hidden"] = [1e12]
    (ck / "config.json").write_text(json.dumps(cfg))
    clean, detail = outcome(lambda: zoo.Estimator.from_pretrained(ck), "config.json", "hidden")
    return clean, True, detail


def schema_missing_keys(tmp):
    import zoo

    ck = _ckpt(tmp)
    sch = json.loads((ck / "schema.json").read_text())
    for v in sch["modalities"].values():
        v.pop("features", None)
    (ck / "schema.json").write_text(json.dumps(sch))
    clean, detail = outcome(lambda: zoo.Estimator.from_pretrained(ck), "schema", "features")
    return clean, True, detail


def wrong_shapes(tmp):
    import torch
    from safetensors.torch import load_file, save_file

    import zoo

    ck = _ckpt(tmp)
    t = load_file(str(ck / "model.safetensors"))
    k = next(k for k, v in t.items() if v.ndim == 2)
    t[k] = torch.zeros(t[k].shape[0] + 1, t[k].shape[1])
    save_file(t, str(ck / "model.safetensors"))
    clean, detail = outcome(lambda: zoo.Estimator.from_pretrained(ck), "tensors")
    return clean, True, detail


def schema_vs_data(tmp):
    """A checkpoint whose schema names features the data lacks entirely: a clear error, not NaN or zeros."""
    import zoo

    ck = _ckpt(tmp)
    sch = json.loads((ck / "schema.json").read_text())
    for v in sch["modalities"].values():
        v["features"] = [f"NOT-IN-DATA-{i}" for i in range(len(v["features"]))]
    (ck / "schema.json").write_text(json.dumps(sch))
    m = zoo.Estimator.from_pretrained(ck)
    clean, detail = outcome(lambda: m.predict(cohort(), split="test"), "feature")
    return clean, True, detail


def save_over_user_folder(tmp):
    folder = tmp / "my-results"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"years of work")
    clean, detail = outcome(lambda: fitted().save_pretrained(folder), "my-results", "nothing was deleted")
    return clean, (folder / "thesis.docx").read_bytes() == b"years of work", detail


def nan_training_cell(tmp):
    import zoo

    c = cohort().copy()
    train = np.flatnonzero((c.obs["split"] == "train").to_numpy())
    X = np.asarray(c["rna"].X, dtype=np.float32).copy()
    X[train[3], 2] = np.nan
    c["rna"].X = X
    name, feat = str(c.obs_names[train[3]]), str(c["rna"].var_names[2])
    clean, detail = outcome(lambda: zoo.SeNMo(**FAST).fit(c), "rna", feat, name)
    return clean, True, detail


def inf_predict_input(tmp):
    c = cohort().copy()
    X = np.asarray(c["rna"].X, dtype=np.float32).copy()
    X[5, 1] = np.inf
    c["rna"].X = X
    clean, detail = outcome(lambda: fitted().predict(c), "rna", str(c["rna"].var_names[1]))
    return clean, True, detail


def all_censored(tmp):
    import zoo

    c = cohort().copy()
    c.obs["os_event"] = 0
    clean, detail = outcome(lambda: zoo.SeNMo(**FAST).fit(c), "censored")
    return clean, True, detail


def inf_times(tmp):
    import zoo

    c = cohort().copy()
    t = c.obs["os_time"].to_numpy(dtype=float)
    t[np.flatnonzero((c.obs["split"] == "train").to_numpy())[0]] = np.inf
    c.obs["os_time"] = t
    clean, detail = outcome(lambda: zoo.SeNMo(**FAST).fit(c), "os_time", "finite")
    return clean, True, detail


def nan_times_all(tmp):
    import zoo

    c = cohort().copy()
    c.obs["os_time"] = np.nan
    clean, detail = outcome(lambda: zoo.SeNMo(**FAST).fit(c), "os_time", "NaN")
    return clean, True, detail


def _cli(args: list[str]) -> tuple[bool, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, env=env, timeout=120)
    err = r.stderr.strip()
    ok = r.returncode == 1 and len(err.splitlines()) == 1 and "Traceback" not in err and err.startswith("zoo")
    return ok, f"exit {r.returncode}: {err[:160]}"


def cli_bad_input(tmp):
    rows = [_cli(["fit", "no-such-dataset", "--out", str(tmp / "o")]),
            _cli(["fit", "x", "--params", "{not json", "--out", str(tmp / "o")]),
            _cli(["predict", str(tmp / "no-such-ckpt"), "demo-pancancer"]),
            _cli(["frobnicate"])]
    return all(ok for ok, _ in rows), not (tmp / "o").exists(), " | ".join(d for _, d in rows)


ROWS = [
    ("checkpoint: pickle saved as config.json", pickle_config),
    ("checkpoint: config hidden=[1e12]", absurd_sizes),
    ("checkpoint: schema missing keys", schema_missing_keys),
    ("checkpoint: wrong tensor shapes", wrong_shapes),
    ("checkpoint: schema does not match the data", schema_vs_data),
    ("save_pretrained onto a user's folder", save_over_user_folder),
    ("zoo: NaN in one training cell", nan_training_cell),
    ("zoo: inf in a predict input", inf_predict_input),
    ("zoo: all-censored training", all_censored),
    ("zoo: inf survival time", inf_times),
    ("zoo: all survival times NaN", nan_times_all),
    ("zoo CLI: bad input", cli_bad_input),
]


def cleanup():
    _CACHE.clear()
    shutil.rmtree(ROOT / ".never", ignore_errors=True)
