"""Fault rows for stores and the cache (issue 15), used by ``scripts/fault_suite.py``.

Each row is ``(name, callable)``; the callable takes a scratch folder and
returns ``(clean_error, nothing_lost, detail)``: ``clean_error`` is True when
the fault ended in an :class:`~omicsdata.errors.OmicsDataError` naming the
thing (or, for faults that must be survived, when the operation succeeded),
``nothing_lost`` when every store/file that existed before is still there and
intact and nothing half-written sits under a final name. Every row works on
its own scratch copy of one small store (real files, real processes where the
fault is about processes).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from omicsdata.errors import OmicsDataError

_SEED: dict[str, Path] = {}


def _seed(scratch: Path) -> Path:
    """A small store written once per process (demo cohort, 60 patients), copied by every row."""
    if "store" not in _SEED or not _SEED["store"].exists():
        from omicsdata import synth
        from omicsdata.splits import assign_splits
        from omicsdata.storage import write_store

        m = synth.simulate_pancancer(synth.CohortSpec(n_patients=60, n_cancer_types=2, seed=0))
        m.obs["split"] = assign_splits(m.obs_names.to_numpy(), m.obs["cancer_type"].to_numpy(), None, 0)
        root = Path(scratch).parent / "faults-store-seed"
        shutil.rmtree(root, ignore_errors=True)
        _SEED["store"] = write_store(m, root / "seed.zarr", dataset="demo-pancancer")
    return _SEED["store"]


def _copy(scratch: Path) -> Path:
    dst = Path(scratch) / "store.zarr"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(_seed(scratch), dst)
    return dst


def _outcome(fn, *needles: str) -> tuple[bool, str]:
    try:
        fn()
    except OmicsDataError as e:
        msg = str(e)
        return all(n.lower() in msg.lower() for n in needles), f"{type(e).__name__}: {msg[:160]}"
    except Exception as e:  # noqa: BLE001 - a raw exception is what a row reports
        return False, f"RAW {type(e).__name__}: {e}"
    return False, "no error"


def _readers(path: Path) -> dict:
    import omicsdata as od

    def stream(workers):
        def run():
            for _ in od.torch.stream(path, split=None, batch_size=32, modalities=["rna"], num_workers=workers,
                                     multiprocessing_context="fork" if workers else None):
                pass
        return run

    def mapped():
        ds = od.torch.MultiOmicsDataset(path, split=None, modalities=["rna"])
        ds.__getitems__(list(range(len(ds))))

    return {"load": lambda: od.load(path)["rna"].X.compute(), "stream": stream(0), "stream-worker": stream(1),
            "map-dataset": mapped}


def _chunk(path: Path) -> Path:
    return path / "mod" / "rna" / "X" / "c" / "0" / "0"


def _damage_row(kind: str, reader: str):
    def row(scratch: Path):
        path = _copy(scratch)
        chunk = _chunk(path)
        data = bytearray(chunk.read_bytes())
        if kind == "flip":
            data[len(data) // 2] ^= 0x01
            chunk.write_bytes(bytes(data))
            needles = ("mod/rna/X/c/0/0", "force=True")
        elif kind == "truncate":
            chunk.write_bytes(bytes(data[: len(data) // 2]))
            needles = ("mod/rna/X/c/0/0", "force=True")
        else:
            chunk.unlink()
            needles = ("dataset 'demo-pancancer'", "mod/rna/X", "c/0/0", "force=True")
        clean, detail = _outcome(_readers(path)[reader], *needles)
        return clean, (path / "manifest.json").is_file(), detail
    return row


def version_is_a_path(scratch: Path):
    import omicsdata as od

    victim = Path(scratch) / "some" / "dir"
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "thesis.txt").write_text("precious")
    clean, detail = _outcome(lambda: od.load("demo-pancancer", version=str(victim), n_patients=20),
                             "not a plain folder name")
    return clean, (victim / "thesis.txt").read_text() == "precious", detail


def write_store_onto_user_folder(scratch: Path):
    import omicsdata as od

    folder = Path(scratch) / "mine"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("keep me")
    m = od.load(_seed(scratch), lazy=False)
    clean, detail = _outcome(lambda: od.write_store(m, folder), str(folder), "not an omicsdata store")
    return clean, [p.name for p in folder.iterdir()] == ["notes.txt"], detail


def edited_mudata_streams_edits(scratch: Path):
    import omicsdata as od

    m = od.load(_copy(scratch))
    m["rna"].X[:] = 0
    total = sum(float(b["rna"].abs().sum()) for b in od.torch.stream(m, split=None, batch_size=64,
                                                                     modalities=["rna"]))
    return total == 0, True, f"sum of streamed rna after X[:] = 0: {total}"


def full_disk(scratch: Path):
    import omicsdata as od
    from omicsdata.storage import verify_store

    path = _copy(scratch)
    m = od.load(path, lazy=False)
    os.environ["OMICSDATA_TEST_WRITE_FAULT"] = "enospc"
    try:
        clean, detail = _outcome(lambda: od.write_store(m, path, dataset="demo-pancancer"), "disk is full", str(path))
    finally:
        del os.environ["OMICSDATA_TEST_WRITE_FAULT"]
    left = [p.name for p in Path(scratch).iterdir() if p.name.startswith(".tmp-")]
    return clean, verify_store(path)["ok"] and not left, detail + (f"; left: {left}" if left else "")


_REPLACE = ("import sys, omicsdata as od; m = od.load(sys.argv[1], lazy=False); "
            "od.write_store(m, sys.argv[1], dataset='demo-pancancer')")


def kill_between_renames(scratch: Path):
    import omicsdata as od
    from omicsdata.storage import verify_store

    path = _copy(scratch)
    env = dict(os.environ, OMICSDATA_TEST_PUBLISH_PAUSE="60")
    proc = subprocess.Popen([sys.executable, "-c", _REPLACE, str(path)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        od.load(path)
        clean, detail = True, "next open restored the old store"
    except OmicsDataError as e:
        clean, detail = False, str(e)[:160]
    return clean, path.exists() and verify_store(path)["ok"], detail


_HOLD = ("import sys, time; from omicsdata import paths\n"
         "with paths.locked(sys.argv[1]):\n    open(sys.argv[2], 'w').close(); time.sleep(120)")


def hung_lock_holder(scratch: Path):
    import omicsdata as od
    from omicsdata import paths

    card = od.info("demo-pancancer")
    key = f"build-{card.name}-{paths.store_dir(card.name, card.version).name}"
    flag = Path(scratch) / "holding"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, key, str(flag)])
    old = os.environ.get("OMICSDATA_LOCK_TIMEOUT")
    try:
        while not flag.exists() and proc.poll() is None:
            time.sleep(0.02)
        os.environ["OMICSDATA_LOCK_TIMEOUT"] = "1"
        clean, detail = _outcome(lambda: od.load("demo-pancancer"), "lock", f"pid {proc.pid}")
    finally:
        os.environ.pop("OMICSDATA_LOCK_TIMEOUT") if old is None else os.environ.__setitem__("OMICSDATA_LOCK_TIMEOUT", old)
        proc.kill()
        proc.wait()
    return clean, True, detail


def stale_tmp_of_live_writer(scratch: Path):
    from omicsdata import paths

    folder = Path(scratch) / "stores"
    folder.mkdir(parents=True, exist_ok=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tmp = folder / f"{paths.TMP_MARK}1.0-{live.pid}-0123abcd"
        tmp.mkdir(exist_ok=True)
        paths.clean_stale_tmp(folder)
        kept = tmp.is_dir()
    finally:
        live.kill()
        live.wait()
    removed = paths.clean_stale_tmp(folder) == 1 and not tmp.exists()
    return removed, kept, f"live writer's temporary kept: {kept}; removed once it died: {removed}"


def negative_builder_option(scratch: Path):
    import omicsdata as od

    clean, detail = _outcome(lambda: od.build("demo-pancancer", n_patients=-5), "n_patients")
    return clean, True, detail


def malformed_user_catalog(scratch: Path):
    import warnings

    import omicsdata as od

    cat = Path(scratch) / "catalog"
    cat.mkdir(parents=True, exist_ok=True)
    (cat / "x.yaml").mkdir(exist_ok=True)
    (cat / "broken.yaml").write_text("name: [unclosed\n")
    old = os.environ.get("OMICSDATA_CATALOG")
    os.environ["OMICSDATA_CATALOG"] = str(cat)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            listed = "demo-pancancer" in od.list_datasets()
        clean, detail = _outcome(lambda: od.info("broken"), "broken.yaml")
    finally:
        os.environ.pop("OMICSDATA_CATALOG") if old is None else os.environ.__setitem__("OMICSDATA_CATALOG", old)
    return clean and listed, True, f"built-ins listed: {listed}; {detail}"


ROWS = [
    *[(f"chunk {kind} -> {reader}", _damage_row(kind, reader))
      for kind in ("flip", "truncate", "delete") for reader in ("load", "stream", "stream-worker", "map-dataset")],
    ("load(version='/some/dir')", version_is_a_path),
    ("write_store onto a user's folder", write_store_onto_user_folder),
    ("stream an edited MuData", edited_mudata_streams_edits),
    ("disk full (ENOSPC) replacing a store", full_disk),
    ("kill -9 between the two publish renames", kill_between_renames),
    ("hung process holding the build lock", hung_lock_holder),
    ("stale .tmp of a live writer", stale_tmp_of_live_writer),
    ("negative builder option", negative_builder_option),
    ("malformed user catalog / folder x.yaml", malformed_user_catalog),
]


if __name__ == "__main__":  # run the rows alone: python scripts/faults_store.py
    import tempfile

    with tempfile.TemporaryDirectory(prefix="faults-store-") as tmp:
        os.environ["OMICSDATA_HOME"] = str(Path(tmp) / "home")
        bad = 0
        for i, (name, fn) in enumerate(ROWS):
            scratch = Path(tmp) / f"row{i}"
            scratch.mkdir()
            t0 = time.perf_counter()
            clean, kept, detail = fn(scratch)
            bad += not (clean and kept)
            print(f"| {name} | {'yes' if clean else 'NO'} | {'yes' if kept else 'NO'} | "
                  f"{time.perf_counter() - t0:.1f} s | {detail[:100]} |", flush=True)
        sys.exit(1 if bad else 0)
