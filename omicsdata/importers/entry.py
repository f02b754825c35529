"""The local catalog entry of an import, and the ``anndata-import`` builder behind it.

An import writes ``<home>/catalog/datasets/<name_with_underscores>/card.yaml``
(validated against the dataset schema) and a one-line ``builder.py`` that
imports :mod:`omicsdata.importers.entry`, which registers the builder. The
catalog reads that folder, so ``od.list_datasets()`` and ``od.info(name)``
see the entry and ``od.load(name)`` opens the store the import wrote under
``<home>/stores/<name>/<version>/``. The builder runs only when that store is
gone (cache cleared): it re-imports from the recorded source file with the
recorded options, or says why it cannot (in-memory source, file moved).
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from .. import paths
from ..builders import BuildResult, register
from ..catalog import read_entry
from ..datasets import CARD_FILE, folder_name
from ..errors import BuildError

BUILDER_FILE_TEXT = ('"""Builder of an imported AnnData/MuData (written by omicsdata.import_anndata)."""\n'
                     "import omicsdata.importers.entry  # noqa: F401 - registers the 'anndata-import' builder\n")


def entry_dir(name: str) -> Path:
    """The folder of an imported dataset's card."""
    return paths.home() / "catalog" / "datasets" / folder_name(paths.safe_component(name, "dataset name"))


def make_card(name: str, version: str, record: dict, manifest_mods: dict, options: dict, title: str | None) -> dict:
    """The catalog card of an import (dataset schema)."""
    src = record["source"]
    label, split_by = record["label"], record["split_by"]
    mods = [{"name": m, "feature_kind": meta.get("feature_kind", "cell x gene matrix"),
             "n_features": int(meta["shape"][1]), "storage": meta["storage"]} for m, meta in manifest_mods.items()]
    tasks = [{"name": label, "kind": "classification", "targets": [label], "metric": "macro-f1"}] if label else []
    splits = {"seed": int(record["seed"]), "predefined": bool(record["splits"].get("predefined"))}
    if split_by:
        splits["by"] = split_by
    if label:
        splits["stratify"] = label
    if record["splits"].get("fractions"):
        splits["fractions"] = {k: float(v) for k, v in record["splits"]["fractions"].items()}
    pre = record.get("preprocess")
    return {
        "name": name, "version": str(version),
        "title": title or f"Imported {src['kind']}: {Path(str(src['location'])).name}",
        "description": (f"A user's {src['kind']} imported by omicsdata.import_{src['kind']} from {src['location']}; "
                        f"{record['n_obs']} cells; preprocessing: {pre or 'none (values as imported)'}; "
                        "splits: " + ("the file's own 'split' column" if splits["predefined"] else
                                      f"seeded, by {split_by or 'cell'}" + (f", stratified by {label}" if label else ""))
                        + ". Obs columns keep their names."),
        "citation": "Imported by the user; cite the data's own source.",
        "license": "unknown (user data)",
        "source": {"kind": "local", "location": str(src["location"])},
        "modalities": mods,
        "tasks": tasks,
        "splits": splits,
        "builder": "anndata-import",
        "builder_version": "1",
        "builder_options": dict(options),
        "expected_size": {"n_samples": int(record["n_obs"])},
        "tags": ["imported", "single-cell", src["kind"]],
    }


def write_entry(card: dict) -> Path:
    """Write the card and its builder module atomically; returns the card path (validated after writing)."""
    folder = entry_dir(card["name"])
    folder.mkdir(parents=True, exist_ok=True)
    paths.atomic_write_bytes(folder / "builder.py", BUILDER_FILE_TEXT.encode())
    paths.atomic_write_bytes(folder / CARD_FILE, yaml.safe_dump(card, sort_keys=False).encode())
    read_entry(folder / CARD_FILE)  # the catalog's own check
    return folder / CARD_FILE


@register("anndata-import")
def build(card, workdir, **options) -> BuildResult:
    """Re-import a dataset whose store left the cache, from the source file named in its card."""
    from ..storage import open_store
    from .core import write_import

    opts = dict(card.get("builder_options", {}))
    opts.update(options)
    kind = opts.pop("kind", "anndata")
    loc = card["source"].get("location", "")
    if not loc or not os.path.isfile(loc):
        raise BuildError(f"dataset '{card.name}': its store is not in the cache and its source {loc!r} cannot be "
                         "re-read (in-memory object or file moved); import it again with "
                         f"od.import_{kind}(..., name={card.name!r}, overwrite=True)")
    # the framework deletes ``workdir`` before it copies the (lazy) result: re-import beside it instead,
    # removed when this process exits (or by the next re-import, if this process died)
    target = _reimport_dir(card.name)
    record = write_import(kind, loc, target, name=card.name, version=str(card.version), **opts)
    mdata = open_store(target)
    for key in list(mdata.uns):  # the framework writes its own manifest
        del mdata.uns[key]
    return BuildResult(mdata=mdata, report={"reimported_from": loc}, extra={"import": record})


def _reimport_dir(name: str) -> Path:
    import atexit
    import shutil

    base = paths.home() / "work" / "reimport"
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob("*-pid*"):
        pid = old.name.rsplit("-pid", 1)[-1]
        if pid.isdigit() and not paths.pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    target = base / f"{folder_name(name)}-pid{os.getpid()}"
    shutil.rmtree(target, ignore_errors=True)
    atexit.register(shutil.rmtree, target, True)
    return target
