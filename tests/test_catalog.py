"""Catalog: cards shipped in omicsdata/datasets/<name>/card.yaml, validated by omicsdata/schemas/dataset.schema.json;
extra folders, entry points, user builders, cards, close matches."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

import omicsdata as od
from omicsdata import builders
from omicsdata.catalog import DATASETS_DIR, SCHEMA_DIR, load_schema, read_entry, schema_names

ENTRIES = sorted(DATASETS_DIR.glob("*/card.yaml"))
NAMES = [p.parent.name.replace("_", "-") for p in ENTRIES]


def _demo_entry() -> dict:
    return yaml.safe_load((DATASETS_DIR / "demo_pancancer" / "card.yaml").read_text())


def _write_entry(folder: Path, data: dict, stem: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{stem or data['name']}.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("path", ENTRIES, ids=NAMES)
def test_every_catalog_entry_is_valid(path):
    data = yaml.safe_load(path.read_text())
    schema = json.loads((SCHEMA_DIR / "dataset.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)  # the schema itself, independently of our reader
    name = path.parent.name.replace("_", "-")
    assert data["name"] == name
    assert read_entry(path)["name"] == name
    card = od.info(name)
    assert card.name == name and card.version == str(data["version"])
    assert (path.parent / "builder.py").is_file() and (path.parent / "__init__.py").is_file()


def test_every_dataset_folder_registers_its_builder():
    for name in NAMES:
        assert callable(builders.get_builder(od.info(name)["builder"]))


def test_list_datasets_returns_sorted_names():
    names = od.list_datasets()
    assert "demo-pancancer" in names
    assert names == sorted(names) and all(isinstance(n, str) for n in names)
    assert set(names) == set(NAMES)


def test_schemas_ship_in_the_package():
    assert {"dataset", "model", "store"} <= set(schema_names())
    assert load_schema("dataset")["type"] == "object"
    with pytest.raises(od.CatalogError, match="no JSON schema named 'nope'"):
        load_schema("nope")


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
    # one bad user card hides nothing: the rest still lists, with a warning naming the file and field
    with pytest.warns(UserWarning, match=f"field '{field}'") as rec:
        names = od.list_datasets()
    assert "demo-pancancer" in names and "broken-set" not in names
    assert any(str(path) in str(w.message) for w in rec)
    # asking for the broken entry itself raises the error, naming the file and field
    with pytest.raises(od.CatalogError) as ei:
        od.info("broken-set")
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


def test_card_yaml_name_must_match_folder(tmp_path):
    entry = _demo_entry()
    path = _write_entry(tmp_path / "other_name", entry, stem="card")
    with pytest.raises(od.CatalogError, match="field 'name'.*folder name 'other_name'"):
        read_entry(path)
    good = _write_entry(tmp_path / "demo_pancancer", entry, stem="card")
    assert read_entry(good)["name"] == "demo-pancancer"


USER_BUILDER = textwrap.dedent('''
    import anndata as ad
    import mudata as md
    import numpy as np
    import pandas as pd

    from omicsdata.builders import BuildResult, register


    @register("{builder}")
    def build(card, workdir, n=12):
        ids = [f"S{{i}}" for i in range(n)]
        obs = pd.DataFrame({{"patient_id": ids, "label": np.array(["a", "b"])[np.arange(n) % 2]}}, index=ids)
        m = md.MuData({{"x": ad.AnnData(np.ones((n, 3), np.float32), obs=pd.DataFrame(index=ids))}})
        m.obs = obs
        return BuildResult(mdata=m)
''')


def _user_entry(name: str, builder: str) -> dict:
    return {"name": name, "version": "1", "title": f"user dataset {name}", "description": "test only",
            "citation": "none", "license": "CC0-1.0", "source": {"kind": "synthetic"},
            "modalities": [{"name": "x", "feature_kind": "numbers"}],
            "tasks": [{"name": "label", "kind": "classification", "targets": ["label"]}],
            "splits": {"by": "patient_id", "stratify": "label", "seed": 0,
                       "fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
            "builder": builder}


def test_user_folder_builders_are_imported_by_path(tmp_path, monkeypatch):
    """A user folder holds cards plus builders: <name>/card.yaml + builder.py, or <name>.yaml + <name>.py."""
    cat = tmp_path / "cat"
    _write_entry(cat / "user_folder_set", _user_entry("user-folder-set", "user-folder-builder"), stem="card")
    (cat / "user_folder_set" / "builder.py").write_text(USER_BUILDER.format(builder="user-folder-builder"))
    _write_entry(cat, _user_entry("user-flat-set", "user-flat-builder"))
    (cat / "user_flat_set.py").write_text(USER_BUILDER.format(builder="user-flat-builder"))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(cat))
    monkeypatch.setenv("OMICSDATA_HOME", str(tmp_path / "home"))
    assert {"user-folder-set", "user-flat-set"} <= set(od.list_datasets())
    monkeypatch.setattr(builders, "_REGISTRY", dict(builders._REGISTRY))  # registrations end with the test
    for name, builder in (("user-folder-set", "user-folder-builder"), ("user-flat-set", "user-flat-builder")):
        assert builder not in builders._REGISTRY
        assert callable(builders.get_builder(builder))
        mdata = od.load(name)
        assert mdata.n_obs == 12 and set(mdata.obs["split"]) <= {"train", "val", "test"}
    with pytest.raises(od.BuildError, match="no builder named 'nowhere'"):
        builders.get_builder("nowhere")


class _FakeEntryPoint:
    def __init__(self, name: str, value: str):
        self.name, self.value, self.group = name, value, "omicsdata.datasets"


def test_entry_point_group_adds_cards_and_builders(tmp_path, monkeypatch):
    """A plug-in distribution names its package in the ``omicsdata.datasets`` entry-point group."""
    pkg = tmp_path / "site" / "odplugin_pkg"
    (pkg / "plugin_set").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import builders  # noqa: F401\n")
    (pkg / "builders.py").write_text(USER_BUILDER.format(builder="plugin-builder"))
    _write_entry(pkg / "plugin_set", _user_entry("plugin-set", "plugin-builder"), stem="card")
    mod = tmp_path / "site" / "odplugin_mod.py"  # a plain module: builders only, no cards
    mod.write_text(USER_BUILDER.format(builder="plugin-module-builder"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    eps = [_FakeEntryPoint("pkg", "odplugin_pkg"), _FakeEntryPoint("mod", "odplugin_mod")]

    def fake_entry_points(**kw):
        assert kw == {"group": "omicsdata.datasets"}
        return eps

    monkeypatch.setattr("importlib.metadata.entry_points", fake_entry_points)
    monkeypatch.setenv("OMICSDATA_HOME", str(tmp_path / "home"))
    assert "plugin-set" in od.list_datasets() and "demo-pancancer" in od.list_datasets()
    assert "odplugin_pkg" not in sys.modules  # cards are found without importing the plug-in
    assert od.info("plugin-set").path == pkg / "plugin_set" / "card.yaml"
    monkeypatch.setattr(builders, "_REGISTRY", dict(builders._REGISTRY))  # registrations end with the test
    for builder in ("plugin-builder", "plugin-module-builder"):
        assert callable(builders.get_builder(builder))
    assert od.load("plugin-set").n_obs == 12
    for m in ("odplugin_pkg", "odplugin_pkg.builders", "odplugin_mod"):
        monkeypatch.delitem(sys.modules, m, raising=False)


def test_broken_entry_point_names_itself(monkeypatch):
    monkeypatch.setattr("importlib.metadata.entry_points", lambda **kw: [_FakeEntryPoint("bad", "no_such_module_x")])
    with pytest.raises(od.CatalogError, match="entry point 'bad = no_such_module_x'"):
        od.list_datasets()


def test_card_evidence_separates_confirmed_from_assumed():
    card = od.catalog.DatasetCard({"assumptions": [
        "CONFIRMED (repo/file.py): columns a, b", "ASSUMED: the licence", "NOT VERIFIABLE: shard hashes",
        "an untagged note"]}, path=None)
    assert card.evidence() == [("confirmed", "columns a, b (repo/file.py)"), ("assumed", "the licence"),
                               ("unverifiable", "shard hashes"), ("assumed", "an untagged note")]
    # every shipped card that was checked against its publisher says so
    for name in ("biomedsql", "target-qa", "omnicell-tosg", "mogonet-rosmap"):
        kinds = {k for k, _ in od.info(name).evidence()}
        assert "confirmed" in kinds, name
