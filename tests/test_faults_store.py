"""Issue 15, store + cache integrity: nothing read wrong, nothing lost.

Each test breaks a real store, cache or process the way a user's machine
would, and checks for a clean :class:`OmicsDataError` naming the thing and
that nothing was lost. The helpers in ``scripts/faults_store.py`` run the
same faults as rows of ``scripts/fault_suite.py``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import omicsdata as od
from omicsdata import paths, storage
from omicsdata.catalog import DATASETS_DIR
from omicsdata.storage import MANIFEST, verify_store, write_store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(demo_store, tmp_path):
    """A private copy of the session's demo store, free to damage."""
    dst = tmp_path / "demo.zarr"
    shutil.copytree(demo_store, dst)
    return dst


def _chunk(store: Path, modality: str = "rna", i: int = 0) -> Path:
    return store / "mod" / modality / "X" / "c" / str(i) / "0"


def _read_paths(store: Path):
    """Every read path of a store's matrices, as (name, callable reading every row)."""
    def lazy():
        return od.load(store)["rna"].X.compute()

    def eager():
        return od.load(store, lazy=False)

    def stream(workers):
        def run():
            for _ in od.torch.stream(store, split=None, batch_size=64, modalities=["rna"], num_workers=workers,
                                     multiprocessing_context="fork" if workers else None):
                pass
        return run

    def mapped():
        ds = od.torch.MultiOmicsDataset(store, split=None, modalities=["rna"])
        return ds.__getitems__(list(range(len(ds))))

    return [("od.load lazy", lazy), ("od.load eager", eager), ("stream", stream(0)),
            ("stream, DataLoader worker", stream(1)), ("MultiOmicsDataset", mapped)]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_chunk_fails_on_every_read_path_naming_the_file(store, damage):
    chunk = _chunk(store, "rna", 0)
    good = od.load(store)["rna"].X[:5].compute()
    assert np.abs(good).sum() > 0
    data = bytearray(chunk.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01  # one bit
    else:
        data = data[: len(data) // 2]
    chunk.write_bytes(bytes(data))
    for what, call in _read_paths(store):
        with pytest.raises(od.CorruptStoreError) as ei:
            call()
        msg = str(ei.value)
        assert "mod/rna/X/c/0/0" in msg, (what, msg)
        assert "force=True" in msg and "demo-pancancer" in msg, (what, msg)


def test_checksum_is_in_the_codec_chain_of_every_matrix(store):
    import zarr

    for m in od.load(store).mod:
        names = [type(c).__name__ for c in zarr.open_group(str(store), mode="r")[f"mod/{m}/X"].compressors] \
            if od.load(store).uns["omicsdata"]["modalities"][m]["storage"] == "dense" else \
            [type(c).__name__ for c in zarr.open_group(str(store), mode="r")[f"mod/{m}/X/data"].compressors]
        assert names[-1] == "Crc32cCodec", (m, names)


def test_deleted_chunk_refused_at_open_naming_dataset_array_chunk(store):
    victim = _chunk(store, "methylation", 0)
    victim.unlink()
    for what, call in _read_paths(store)[:3] + [("storage.open", lambda: storage.open(store).read_rows("rna", [0]))]:
        with pytest.raises(od.CorruptStoreError) as ei:
            call()
        msg = str(ei.value)
        assert "dataset 'demo-pancancer'" in msg and "mod/methylation/X" in msg and "c/0/0" in msg, (what, msg)
        assert "force=True" in msg
    # verify="none" skips the check (the caller's choice); full re-hashes and names it too
    assert od.load(store, verify="none").n_obs > 0
    with pytest.raises(od.CorruptStoreError, match="mod/methylation/X/c/0/0"):
        od.load(store, verify="full")
    with pytest.raises(od.StoreError, match="verify='quick'"):
        od.load(store, verify="quick")


def test_verify_full_catches_a_flip_at_open_fast_at_read(store):
    data = bytearray(_chunk(store, "rna", 0).read_bytes())
    data[10] ^= 0x40
    _chunk(store, "rna", 0).write_bytes(bytes(data))
    with pytest.raises(od.CorruptStoreError, match="mod/rna/X/c/0/0"):
        od.load(store, verify="full")
    m = od.load(store)  # fast: opens (nothing re-hashed), the read then fails on the checksum
    with pytest.raises(od.CorruptStoreError, match="mod/rna/X/c/0/0"):
        m["rna"].X.compute()


@pytest.mark.parametrize("version", ["/some/dir", "../../x", "..", ".hidden", "a/b"])
def test_version_that_is_a_path_is_refused_and_nothing_touched(tmp_path, version):
    victim = tmp_path / "some" / "dir"
    victim.mkdir(parents=True)
    (victim / "thesis.txt").write_text("precious")
    v = str(victim) if version == "/some/dir" else version
    for call in (lambda: od.load("demo-pancancer", version=v, n_patients=20),
                 lambda: od.build("demo-pancancer", version=v)):
        with pytest.raises(od.StoreError, match="not a plain folder name"):
            call()
    assert (victim / "thesis.txt").read_text() == "precious"
    assert not any((paths.home() / "stores").rglob("*.txt")) if (paths.home() / "stores").exists() else True


@pytest.mark.parametrize("version", ["../../x", "/abs/olute"])
def test_card_whose_version_is_a_path_is_refused(tmp_path, monkeypatch, version):
    entry = yaml.safe_load((DATASETS_DIR / "demo_pancancer" / "card.yaml").read_text())
    entry["name"] = "evil-card"
    entry["version"] = version
    (tmp_path / "evil-card.yaml").write_text(yaml.safe_dump(entry))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    with pytest.warns(UserWarning, match="evil-card.yaml"):
        assert "demo-pancancer" in od.list_datasets()
    with pytest.raises(od.CatalogError, match="evil-card.yaml.*field 'version'"):
        od.load("evil-card")


def test_write_store_onto_a_users_folder_is_refused_nothing_deleted(store, tmp_path):
    m = od.load(store, lazy=False)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(od.StoreError, match="not an omicsdata store.*nothing was written or deleted"):
        write_store(m, folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    afile = tmp_path / "file.bin"
    afile.write_bytes(b"x")
    with pytest.raises(od.StoreError, match="not a folder"):
        write_store(m, afile)
    assert afile.read_bytes() == b"x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert verify_store(write_store(m, empty))["ok"]  # an empty folder is fine
    assert verify_store(write_store(m, empty))["ok"]  # and a store is replaced


@pytest.mark.parametrize("lazy", [True, False])
def test_edited_mudata_is_streamed_as_edited(store, lazy):
    m = od.load(store, lazy=lazy)
    assert np.abs(np.asarray(m["rna"].X[:50])).sum() > 0
    m["rna"].X[:] = 0
    batches = list(od.torch.stream(m, split=None, batch_size=128, modalities=["rna"], shuffle=False))
    assert sum(len(b["index"]) for b in batches) == m.n_obs
    assert all(float(b["rna"].abs().sum()) == 0 for b in batches)
    ds = od.torch.MultiOmicsDataset(m, split=None, modalities=["rna"])
    assert float(ds[3]["rna"].abs().sum()) == 0
    # an unedited lazy open still reads straight from the store
    assert storage.open(od.load(store)).backed


def test_cache_slot_per_builder_options(tmp_path):
    a = od.api.built_store_path("demo-pancancer", n_patients=30, n_cancer_types=2)
    created = od.api.read_manifest(a)["created"]
    b = od.api.built_store_path("demo-pancancer", n_patients=np.int64(30), n_cancer_types=np.int32(2))
    assert a == b and od.api.read_manifest(b)["created"] == created  # numpy ints: same slot, not rebuilt
    reader = od.load("demo-pancancer", n_patients=30, n_cancer_types=2)
    c = od.api.built_store_path("demo-pancancer", n_patients=36, n_cancer_types=2)
    assert c != a and c.parent == a.parent
    assert od.api.read_manifest(a)["created"] == created and reader["rna"].X.compute().shape[0] == 30
    assert paths.store_dir("demo-pancancer", "1.0") .name == "1.0"  # default options: the plain folder
    assert a.name.startswith("1.0-") and len(a.name) == len("1.0-") + 8


LIVE_WRITER = "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(60)"


def test_stale_tmp_removed_only_when_its_writer_is_gone(tmp_path):
    folder = tmp_path / "stores"
    folder.mkdir()
    flag = tmp_path / "started"
    live = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(flag)])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        while not flag.exists():
            time.sleep(0.02)
        mine = folder / f"{paths.TMP_MARK}1.0-{live.pid}-0123abcd"
        gone = folder / f"{paths.TMP_MARK}1.0-{dead.pid}-4567cdef"
        for p in (mine, gone):
            p.mkdir()
            (p / "zarr.json").write_text("{}")
        (folder / "1.0").mkdir()
        assert paths.clean_stale_tmp(folder) == 1
        assert sorted(p.name for p in folder.iterdir()) == sorted(["1.0", mine.name])
    finally:
        live.kill()
        live.wait()
    assert paths.clean_stale_tmp(folder) == 1 and [p.name for p in folder.iterdir()] == ["1.0"]


def test_full_disk_during_write_leaves_previous_store_intact(store, tmp_path, monkeypatch):
    m = od.load(store, lazy=False)
    target = write_store(m, tmp_path / "s.zarr", dataset="demo-pancancer")
    before = verify_store(target)
    monkeypatch.setenv("OMICSDATA_TEST_WRITE_FAULT", "enospc")
    with pytest.raises(od.StoreError, match="disk is full.*previous store is intact"):
        write_store(m, target, dataset="demo-pancancer")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing half-published
    after = verify_store(target)
    assert after["ok"] and after["checked"] == before["checked"]


KILL_BETWEEN_RENAMES = textwrap.dedent('''
    import sys
    import omicsdata as od
    m = od.load(sys.argv[1], lazy=False)
    od.write_store(m, sys.argv[2], dataset="demo-pancancer")  # replaces the store there
''')


def test_kill_between_the_two_renames_leaves_old_store_restorable(store, tmp_path):
    target = write_store(od.load(store, lazy=False), tmp_path / "s.zarr", dataset="demo-pancancer")
    created = od.api.read_manifest(target)["created"]
    env = dict(os.environ, OMICSDATA_TEST_PUBLISH_PAUSE="60")
    proc = subprocess.Popen([sys.executable, "-c", KILL_BETWEEN_RENAMES, str(store), str(target)], env=env,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while target.exists():  # parked under .tmp-old-..., the new store not yet renamed in
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not target.exists()
    assert any(p.name.startswith(paths.OLD_MARK) for p in tmp_path.iterdir())
    m = od.load(target)  # the next open recovers the old store
    assert m.n_obs > 0 and od.api.read_manifest(target)["created"] == created
    assert verify_store(target)["ok"]


HOLD_LOCK = textwrap.dedent('''
    import sys, time
    from omicsdata import paths
    with paths.locked(sys.argv[1]):
        open(sys.argv[2], "w").close()
        time.sleep(120)  # hangs while holding the build lock
''')


def test_hung_lock_holder_gives_message_and_timeout(tmp_path, monkeypatch, caplog):
    card = od.info("demo-pancancer")
    key = f"build-{card.name}-{paths.store_dir(card.name, card.version).name}"
    flag = tmp_path / "holding"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, key, str(flag)])
    try:
        while not flag.exists():
            assert proc.poll() is None
            time.sleep(0.02)
        monkeypatch.setenv("OMICSDATA_LOCK_TIMEOUT", "1.5")
        with caplog.at_level(logging.WARNING, logger="omicsdata.paths"):
            with pytest.raises(od.StoreError) as ei:
                od.load("demo-pancancer")
        msg = str(ei.value)
        assert str(paths.lock_path(key)) in msg and f"pid {proc.pid}" in msg and "OMICSDATA_LOCK_TIMEOUT" in msg
        assert any("waiting for" in r.getMessage() and str(proc.pid) in r.getMessage() for r in caplog.records)
    finally:
        proc.kill()
        proc.wait()
    with paths.locked(key, timeout=5):  # released with its holder
        pass


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` read-only for this process: a read-only bind mount as root, else mode 0555."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    try:
        if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_read_only_cache_loads_built_store_and_refuses_builds_clearly(omicsdata_home):
    built = od.build("demo-pancancer", n_patients=24, n_cancer_types=2)
    with read_only(omicsdata_home):
        with pytest.raises(OSError):
            (omicsdata_home / "probe").write_text("x")
        m = od.load("demo-pancancer", n_patients=24, n_cancer_types=2)  # nothing to build: no writes
        assert m["rna"].X.compute().shape[0] == 24
        with pytest.raises(od.StoreError, match="read-only|permission denied"):
            od.load("demo-pancancer", n_patients=26, n_cancer_types=2)
    assert verify_store(built)["ok"]


def test_catalog_folder_named_yaml_and_bad_user_file_hide_nothing(tmp_path, monkeypatch):
    (tmp_path / "x.yaml").mkdir()
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    with pytest.warns(UserWarning, match="broken.yaml"):
        names = od.list_datasets()
    assert "demo-pancancer" in names and "x" not in names
    with pytest.raises(od.CatalogError, match="broken.yaml.*not valid YAML"):
        od.info("broken")


@pytest.mark.parametrize("opts,field", [({"n_patients": -5}, "n_patients"), ({"n_genes": 0}, "n_genes"),
                                        ({"n_cancer_types": 99}, "n_cancer_types"), ({"seed": -1}, "seed"),
                                        ({"n_patients": 2.5}, "n_patients"), ({"n_patiens": 10}, "n_patiens")])
def test_bad_builder_sizes_are_build_errors(opts, field):
    with pytest.raises(od.BuildError, match=field):
        od.build("demo-pancancer", **opts)
    assert not any(p.is_dir() for p in (paths.home() / "stores" / "demo-pancancer").glob("*")) \
        if (paths.home() / "stores" / "demo-pancancer").exists() else True


def test_corrupt_graph_is_refused_naming_the_file(tmp_path):
    import anndata as ad
    import mudata as md
    import pandas as pd

    a = ad.AnnData(X=np.ones((6, 4), np.float32), obs=pd.DataFrame(index=[f"s{i}" for i in range(6)]))
    a.uns["graph"] = {"edge_index": np.array([[0, 1, 2], [1, 2, 3]], np.int64),
                      "edge_type": np.zeros(3, np.uint8), "n_nodes": np.int64(4)}
    path = write_store(md.MuData({"x": a}), tmp_path / "g.zarr")
    assert storage.open(path).graph_arrays("x")["n_nodes"] == 4
    chunk = next(p for p in (path / "mod" / "x" / "uns" / "graph" / "edge_index").rglob("*") if p.name != "zarr.json"
                 and p.is_file())
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(od.CorruptStoreError, match="graph/edge_index"):
        storage.open(path).graph_arrays("x")
    assert (path / MANIFEST).is_file()


def test_fault_rows_for_the_suite_are_clean():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import faults_store
    finally:
        sys.path.remove(str(REPO / "scripts"))
    names = [n for n, _ in faults_store.ROWS]
    assert len(names) == len(set(names)) >= 8
