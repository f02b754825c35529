"""Cache: $OMICSDATA_HOME / platform dir, atomic writes, one build across processes, SIGKILL safety."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import platformdirs
import pytest
import yaml

import omicsdata as od
from omicsdata import paths
from omicsdata.store import read_manifest

REPO = Path(__file__).resolve().parents[1]

BUILDERS = textwrap.dedent('''
    """Test-only builders, registered when this module is imported."""
    import os
    import time

    import anndata as ad
    import dask
    import dask.array as da
    import mudata as md
    import numpy as np
    import pandas as pd

    from omicsdata.builders import BuildResult, register


    def _obs(n):
        ids = [f"S{i:05d}" for i in range(n)]
        return ids, pd.DataFrame({"patient_id": [f"P{i // 2}" for i in range(n)],
                                  "label": np.array(["a", "b"])[np.arange(n) % 2]}, index=ids)


    @register("odtest-count")
    def build_count(card, workdir, n=40):
        with open(os.environ["ODTEST_MARKER"], "a") as fh:
            fh.write(f"start {os.getpid()} {time.time()}\\n")
        time.sleep(0.5)
        ids, obs = _obs(n)
        a = ad.AnnData(np.arange(n * 5, dtype=np.float32).reshape(n, 5), obs=pd.DataFrame(index=ids))
        m = md.MuData({"x": a})
        m.obs = obs
        with open(os.environ["ODTEST_MARKER"], "a") as fh:
            fh.write(f"end {os.getpid()} {time.time()}\\n")
        return BuildResult(mdata=m)


    @register("odtest-slow")
    def build_slow(card, workdir, n=2000):
        """A dask-backed matrix of 20 row blocks (256 kB rows, so write_store writes it in
        several pieces); with $ODTEST_DELAY every block after the first two takes that long."""
        delay = float(os.environ.get("ODTEST_DELAY", "0"))
        rows, p = n // 20, 65536

        def block(i):
            if i > 1:
                time.sleep(delay)
            return np.full((rows, p), i, np.float32)

        X = da.concatenate([da.from_delayed(dask.delayed(block)(i), (rows, p), np.float32) for i in range(20)])
        ids, obs = _obs(n)
        a = ad.AnnData(X, obs=pd.DataFrame(index=ids))
        m = md.MuData({"x": a})
        m.obs = obs
        return BuildResult(mdata=m)
''')


def _entry(name: str, builder: str) -> dict:
    return {"name": name, "version": "1", "title": f"test dataset {name}", "description": "test only",
            "citation": "none", "license": "CC0-1.0", "source": {"kind": "synthetic"},
            "modalities": [{"name": "x", "feature_kind": "numbers"}],
            "tasks": [{"name": "label", "kind": "classification", "targets": ["label"]}],
            "splits": {"by": "patient_id", "stratify": "label", "seed": 0,
                       "fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
            "builder": builder, "store_options": {"chunk_rows": 100}}


@pytest.fixture
def test_catalog(tmp_path, monkeypatch):
    """Test catalog entries (OMICSDATA_CATALOG) + builders module on the subprocesses' path."""
    cat = tmp_path / "catalog"
    cat.mkdir()
    for name, builder in (("odtest-count", "odtest-count"), ("odtest-slow", "odtest-slow")):
        (cat / f"{name}.yaml").write_text(yaml.safe_dump(_entry(name, builder)))
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "odtest_builders.py").write_text(BUILDERS)
    monkeypatch.setenv("OMICSDATA_CATALOG", str(cat))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(mods), str(REPO)]))
    monkeypatch.setenv("ODTEST_MARKER", str(tmp_path / "builds.txt"))
    monkeypatch.syspath_prepend(str(mods))
    return tmp_path


def test_home_is_env_var_else_platform_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OMICSDATA_HOME", str(tmp_path / "h"))
    assert paths.home() == tmp_path / "h" and (tmp_path / "h").is_dir()
    assert paths.store_dir("demo-pancancer", "1.0") == tmp_path / "h" / "stores" / "demo-pancancer" / "1.0"
    monkeypatch.delenv("OMICSDATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.home() == Path(platformdirs.user_cache_dir("omicsdata"))
    assert paths.home() == tmp_path / "xdg" / "omicsdata"


def test_atomic_path_replaces_or_leaves_untouched(tmp_path):
    target = tmp_path / "store"
    with paths.atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == tmp_path
        tmp.mkdir()
        (tmp / "a").write_text("one")
        assert not target.exists()  # invisible until complete
    assert (target / "a").read_text() == "one"
    with pytest.raises(RuntimeError):
        with paths.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "a").write_text("two")
            raise RuntimeError("writer failed")
    assert (target / "a").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    with paths.atomic_path(target) as tmp:  # an existing folder is replaced whole
        tmp.mkdir()
        (tmp / "b").write_text("three")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    paths.atomic_write_bytes(tmp_path / "f.bin", b"xyz")
    assert (tmp_path / "f.bin").read_bytes() == b"xyz"


