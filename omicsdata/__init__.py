"""omicsdata: load multi-omics datasets by name, lazily, as MuData.

>>> import omicsdata as od
>>> od.list_datasets()
>>> mdata = od.load("demo-pancancer")
"""
from __future__ import annotations

from ._version import __version__  # single source: omicsdata/_version.py
from .api import build, cache_info, load, verify  # noqa: E402
from .catalog import DatasetCard, info, list_datasets  # noqa: E402
from .errors import (  # noqa: E402
    BuildError,
    CatalogError,
    ChecksumError,
    CorruptStoreError,
    DownloadError,
    FormatError,
    ManifestError,
    OmicsDataError,
    SchemaMismatchError,
    StoreError,
    UnknownDatasetError,
    UnsafeArchiveError,
)
from .importers import import_anndata, import_mudata  # noqa: E402
from .store import open_store, write_store  # noqa: E402


def __getattr__(name):  # lazy submodules: od.torch, od.synth, ...
    import importlib

    lazy = {"torch", "synth", "sources", "formats", "builders", "transforms", "seq", "biomedsql", "text",
            "graph", "splits"}
    if name in lazy:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'omicsdata' has no attribute '{name}'")
