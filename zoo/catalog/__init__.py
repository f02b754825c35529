"""The model catalog: one YAML entry per pretrained model, shipped inside the package.

Built-in entries are the ``*.yaml`` files beside this module (read with
:mod:`importlib.resources`, so they work from an installed wheel). Users add
entries in ``<dir>/models/*.yaml`` for every ``dir`` in ``$OMICSDATA_CATALOG``
(``os.pathsep``-separated); a user entry with a built-in name replaces it.
Every entry is validated by the ``model`` JSON schema of :mod:`omicsdata.catalog`.

An entry names the ``architecture`` (a registered model), a ``source``
(``kind: hf`` today) and either nothing more (the repo holds a zoo checkpoint)
or ``convert: {name: <registered converter>, ...options}``.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import yaml

from omicsdata.catalog import unknown_message, validate
from omicsdata.errors import CatalogError, UnknownDatasetError

ENV = "OMICSDATA_CATALOG"


def _parse(text: str, where: str, stem: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{where}: a model entry must be a mapping, got {type(data).__name__}")
    validate(data, "model", where)
    if data["name"] != stem:
        raise CatalogError(f"{where}: field 'name': '{data['name']}' must match the file name '{stem}'")
    return data


def _builtin_files():
    for f in sorted(resources.files(__name__).iterdir(), key=lambda f: f.name):
        if f.name.endswith((".yaml", ".yml")):
            yield f.name.rsplit(".", 1)[0], f


def user_dirs() -> list[Path]:
    """The ``<dir>/models`` folders named by ``$OMICSDATA_CATALOG`` that exist."""
    out = []
    for d in (os.environ.get(ENV) or "").split(os.pathsep):
        if d and (Path(d).expanduser() / "models").is_dir():
            out.append(Path(d).expanduser() / "models")
    return out


def model_entries() -> dict[str, tuple[dict, str]]:
    """``{name: (entry, where)}`` for every model catalog entry (validated); ``where`` names its file."""
    found: dict[str, tuple[dict, str]] = {}
    for stem, f in _builtin_files():
        where = f"zoo/catalog/{f.name}"
        found[stem] = (_parse(f.read_text(), where, stem), where)
    for d in user_dirs():
        for f in sorted(d.glob("*.y*ml")):
            found[f.stem] = (_parse(f.read_text(), str(f), f.stem), str(f))
    return found


def entry(name: str) -> dict:
    """The validated catalog entry of model ``name``; unknown names raise with close matches."""
    entries = model_entries()
    if name not in entries:
        raise UnknownDatasetError(unknown_message("model", name, list(entries)))
    return entries[name][0]
