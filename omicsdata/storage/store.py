"""The :class:`Store` object: one view of a store (or an in-memory MuData/AnnData) for every consumer.

``storage.open(x)`` takes a catalog name, a store path or URL, a MuData
opened from a store (``od.load``/``od.open_store``), an in-memory
MuData/AnnData, or a :class:`Store`. Consumers (the torch stream, the text
tables, the graph datasets, the zoo) ask it for the sample table, split
rows, presence masks and row readers, and never spell a store path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import SchemaMismatchError, StoreError
from .layout import is_remote, presence_column
from .lazy import is_pristine
from .manifest import is_store_dir, read_manifest, read_remote_manifest
from .open import check_store, open_store
from .readers import MemoryReader, read_graph_arrays, read_rows, zarr_reader

#: Turns a catalog name (and builder options) into a built store path; set by :mod:`omicsdata.api`
#: at import (storage sits below the catalog and builders and does not import them).
_name_resolver: Callable[..., Path] | None = None


#: Opens stores other tools wrote (AnnData/MuData Zarr, annbatch collections; refuses .h5ad), or returns
#: None; set by :mod:`omicsdata.storage.foreign` at import.
_foreign_opener: Callable[[object], "Store | None"] | None = None


def set_foreign_opener(fn: Callable[[object], "Store | None"]) -> None:
    """Register the opener of foreign stores (``fn(path) -> Store | None``)."""
    global _foreign_opener
    _foreign_opener = fn


def set_name_resolver(fn: Callable[..., Path]) -> None:
    """Register how catalog names become store paths (``fn(name, version=None, **options) -> Path``)."""
    global _name_resolver
    _name_resolver = fn


class Store:
    """A sample table plus one row-range reader per modality, all in the same row order.

    ``backed`` is True when rows are read straight from the store's Zarr
    arrays (row ``i`` = store row ``i``); otherwise from memory (row ``i`` =
    row ``i`` of the object given). ``path``/``manifest`` name the store the
    data came from, when it came from one (graph topology and tables are
    read there).
    """

    def __init__(self, *, origin: str, path: str | None = None, manifest: dict | None = None,
                 mudata=None, backed: bool = False, anndata=None):
        self.origin, self.path, self.manifest, self.backed = origin, path, manifest, backed
        self._mudata, self._anndata = mudata, anndata
        self._obs: pd.DataFrame | None = None
        self._readers: dict | None = None
        self._presence: dict[str, np.ndarray] = {}
        self._obs_g = None  # the store's Zarr obs group, for single-column reads

    def __getstate__(self):  # DataLoader workers: readers reopen their arrays; no dask graphs travel
        d = dict(self.__dict__)
        if self.backed:  # the sample table travels only if it was read (workers read single columns)
            d["_readers"], d["_mudata"] = self.readers, None
        d["_obs_g"] = None
        return d

    # -- what the data holds --------------------------------------------------
    @property
    def mudata(self):
        """The data as a MuData (lazy when it came from a store; AnnData as one modality ``X``)."""
        if self._mudata is None:
            if self._anndata is not None:
                from .settings import new_mudata

                self._mudata = new_mudata({"X": self._anndata}, self._anndata.obs.copy())
            else:
                self._mudata = open_store(self.path)
        return self._mudata

    @property
    def obs(self) -> pd.DataFrame:
        """The sample table (store row order)."""
        if self._obs is None:
            self._obs = self._anndata.obs if self._anndata is not None else self.mudata.obs
        return self._obs

    @property
    def n_obs(self) -> int:
        if self._obs is None and self.backed and self.manifest and "n_obs" in self.manifest:
            return int(self.manifest["n_obs"])
        return len(self.obs)

    def _obs_group(self):
        """The store's Zarr ``obs`` group when single columns can be read from it (a local store whose
        sample table is not in memory yet), else None."""
        if (self._obs is not None or self._mudata is not None or not self.backed or self.path is None
                or is_remote(self.path)):  # an opened MuData's obs may have been edited: read that one
            return None
        if self._obs_g is None:
            import zarr

            try:
                self._obs_g = zarr.open_group(self.path, mode="r")["obs"]
            except (KeyError, FileNotFoundError, ValueError):
                self._obs_g = False
        return self._obs_g or None

    def obs_column_names(self) -> list[str]:
        """Names of the sample table's columns (for a store: read from its ``obs`` group, not the table)."""
        g = self._obs_group()
        if g is not None:
            return [str(c) for c in g.attrs.get("column-order", [])]
        return [str(c) for c in self.obs.columns]

    def obs_columns(self, names: Sequence[str]) -> pd.DataFrame:
        """Only the columns ``names`` of the sample table, in store row order (index: 0..n-1 for a store).

        A local store's columns are read one by one from its Zarr ``obs`` group, never its index or
        the other columns: the stream of a 1,000,000-cell store needs its ``split`` column, not a
        million Python strings. Raises :class:`SchemaMismatchError` naming a column that is not there."""
        names = list(names)
        have = self.obs_column_names()
        bad = [n for n in names if n not in have]
        if bad:
            raise SchemaMismatchError(f"{self.origin}: {bad} not obs columns (has {have})")
        g = self._obs_group()
        if g is None:
            return self.obs[names]
        import anndata as ad

        return pd.DataFrame({n: ad.io.read_elem(g[n]) for n in names}, index=pd.RangeIndex(self.n_obs))

    @property
    def modalities(self) -> list[str]:
        """Modality names, in store order."""
        if self._anndata is not None:
            return ["X"]
        if self.backed:
            return list(self.manifest["modalities"])
        return list(self.mudata.mod)

    def var_names(self, modality: str) -> list[str]:
        """Feature names of ``modality``, in column order."""
        self._check(modality)
        a = self._anndata if self._anndata is not None else self.mudata.mod[modality]
        return [str(v) for v in a.var_names]

    def _check(self, modality: str) -> None:
        if modality not in self.modalities:
            raise SchemaMismatchError(f"{self.origin}: modality '{modality}' not in the data (has {self.modalities})")

    # -- rows -----------------------------------------------------------------
    def rows(self, split: str | Sequence[str] | None = None) -> np.ndarray:
        """Sorted int64 row positions of ``split`` (``None``/"all": every row; a name or a list of names)."""
        n = self.n_obs
        if split is None or split == "all":
            return np.arange(n, dtype=np.int64)
        if "split" not in self.obs_column_names():
            raise SchemaMismatchError(f"{self.origin}: obs has no 'split' column; pass split=None to use all samples")
        splits = [split] if isinstance(split, str) else list(split)
        # compared as category codes: no string per row (a 1,000,000-cell store has a million of them)
        cat = pd.Categorical(self.obs_columns(["split"])["split"])
        names = np.asarray([str(c) for c in cat.categories], dtype=object)
        codes = np.asarray(cat.codes)
        known = sorted({str(v) for v in names[np.unique(codes[codes >= 0])]} | ({"nan"} if (codes < 0).any() else set()))
        bad = [s for s in splits if s not in known]
        if bad:
            raise SchemaMismatchError(f"{self.origin}: split {bad} not in obs['split'] (has {known})")
        want = np.flatnonzero(np.isin(names, splits))
        hit = np.isin(codes, want) | ((codes < 0) & ("nan" in splits))
        return np.flatnonzero(hit).astype(np.int64)

    def presence(self, modality: str) -> np.ndarray:
        """Bool ``(n_obs,)``: which samples have ``modality`` (``obs["has_<m>"]``; all True when absent)."""
        if modality not in self._presence:
            self._check(modality)
            cols, col = self.obs_column_names(), presence_column(modality)
            if col in cols:
                have = self.obs_columns([col])[col].to_numpy(dtype=bool)
            elif f"{modality}:{col}" in cols:  # mudata's pulled column name
                have = self.obs_columns([f"{modality}:{col}"]).iloc[:, 0].to_numpy(dtype=bool)
            else:
                have = np.ones(self.n_obs, dtype=bool)
            rowmap = getattr(self.readers[modality], "rowmap", None)
            self._presence[modality] = have & (rowmap >= 0) if rowmap is not None else have
        return self._presence[modality]

    # -- reading ----------------------------------------------------------------
    @property
    def readers(self) -> dict:
        """One row-range reader per modality (see :mod:`omicsdata.storage.readers`)."""
        if self._readers is None:
            self._readers = self._make_readers()
        return self._readers

    def _make_readers(self) -> dict:
        if self.backed:
            ds = self.manifest.get("dataset")
            return {m: zarr_reader(self.path, m, meta, ds) for m, meta in self.manifest["modalities"].items()}
        if self._anndata is not None:
            if self._anndata.X is None:
                raise SchemaMismatchError("AnnData has no X matrix to stream")
            return {"X": MemoryReader(self._anndata.X, self._anndata.n_obs)}
        obj, out = self.mudata, {}
        for m, a in obj.mod.items():
            if a.X is None:
                raise SchemaMismatchError(f"modality '{m}' has no X matrix to stream")
            rowmap = None
            if not (a.n_obs == obj.n_obs and a.obs_names.equals(obj.obs_names)):
                # the modality holds a subset of the samples: map through obsmap (1-based, 0 = absent)
                rowmap = np.asarray(obj.obsmap[m], dtype=np.int64) - 1
            out[m] = MemoryReader(a.X, obj.n_obs, rowmap)
        return out

    def reader(self, modality: str):
        """The row-range reader of ``modality``: ``.kind``, ``.shape``, ``.dtype``, ``.chunk_rows``, ``.read``."""
        self._check(modality)
        return self.readers[modality]

    def read_rows(self, modality: str, rows) -> np.ndarray:
        """Rows (any order) of ``modality`` as a dense float32 ``(len(rows), n_features)`` array."""
        return read_rows(self.reader(modality), rows)

    def block_rows(self) -> int:
        """Rows per block: the chunk rows of the modality with the most bytes per row (the dominant reads)."""
        best = max(self.readers.values(), key=lambda r: r.shape[1] * r.dtype.itemsize if r.kind == "dense" else 0)
        return int(best.chunk_rows)

    # -- what lives beside the matrices -------------------------------------------
    def require_path(self) -> str:
        """The store path; raises when the data did not come from a store."""
        if self.path is None:
            raise StoreError(f"{self.origin}: this data was not opened from an omicsdata store "
                             "(no uns['omicsdata_path']); pass the store path instead")
        return self.path

    def graph_arrays(self, modality: str) -> dict[str, np.ndarray]:
        """The topology stored for ``modality``: ``edge_index``, ``edge_type``, ``n_nodes``."""
        return read_graph_arrays(self.require_path(), modality)

    def table_folder(self, name: str) -> Path:
        """The folder of Parquet table ``name`` (from the manifest); raises naming the tables there."""
        root = self.require_path()
        tables = (self.manifest or read_manifest(root)).get("tables", {})
        if name not in tables:
            raise StoreError(f"{root}: no table '{name}' in the store (tables: {', '.join(sorted(tables)) or 'none'})")
        return Path(root) / tables[name]["path"]

    def __repr__(self) -> str:
        return f"Store({self.origin!r}, n_obs={self.n_obs}, modalities={self.modalities}, backed={self.backed})"


