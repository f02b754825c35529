"""Catalog: YAML entries validated by schemas/dataset.schema.json, extra folders, cards, close matches."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

import omicsdata as od
from omicsdata.catalog import CATALOG_DIR, SCHEMA_DIR, read_entry

ENTRIES = sorted((CATALOG_DIR / "datasets").glob("*.yaml"))


def _demo_entry() -> dict:
    return yaml.safe_load((CATALOG_DIR / "datasets" / "demo-pancancer.yaml").read_text())


def _write_entry(folder: Path, data: dict, stem: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{stem or data['name']}.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("path", ENTRIES, ids=[p.stem for p in ENTRIES])
def test_every_catalog_entry_is_valid(path):
    data = yaml.safe_load(path.read_text())
    schema = json.loads((SCHEMA_DIR / "dataset.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)  # the schema itself, independently of our reader
    assert data["name"] == path.stem
    assert read_entry(path)["name"] == path.stem
    card = od.info(path.stem)
    assert card.name == path.stem and card.version == str(data["version"])


def test_list_datasets_returns_sorted_names():
    names = od.list_datasets()
    assert "demo-pancancer" in names
    assert names == sorted(names) and all(isinstance(n, str) for n in names)
    assert set(names) == {p.stem for p in ENTRIES}


def test_info_card_is_readable():
    card = od.info("demo-pancancer")
    text = repr(card)
    assert text.startswith("demo-pancancer v1.0 - ")
    assert "SIMULATED" in text
    for m in ("rna", "methylation", "mirna", "mutation", "protein"):
        assert f"- {m}" in text
    assert "2,000 features" in text
    assert "licence:    CC0-1.0" in text and "citation:" in text
    assert "by patient_id, stratified by cancer_type, seed 0" in text
    assert "os_time [days]" in text
    assert card.modality_names == ["rna", "methylation", "mirna", "mutation", "protein"]
    assert card["builder"] == "demo-pancancer" and card.get("nope", 3) == 3


def test_unknown_name_lists_close_matches():
    with pytest.raises(od.UnknownDatasetError) as ei:
        od.info("demo-pancanser")
    msg = str(ei.value)
    assert "demo-pancanser" in msg and "Did you mean: demo-pancancer" in msg
    assert isinstance(ei.value, od.OmicsDataError)
    with pytest.raises(od.UnknownDatasetError, match="unknown dataset 'zzzzzz'") as ei:
        od.info("zzzzzz")
    assert "Did you mean" not in str(ei.value)


def test_extra_catalog_folder(tmp_path, monkeypatch):
    entry = _demo_entry()
    entry["name"] = "my-local-set"
    entry["title"] = "A local dataset"
    _write_entry(tmp_path / "plain", entry)
    entry2 = dict(entry, name="other-local-set")
    _write_entry(tmp_path / "nested" / "datasets", entry2)  # a folder with a datasets/ subfolder works too
    monkeypatch.setenv("OMICSDATA_CATALOG", f"{tmp_path / 'plain'}:{tmp_path / 'nested'}")
    names = od.list_datasets()
    assert {"my-local-set", "other-local-set", "demo-pancancer"} <= set(names)
    assert od.info("my-local-set").title == "A local dataset"
    assert od.info("other-local-set").path == tmp_path / "nested" / "datasets" / "other-local-set.yaml"


def test_user_entry_overrides_builtin(tmp_path, monkeypatch):
    entry = _demo_entry()
    entry["title"] = "overridden"
    _write_entry(tmp_path, entry)
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    assert od.info("demo-pancancer").title == "overridden"


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e.pop("license"), "<root>"),
    (lambda e: e["modalities"][0].update(name="Bad Name!"), "modalities.0.name"),
    (lambda e: e["source"].update(kind="ftp"), "source.kind"),
    (lambda e: e.update(unexpected_key=1), "<root>"),
    (lambda e: e["splits"].update(seed="zero"), "splits.seed"),
])
def test_invalid_entry_names_file_and_field(tmp_path, monkeypatch, mutate, field):
    entry = _demo_entry()
    entry["name"] = "broken-set"
    mutate(entry)
    path = _write_entry(tmp_path, entry)
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    with pytest.raises(od.CatalogError) as ei:
        od.list_datasets()
    msg = str(ei.value)
    assert str(path) in msg and f"field '{field}'" in msg
    assert isinstance(ei.value, od.OmicsDataError)


def test_name_must_match_file(tmp_path):
    entry = _demo_entry()
    path = _write_entry(tmp_path, entry, stem="another-name")
    with pytest.raises(od.CatalogError, match="field 'name'.*another-name"):
        read_entry(path)


def test_not_yaml_or_not_mapping(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(od.CatalogError, match="not valid YAML"):
        read_entry(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(od.CatalogError, match="must be a mapping"):
        read_entry(bad)
