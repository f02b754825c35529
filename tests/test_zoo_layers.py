"""The zoo's persistence layers: model/converter discovery, catalog entries, source kinds, layering."""
from __future__ import annotations

import ast
import importlib.metadata
import shutil
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import small_cohort

import zoo
from omicsdata.errors import CatalogError, OmicsDataError, SchemaMismatchError
from zoo import converters, pretrained, registry

FAST = dict(hidden=(16, 8), max_epochs=2, patience=2, batch_size=32, lr=1e-3, progress=False, random_state=0)
ZOO = Path(zoo.__file__).parent

PLUGIN = '''
import shutil
import zoo
from zoo.models.senmo import SeNMo


@zoo.register_model("toy-senmo")
class ToySeNMo(SeNMo):
    pass


@zoo.register_converter("copy-checkpoint", options_schema={"type": "object", "properties": {"tag": {"type": "string"}},
                                                           "additionalProperties": False},
                        variant=lambda o: "tag-" + o.get("tag", "x"))
def copy_checkpoint(source, out_dir, options, entry):
    out_dir.mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "schema.json", "README.md"):
        shutil.copy(source.fetch(f), out_dir / f)
'''


@pytest.fixture(scope="module")
def fitted():
    mdata = small_cohort(100, 2, seed=3, n_genes=30, n_cpgs=20, n_mirnas=8, n_mutation_genes=8, n_proteins=6)
    return mdata, zoo.SeNMo(**FAST).fit(mdata)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A third-party distribution declaring a model and a converter through the ``zoo.models`` entry points."""
    (tmp_path / "toy_zoo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [importlib.metadata.EntryPoint(name="toy", value="toy_zoo_plugin", group=registry.ENTRY_POINT_GROUP)]
    real = importlib.metadata.entry_points

    def fake(**kw):
        return eps if kw.get("group") == registry.ENTRY_POINT_GROUP else real(**kw)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    registry.discover(force=True)
    yield eps
    registry._MODELS.pop("toy-senmo", None)
    converters._CONVERTERS.pop("copy-checkpoint", None)
    sys.modules.pop("toy_zoo_plugin", None)
    monkeypatch.undo()
    registry.discover(force=True)


def test_models_and_converters_are_discovered_not_listed():
    assert set(registry.builtin_modules()) >= {"zoo.models.senmo", "zoo.models.senmo_upstream"}
    assert not [m for m in registry.builtin_modules() if m.rsplit(".", 1)[1].startswith("_")]
    assert "senmo" in zoo.list_models() and "senmo-upstream" in zoo.list_converters()
    src = (ZOO / "registry.py").read_text()
    assert "zoo.models.senmo" not in src  # no hard-coded module list


def test_entry_point_plugin_adds_model_and_converter(plugin):
    assert "toy-senmo" in zoo.list_models()
    assert zoo.get_model_class("toy-senmo").__name__ == "ToySeNMo"
    assert "copy-checkpoint" in zoo.list_converters()


def test_broken_entry_point_warns_and_the_rest_still_loads(monkeypatch):
    eps = [importlib.metadata.EntryPoint(name="bad", value="no_such_zoo_plugin_xyz", group=registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: eps)
    with pytest.warns(RuntimeWarning, match="no_such_zoo_plugin_xyz"):
        registry.discover(force=True)
    assert "senmo" in zoo.list_models()


def test_unknown_converter_and_bad_options_are_clean_errors():
    with pytest.raises(OmicsDataError, match="senmo-upstream"):
        converters.get_converter("senmo-upstrem")
    with pytest.raises(CatalogError, match="fold"):
        converters.get_converter("senmo-upstream").check_options({"fold": "one"}, "model 'x'")


def _user_entry(root: Path, name: str, source: dict, **extra) -> Path:
    d = root / "models"
    d.mkdir(parents=True, exist_ok=True)
    e = {"name": name, "title": "t", "description": "d", "architecture": "senmo", "source": source,
         "license": "CC0-1.0", "citation": "c", **extra}
    (d / f"{name}.yaml").write_text(yaml.safe_dump(e))
    return root


def test_model_catalog_ships_in_the_package_and_validates(tmp_path, monkeypatch):
    assert (ZOO / "catalog" / "senmo-pancancer.yaml").is_file()
    e = zoo.catalog.entry("senmo-pancancer")
    assert e["convert"]["name"] == "senmo-upstream" and "format" not in e
    # the old 'format' field is refused, with the file named
    _user_entry(tmp_path, "old-style", {"kind": "hf", "repo_id": "a/b", "revision": "main"}, format="zoo")
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    with pytest.raises(CatalogError, match="old-style.yaml"):
        zoo.list_models(pretrained=True)
    (tmp_path / "models" / "old-style.yaml").unlink()
    # hf sources need a repo id; http sources a url
    _user_entry(tmp_path, "no-repo", {"kind": "hf", "revision": "main"})
    with pytest.raises(CatalogError, match="repo_id"):
        zoo.list_models(pretrained=True)


class DirSource(pretrained.Source):
    """A stand-in ``http`` source kind reading from a local folder (what the MOGONET work adds for real)."""

    kind = "http"

    def list_files(self):
        return sorted(p.name for p in Path(self.spec["url"][len("file://"):]).iterdir())

    def _fetch(self, path, sha256):
        return Path(self.spec["url"][len("file://"):]) / path


def test_source_kind_dispatch_and_converter_cache(plugin, fitted, tmp_path, monkeypatch):
    mdata, m = fitted
    upstream = tmp_path / "upstream"
    m.save_pretrained(upstream)
    src = {"kind": "http", "url": f"file://{upstream}"}
    root = _user_entry(tmp_path / "cat", "toy-http", src)
    _user_entry(root, "toy-conv", src, convert={"name": "copy-checkpoint", "tag": "a"})
    monkeypatch.setenv("OMICSDATA_CATALOG", str(root))
    monkeypatch.delitem(pretrained.SOURCE_KINDS, "http")  # a real http kind exists since issue 13
    with pytest.raises(SchemaMismatchError, match="source kind 'http' is not supported"):
        zoo.load("toy-http")
    monkeypatch.setitem(pretrained.SOURCE_KINDS, "http", DirSource)
    with pytest.warns(pretrained.UnpinnedModelWarning, match="no sha256"):
        direct = zoo.load("toy-http")
    np.testing.assert_allclose(direct.predict(mdata, split="test"), m.predict(mdata, split="test"), rtol=1e-5, atol=1e-6)
    with pytest.warns(pretrained.UnpinnedModelWarning):
        conv = zoo.load("toy-conv")
    folder = Path(conv.checkpoint_path_)
    assert folder.name == "tag-a" and folder.parent.parent.name == "toy-conv"
    shutil.rmtree(upstream)  # converted once: the cache answers without the source
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = zoo.load("toy-conv")
    np.testing.assert_allclose(again.predict(mdata, split="test"), m.predict(mdata, split="test"), rtol=1e-5, atol=1e-6)


def test_model_card_says_no_training_labels(fitted, tmp_path):
    mdata, m = fitted
    m.save_pretrained(tmp_path / "ck")
    card = (tmp_path / "ck" / "README.md").read_text()
    assert "holds no training labels" in card and "baseline cumulative hazard" in card
    assert "model-index" not in card


def _imports(path: Path) -> set[str]:
    """Every zoo module a file imports, at top level or inside functions (relative imports resolved)."""
    pkg = "zoo" if path.parent == ZOO else "zoo." + ".".join(path.relative_to(ZOO).parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
            if node.module is None:  # from . import hub
                out.update(f"{base}.{a.name}" for a in node.names)
            else:
                out.add(f"{base}.{node.module}" if node.level else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m == "zoo" or m.startswith("zoo.")}


def test_persistence_layers_only_point_down():
    hub = _imports(ZOO / "hub.py")
    ckpt = _imports(ZOO / "checkpoint.py")
    pre = _imports(ZOO / "pretrained.py")
    assert hub == set()  # transfer: nothing from the zoo
    assert not ckpt & {"zoo", "zoo.hub", "zoo.pretrained", "zoo.converters", "zoo.estimator"}
    assert "zoo.estimator" not in pre and "zoo" not in pre
    for f in ("registry.py", "converters.py", "catalog/__init__.py", "model_card.py"):
        assert not _imports(ZOO / f) & {"zoo", "zoo.hub", "zoo.pretrained", "zoo.checkpoint", "zoo.estimator"}, f


def test_old_converter_path_still_works():
    from zoo.convert_senmo import convert as old
    from zoo.models.senmo_upstream import convert

    assert old is convert