def from_path(path, origin: str | None = None) -> Store:
    """A store-backed :class:`Store` for a store folder or URL (only the manifest is read now)."""
    from ..sources.http import mirror_url

    spath = mirror_url(str(path))  # $OMICSDATA_HTTP_MIRROR applies to store URLs too
    if is_remote(spath):
        manifest = read_remote_manifest(spath)
    else:
        manifest = read_manifest(spath)
        check_store(spath, manifest, "fast")  # a deleted chunk would read as zeros: refuse it now
    return Store(origin=origin or spath, path=spath, manifest=manifest, backed=True)


def _from_mudata(obj) -> Store:
    uns = getattr(obj, "uns", {}) or {}
    manifest, url = uns.get("omicsdata"), uns.get("omicsdata_path")
    url = None if url is None else (str(url) if "://" in str(url) else str(Path(url)))
    # read from the store only while every matrix is still the lazy array open_store made: an edited
    # (``X[:] = 0``), replaced or in-memory (lazy=False) matrix is read from the object itself
    backed = bool(manifest and url and obj.n_obs == int(manifest["n_obs"]) and not obj.is_view
                  and set(obj.mod) == set(manifest["modalities"])
                  and all(is_pristine(a.X) for a in obj.mod.values()))
    return Store(origin=url if backed else "MuData (in memory)", path=url, manifest=manifest, mudata=obj,
                 backed=backed)


