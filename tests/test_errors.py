"""Every failure is an OmicsDataError whose message names the dataset, file or field."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

import omicsdata as od
from omicsdata import errors, paths
from omicsdata.catalog import DATASETS_DIR
from omicsdata.store import MANIFEST, open_store


@pytest.fixture
def store(demo_store, tmp_path):
    """A private copy of the session's demo store, free to corrupt."""
    dst = tmp_path / "demo.zarr"
    shutil.copytree(demo_store, dst)
    return dst


def flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_every_error_class_is_an_omicsdata_error():
    classes = [getattr(errors, n) for n in dir(errors) if isinstance(getattr(errors, n), type)
               and issubclass(getattr(errors, n), Exception)]
    assert len(classes) >= 10
    assert all(issubclass(c, od.OmicsDataError) for c in classes)


def test_unknown_dataset_everywhere():
    for call in (lambda: od.info("demo-pancanser"), lambda: od.load("demo-pancanser"),
                 lambda: od.build("demo-pancanser"), lambda: od.verify("demo-pancanser")):
        with pytest.raises(od.UnknownDatasetError, match="unknown dataset 'demo-pancanser'.*demo-pancancer"):
            call()


def test_invalid_catalog_entry_names_field(tmp_path, monkeypatch):
    entry = yaml.safe_load((DATASETS_DIR / "demo_pancancer" / "card.yaml").read_text())
    entry["name"] = "bad-entry"
    entry["tasks"][0]["kind"] = "astrology"
    (tmp_path / "bad-entry.yaml").write_text(yaml.safe_dump(entry))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    with pytest.warns(UserWarning, match="bad-entry.yaml"):  # one bad user file hides nothing else
        assert "demo-pancancer" in od.list_datasets() and od.info("demo-pancancer").name == "demo-pancancer"
    with pytest.raises(od.CatalogError) as ei:
        od.info("bad-entry")  # ...and is reported when it is the entry asked for
    assert "bad-entry.yaml" in str(ei.value) and "field 'tasks.0.kind'" in str(ei.value)
    assert "astrology" in str(ei.value)


def test_flipped_chunk_byte_named_by_verify(store):
    chunk = store / "mod" / "rna" / "X" / "c" / "0" / "0"
    flip_byte(chunk)
    with pytest.raises(od.CorruptStoreError) as ei:
        od.verify(store)
    assert "mod/rna/X/c/0/0" in str(ei.value) and "rebuild" in str(ei.value)
    assert ei.value.bad_files == ["mod/rna/X/c/0/0"]
    assert ei.value.report["mismatched"] == ["mod/rna/X/c/0/0"]
    with pytest.raises(od.CorruptStoreError, match="mod/rna/X/c/0/0"):
        open_store(store, verify=True)
    # a lazy open reads no chunk, so it cannot see this; it opens (verify is the check for chunks)
    assert open_store(store).n_obs == 300


def test_flipped_metadata_byte_refused_by_open(store):
    target = store / "obs" / "age" / "c" / "0"
    flip_byte(target)
    with pytest.raises(od.CorruptStoreError) as ei:
        open_store(store)
    msg = str(ei.value)
    assert "obs/age/c/0" in msg and "rebuild" in msg and "force=True" in msg
    assert ei.value.bad_files == ["obs/age/c/0"]


def test_corrupt_cached_dataset_named_by_load(monkeypatch):
    path = od.build("demo-pancancer", n_patients=40, n_cancer_types=2)
    flip_byte(path / "mod" / "protein" / "zarr.json", offset=5)
    with pytest.raises(od.CorruptStoreError) as ei:
        od.load("demo-pancancer", n_patients=40, n_cancer_types=2)
    assert "dataset 'demo-pancancer'" in str(ei.value) and "mod/protein/zarr.json" in str(ei.value)
    with pytest.raises(od.CorruptStoreError, match="mod/protein/zarr.json"):
        od.verify("demo-pancancer", n_patients=40, n_cancer_types=2)  # the store of those options
    od.build("demo-pancancer", n_patients=40, n_cancer_types=2, force=True)  # the hinted fix works
    assert od.verify("demo-pancancer", n_patients=40, n_cancer_types=2)["ok"]


def test_missing_and_unexpected_files_named(store):
    (store / "obs" / "stage" / "c" / "0").unlink()
    (store / "stray.bin").write_bytes(b"x")
    with pytest.raises(od.CorruptStoreError) as ei:
        od.verify(store)
    assert "missing: obs/stage/c/0" in str(ei.value) and "unexpected: stray.bin" in str(ei.value)
    with pytest.raises(od.CorruptStoreError, match="obs/stage/c/0"):
        open_store(store)


@pytest.mark.parametrize("edit, field", [
    (lambda m: m.pop("files"), "<root>"),
    (lambda m: m.update(n_obs=-3), "n_obs"),
    (lambda m: m["modalities"]["rna"].update(storage="coo"), "modalities.rna.storage"),
    (lambda m: m["files"].update({"obs/zarr.json": "not-a-digest"}), "files.obs/zarr.json"),
    (lambda m: m.update(format="something-else"), "format"),
])
def test_manifest_violation_names_field(store, edit, field):
    man = json.loads((store / MANIFEST).read_text())
    edit(man)
    (store / MANIFEST).write_text(json.dumps(man))
    for call in (lambda: open_store(store), lambda: od.verify(store), lambda: od.load(store)):
        with pytest.raises(od.ManifestError) as ei:
            call()
        assert str(store / MANIFEST) in str(ei.value) and f"field '{field}'" in str(ei.value)


def test_manifest_not_json_or_absent(store, tmp_path):
    (store / MANIFEST).write_text("{not json")
    with pytest.raises(od.ManifestError, match="manifest.json: not valid JSON"):
        open_store(store)
    (store / MANIFEST).unlink()
    with pytest.raises(od.StoreError, match="not an omicsdata store"):
        open_store(store)
    with pytest.raises(od.StoreError, match="no omicsdata store"):
        od.load(store)


def test_verify_of_unbuilt_dataset():
    with pytest.raises(od.StoreError, match="no store there; build it with od.build\\('demo-pancancer'\\)"):
        od.verify("demo-pancancer")


def test_bad_builder_option_names_dataset():
    with pytest.raises(od.BuildError, match="dataset 'demo-pancancer': bad builder option.*n_patiens"):
        od.build("demo-pancancer", n_patiens=10)
    assert not paths.store_dir("demo-pancancer", "1.0").exists()


def test_unknown_builder(tmp_path, monkeypatch):
    entry = yaml.safe_load((DATASETS_DIR / "demo_pancancer" / "card.yaml").read_text())
    entry.update(name="no-builder", builder="does-not-exist")
    (tmp_path / "no-builder.yaml").write_text(yaml.safe_dump(entry))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    with pytest.raises(od.BuildError, match="no builder named 'does-not-exist'"):
        od.load("no-builder")