def test_clean_stale_tmp(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a writer that is gone
    (tmp_path / f"{paths.TMP_MARK}x-{dead.pid}-0123abcd").mkdir()
    (tmp_path / f"{paths.TMP_MARK}y-{dead.pid}-4567cdef").write_text("")
    (tmp_path / f"{paths.TMP_MARK}z-{os.getpid()}-89abcdef").mkdir()  # a live writer's: kept
    (tmp_path / f"{paths.TMP_MARK}no-pid").mkdir()  # no writer recorded: kept
    (tmp_path / "1.0").mkdir()
    assert paths.clean_stale_tmp(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["1.0", f"{paths.TMP_MARK}z-{os.getpid()}-89abcdef", f"{paths.TMP_MARK}no-pid"])


CHILD = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    import odtest_builders  # registers the test builders
    import omicsdata as od
    ready = Path(sys.argv[1])
    (ready / str(os.getpid())).touch()
    while len(list(ready.iterdir())) < int(sys.argv[2]):  # start together
        time.sleep(0.01)
    t = time.time()
    m = od.load("odtest-count")
    print(t, m.n_obs, m.uns["omicsdata"]["created"], flush=True)
''')


def test_concurrent_processes_build_once(test_catalog):
    ready = test_catalog / "ready"
    ready.mkdir()
    n = 4
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(ready), str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    marker = (test_catalog / "builds.txt").read_text().split("\n")
    starts = [line for line in marker if line.startswith("start")]
    ends = [float(line.split()[2]) for line in marker if line.startswith("end")]
    assert len(starts) == 1 and len(ends) == 1, marker  # built exactly once
    results = [out.split() for out, _ in outs]
    assert all(r[1] == "40" for r in results)
    assert len({r[2] for r in results}) == 1  # every process opened the same store
    assert all(float(r[0]) < ends[0] for r in results)  # all were asking while the build ran
    target = paths.store_dir("odtest-count", "1")
    assert od.verify(target)["ok"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]  # no temporaries left


def _written_chunks(folder: Path) -> list[Path]:
    return [p for p in folder.glob(f"{paths.TMP_MARK}*/mod/x/X/c/*/*") if p.is_file()]


def test_sigkill_mid_write_leaves_nothing_that_opens(test_catalog, monkeypatch):
    env = dict(os.environ, ODTEST_DELAY="1.0")
    code = "import odtest_builders, omicsdata as od; od.build('odtest-slow')"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    target = paths.store_dir("odtest-slow", "1")
    try:
        deadline = time.time() + 90
        while not _written_chunks(target.parent):  # wait until write_store has chunks on disk
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "the build never started writing"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    leftovers = [p for p in target.parent.iterdir() if p.name.startswith(paths.TMP_MARK)]
    assert len(leftovers) == 1 and (leftovers[0] / "zarr.json").is_file()  # a half store under a temp name
    assert 0 < len(_written_chunks(target.parent)) < 20  # killed mid-way through the chunks
    with pytest.raises(od.StoreError, match="not an omicsdata store"):
        od.open_store(leftovers[0])
    with pytest.raises(od.StoreError):
        od.verify("odtest-slow")

    import odtest_builders  # noqa: F401  (registers the builder in this process)

    monkeypatch.delenv("ODTEST_DELAY", raising=False)
    t0 = time.time()
    m = od.load("odtest-slow")  # the lock died with the process; the next call rebuilds
    assert time.time() - t0 < 60
    assert m.n_obs == 2000 and float(m["x"].X[-1, 0].compute()) == 19.0
    assert [p.name for p in target.parent.iterdir()] == ["1"]  # the stale temporary was cleaned
    assert od.verify("odtest-slow")["ok"]
    assert read_manifest(target)["dataset"] == "odtest-slow"


def test_build_splits_by_patient_with_several_samples(test_catalog):
    import odtest_builders  # noqa: F401

    m = od.load("odtest-count", n=200)
    per_patient = m.obs.groupby("patient_id", observed=True)["split"].nunique()
    assert (per_patient == 1).all() and m.obs["patient_id"].value_counts().max() == 2
    assert read_manifest(od.api.store_path("odtest-count", n=200))["splits"]["by"] == "patient_id"
