"""Where builders come from: the package's dataset folders, entry points, user folders.

:func:`omicsdata.builders.get_builder` calls :func:`discover` when a name is
not registered yet. Importing a builder module registers it, so discovery is
importing, in this order:

1. ``omicsdata.datasets.<folder>.builder`` for every dataset folder of the package;
2. the module or package of every ``omicsdata.datasets`` entry point;
3. for a card in a ``$OMICSDATA_CATALOG`` folder whose builder is still unknown,
   the module beside it, imported by path: ``<folder>/<name>/builder.py`` next to
   ``<folder>/<name>/card.yaml``, or ``<folder>/<name>.py`` (also
   ``<name_with_underscores>.py``) next to ``<folder>/<name>.yaml``. Such a
   module is imported as a top-level module, so it uses absolute imports.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from ..catalog import read_entry, user_card_files
from ..datasets import BUILDER_MODULE, CARD_FILE, folder_name, import_builtin_builders, import_entry_point_builders
from ..errors import BuildError, CatalogError

USER_MODULE_PREFIX = "omicsdata_user_builder_"


def user_builder_files(builder_name: str) -> list[Path]:
    """Builder modules beside the user cards (``$OMICSDATA_CATALOG``) whose ``builder`` is ``builder_name``."""
    found: list[Path] = []
    for card in user_card_files("datasets"):
        try:
            entry = read_entry(card)
        except CatalogError:  # a malformed user card: dataset_entries() warns about it
            continue
        if entry.get("builder") != builder_name:
            continue
        if card.name == CARD_FILE:
            candidates = [card.parent / f"{BUILDER_MODULE}.py"]
        else:
            candidates = [card.with_suffix(".py"), card.with_name(f"{folder_name(card.stem)}.py")]
        found.extend(c for c in dict.fromkeys(candidates) if c.is_file() and c not in found)
    return found


def import_by_path(path: Path) -> None:
    """Import the module file ``path`` once (a stable module name derived from its absolute path)."""
    path = path.resolve()
    name = USER_MODULE_PREFIX + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot import builder module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise BuildError(f"builder module {path} failed to import: {type(e).__name__}: {e}") from e


def discover(builder_name: str | None = None, registered=lambda: False) -> None:
    """Import builder modules until ``registered()`` is true or every source was tried.

    ``builder_name`` selects the user-folder modules to import (none when None).
    """
    import_builtin_builders()
    if registered():
        return
    import_entry_point_builders()
    if registered() or builder_name is None:
        return
    for path in user_builder_files(builder_name):
        import_by_path(path)
