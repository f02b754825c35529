"""Open the Parquet tables of a store lazily with pyarrow's dataset API.

A store's manifest lists its tables (``manifest["tables"][name]["path"]``,
a folder of ``part-*.parquet`` shards). ``source`` below is a store folder,
a MuData opened from a store (``mdata.uns["omicsdata_path"]``) or a catalog
name (built on first use, like :func:`omicsdata.load`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .. import storage
from ..errors import StoreError


def store_root(source: Any) -> Path:
    """The store folder behind ``source`` (folder, MuData from a store, or catalog name)."""
    return Path(storage.open(source).require_path())


def list_tables(source: Any) -> dict[str, dict]:
    """The manifest entries of every table in the store: ``{name: {"path", "n_rows", "columns", ...}}``."""
    st = storage.open(source)
    return dict((st.manifest or storage.read_manifest(st.require_path())).get("tables", {}))


def table_files(source: Any, name: str) -> list[Path]:
    """The Parquet shards of table ``name``, in order."""
    folder = storage.open(source).table_folder(name)
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise StoreError(f"{folder}: table '{name}' has no Parquet files; run od.verify on the store")
    return files


def table_dataset(source: Any, name: str):
    """A :class:`pyarrow.dataset.Dataset` over table ``name`` (nothing is read yet)."""
    import pyarrow.dataset as ds

    return ds.dataset([str(f) for f in table_files(source, name)], format="parquet")


def read_table(source: Any, name: str, columns: Iterable[str] | None = None, filter=None):
    """Read (the ``columns`` of, the rows matching ``filter`` of) table ``name`` as a pyarrow Table.

    ``filter`` is a pyarrow compute expression, e.g. ``pyarrow.dataset.field("split") == "test"``.
    """
    dset = table_dataset(source, name)
    cols = list(columns) if columns is not None else None
    if cols:
        missing = [c for c in cols if c not in dset.schema.names]
        if missing:
            raise StoreError(f"table '{name}': no column(s) {missing} (columns: {dset.schema.names})")
    return dset.to_table(columns=cols, filter=filter)
