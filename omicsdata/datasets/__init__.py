"""The datasets that ship inside the package: one folder per dataset.

Each folder ``omicsdata/datasets/<name_with_underscores>/`` holds

* ``card.yaml``  - the catalog entry (validated by ``omicsdata/schemas/dataset.schema.json``);
* ``builder.py`` - the builder (``@omicsdata.builders.register("<name>")``);
* any reader or helper only that dataset uses.

Adding a dataset is adding one folder. Cards are read with
:mod:`importlib.resources`, so they are found the same way from a source tree,
an editable install or an installed wheel. Datasets from elsewhere come
through ``$OMICSDATA_CATALOG`` folders and the ``omicsdata.datasets`` entry
point group (:mod:`omicsdata.builders.plugins`).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import pkgutil
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BuildError, CatalogError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CARD_FILE = "card.yaml"
BUILDER_MODULE = "builder"
ENTRY_POINT_GROUP = "omicsdata.datasets"


def folder_name(dataset: str) -> str:
    """The package folder of dataset ``dataset``: ``demo-pancancer`` -> ``demo_pancancer``."""
    return dataset.replace("-", "_")


def card_files_in(root: Traversable) -> list[Traversable]:
    """The ``card.yaml`` files of a package folder: its own and those of its direct subfolders, sorted."""
    found = []
    if root.joinpath(CARD_FILE).is_file():
        found.append(root.joinpath(CARD_FILE))
    for child in sorted(root.iterdir(), key=lambda t: t.name):
        if child.is_dir() and not child.name.startswith(("_", ".")) and child.joinpath(CARD_FILE).is_file():
            found.append(child.joinpath(CARD_FILE))
    return found


def builtin_card_files() -> list[Traversable]:
    """The ``card.yaml`` of every dataset shipped in this package, sorted by folder."""
    return card_files_in(files(__name__))


def import_builtin_builders() -> None:
    """Import the ``builder`` module of every dataset folder (importing registers its builders)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.ispkg and not mod.name.startswith("_"):
            name = f"{__name__}.{mod.name}.{BUILDER_MODULE}"
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)


def entry_points() -> list:
    """The installed entry points of group ``omicsdata.datasets``.

    Each names a module or a package (``value`` = ``"pkg.mod"``); importing it
    registers its builders, and a package's folder (and its direct subfolders)
    may hold ``card.yaml`` files that the catalog picks up.
    """
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _entry_point_module(ep) -> str:
    return ep.value.split(":")[0].strip()


def entry_point_card_files() -> list[Traversable]:
    """The ``card.yaml`` files of the entry points' packages, found without importing them."""
    found = []
    for ep in entry_points():
        module = _entry_point_module(ep)
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise CatalogError(f"entry point '{ep.name} = {ep.value}' (group {ENTRY_POINT_GROUP}): "
                               f"no module named '{module}'")
        for location in spec.submodule_search_locations or []:
            found.extend(card_files_in(Path(location)))
    return found


def import_entry_point_builders() -> None:
    """Import every ``omicsdata.datasets`` entry point's module (importing registers its builders)."""
    for ep in entry_points():
        try:
            importlib.import_module(_entry_point_module(ep))
        except Exception as e:  # a broken plug-in names itself
            raise BuildError(f"entry point '{ep.name} = {ep.value}' (group {ENTRY_POINT_GROUP}) "
                             f"failed to import: {type(e).__name__}: {e}") from e