def open(obj, version: str | None = None, **options) -> Store:  # noqa: A001 - storage.open, like io.open
    """A :class:`Store` for a catalog name, store path or URL, MuData, AnnData (one modality ``X``) or Store.

    An opened store (``od.load``/``od.open_store``) is read straight from its
    Zarr arrays when it still has all the store's samples and modalities; a
    subset or an edited object is read from memory (rows are then the rows of
    that object). A catalog name is built on first use (``version`` and
    builder ``options`` as for :func:`omicsdata.load`).
    """
    import anndata as ad
    import mudata as md

    if isinstance(obj, Store):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        if is_remote(obj) or is_store_dir(obj):
            return from_path(obj)
        if _foreign_opener is not None and (st := _foreign_opener(obj)) is not None:  # AnnData/MuData/annbatch
            return st
        if _name_resolver is None:  # pragma: no cover - omicsdata/__init__ imports api, which sets it
            raise StoreError(f"{obj}: not a store path, and no catalog is loaded to resolve it as a name")
        return from_path(_name_resolver(obj, version=version, **options))
    if isinstance(obj, md.MuData):
        return _from_mudata(obj)
    if isinstance(obj, ad.AnnData):
        if obj.isbacked:
            raise SchemaMismatchError("backed AnnData: write it with od.write_store(...) and pass the store path")
        return Store(origin="AnnData (in memory)", anndata=obj)
    raise StoreError(f"cannot open a {type(obj).__name__}: pass a dataset name, a store path or URL, "
                     "or a MuData/AnnData")
