"""Streaming stores other tools wrote, in place: AnnData and MuData Zarr stores, annbatch collections.

``storage.open(path)`` (so ``od.torch.stream(path)``) comes here for a local
Zarr store without an omicsdata manifest. What is read, and where the layout
was confirmed:

* **AnnData Zarr** (``adata.write_zarr``, Zarr format 2 by default or 3):
  root attrs ``encoding-type: anndata``; ``obs`` a dataframe element;
  ``X``, ``layers/<name>`` and ``obsm/<name>`` either an ``array`` (dense,
  rows on axis 0) or a ``csr_matrix`` group (``data``/``indices``/``indptr``,
  attr ``shape``) -- anndata's IO spec (``anndata/_io/specs/methods.py`` in
  the installed package). Modalities: ``X``, ``layers/<name>``,
  ``obsm/<name>`` (those with one row per sample).
* **MuData Zarr** (``mdata.write_zarr``): root attrs ``encoding-type:
  MuData``; the sample table at ``obs``; one AnnData group per modality
  under ``mod/<name>`` (order in ``mod`` attrs ``mod-order``) -- mudata's
  ``_core/io.py``. Each modality's ``X`` is streamed; a modality holding
  only some of the samples is refused (open it with ``mudata.read_zarr``
  and pass the MuData).
* **annbatch collection** (``DatasetCollection(...).add_adatas(...)``,
  annbatch 0.3.1 ``io.py``): root attrs ``encoding-type:
  annbatch-preshuffled``; AnnData groups ``dataset_0``, ``dataset_1``, ...
  (Zarr 3, sharded, written by ``annbatch.io.write_sharded``), streamed one
  after another as one table. A single ``write_sharded`` store is an AnnData
  Zarr store.

The store's own chunking sets the blocks: whole (inner) chunks, at least
:data:`BLOCK_BYTES` of decoded rows (CSR: at least two ``data`` chunks).
Local chunk files, sharded or not, are read directly
(:mod:`omicsdata.storage.chunks`). Every sample has every modality;
splits come from an ``obs["split"]`` column when there is one. An ``.h5ad``
or ``.h5mu`` file is refused with the one call that converts it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import StoreError
from .readers import CSR_BLOCK_CHUNKS, CSRZarrReader, DenseZarrReader
from .store import Store, set_foreign_opener

ANNBATCH = "annbatch-preshuffled"
BLOCK_BYTES = 1 << 20  # a block is whole chunks of the store, at least this many decoded bytes


class ForeignStoreError(StoreError):
    """A store written by another tool that cannot be streamed as it is (the message says why and what to do)."""


def _attrs(path: Path) -> dict | None:
    import zarr

    try:
        return dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # noqa: BLE001 - not a Zarr group
        return None


def foreign_kind(obj) -> str | None:
    """``"anndata"``, ``"mudata"``, ``"annbatch"``, ``"h5"`` (an HDF5 file) or ``None`` (not a foreign store)."""
    s = str(obj)
    if "://" in s:
        return None
    p = Path(s)
    if p.suffix.lower() in (".h5ad", ".h5mu", ".h5") and (p.is_file() or not p.exists()):
        return "h5" if p.is_file() else None
    if not p.is_dir() or (p / "manifest.json").is_file():
        return None
    if not ((p / "zarr.json").is_file() or (p / ".zgroup").is_file()):
        return None
    enc = (_attrs(p) or {}).get("encoding-type")
    return {"anndata": "anndata", "MuData": "mudata", ANNBATCH: "annbatch"}.get(enc, "zarr")


def open_if_foreign(obj) -> Store | None:
    """:func:`open_foreign` for a foreign store or HDF5 file, ``None`` for anything else."""
    return open_foreign(obj) if foreign_kind(obj) else None


def open_foreign(obj) -> Store:
    """A :class:`~omicsdata.storage.Store` reading a foreign store in place (see the module docstring)."""
    kind, path = foreign_kind(obj), str(obj)
    if kind == "h5":
        q = str(Path(path).with_suffix(".zarr"))
        raise ForeignStoreError(
            f"{path}: an HDF5 file (.h5ad/.h5mu) cannot be streamed chunk by chunk; convert it once to a Zarr store, "
            f"e.g. anndata.read_h5ad('{path}').write_zarr('{q}') (or od.write_store(anndata.read_h5ad('{path}'), "
            f"'{q}')), then stream '{q}'; or import it into the catalog with od.import_anndata('{path}', '<name>')")
    if kind == "zarr":
        raise ForeignStoreError(
            f"{path}: a Zarr group that is not an AnnData, MuData or annbatch store (its root attrs have no "
            "encoding-type 'anndata', 'MuData' or 'annbatch-preshuffled')")
    if kind is None:
        raise ForeignStoreError(f"{path}: not an AnnData/MuData Zarr store or annbatch collection")
    return ForeignStore(path, kind)


def _element_reader(url: str, key: str, name: str, g, n_obs: int):
    """The row reader of one matrix element (dense array or CSR group) at ``key``, or None if not per-sample."""
    import zarr

    node = g[key]
    enc = dict(node.attrs).get("encoding-type")
    if isinstance(node, zarr.Array):
        if node.ndim != 2 or node.shape[0] != n_obs:
            return None
        rows = int(node.chunks[0])  # blocks: whole (inner) chunks, as many as make ~1 MiB
        rows *= max(1, -(-BLOCK_BYTES // max(1, rows * node.shape[1] * node.dtype.itemsize)))
        return DenseZarrReader(url, name, node.shape, node.dtype, min(rows, n_obs), key=key, zarr_format=None)
    if enc == "csr_matrix":
        shape = tuple(int(v) for v in node.attrs["shape"])
        if shape[0] != n_obs:
            return None
        data = node["data"]
        per_row = max(1.0, int(data.shape[0]) / max(1, shape[0]))
        elems = max(CSR_BLOCK_CHUNKS * int(data.chunks[0]), BLOCK_BYTES // data.dtype.itemsize)
        block = max(1, min(shape[0], int(elems / per_row)))
        return CSRZarrReader(url, name, shape, data.dtype, block, key=key, zarr_format=None)
    if enc in ("csc_matrix",):
        raise ForeignStoreError(f"{url}: '{key}' is a CSC matrix (columns compressed): rows cannot be read by "
                                "chunk; write it as CSR (adata.X = adata.X.tocsr()) or dense")
    return None


def _anndata_readers(url: str, g, n_obs: int) -> dict:
    """Readers of a top-level AnnData group: ``X``, ``layers/<name>``, ``obsm/<name>`` (per-sample ones)."""
    keys = (["X"] if "X" in g else []) + [f"{sub}/{k}" for sub in ("layers", "obsm") if sub in g
                                          for k in sorted(g[sub].keys())]
    mods = {}
    for k in keys:
        r = _element_reader(url, k, k, g, n_obs)
        if r is not None:
            mods[k] = r
    return mods


def _root(url: str):
    import zarr

    return zarr.open_group(url, mode="r")


class _ConcatReader:
    """The rows of several readers (one per annbatch dataset) one after another, as one reader."""

    def __init__(self, parts: list, modality: str):
        self.parts, self.modality = parts, modality
        self.kind, self.dtype = parts[0].kind, parts[0].dtype
        self.offsets = np.r_[0, np.cumsum([p.shape[0] for p in parts])].astype(np.int64)
        self.shape = (int(self.offsets[-1]), int(parts[0].shape[1]))
        self.chunk_rows = int(min(p.chunk_rows for p in parts))

    @property
    def decode_threads(self):
        return self.parts[0].decode_threads

    @decode_threads.setter
    def decode_threads(self, n):
        for p in self.parts:
            p.decode_threads = n

    @property
    def g(self):  # for row_bytes(): summed non-zeros, the first part's index dtype
        if self.kind != "csr":
            return None
        gs = [p.g for p in self.parts]
        return (_Sized(sum(int(g[0].shape[0]) for g in gs)), gs[0][1])

    def read(self, starts, stops, reuse=False):
        """Rows ``[starts[i], stops[i])`` concatenated, each range cut at the datasets' borders."""
        from .readers import CSRBlock

        out = []
        for a, b in zip(np.asarray(starts).tolist(), np.asarray(stops).tolist()):
            while a < b:
                i = int(np.searchsorted(self.offsets, a, side="right")) - 1
                e = min(b, int(self.offsets[i + 1]))
                o = int(self.offsets[i])
                out.append(self.parts[i].read(np.array([a - o]), np.array([e - o])))
                a = e
        if self.kind == "dense":
            return np.concatenate(out) if len(out) != 1 else out[0]
        indptr, base = [np.zeros(1, np.int64)], 0
        for blk in out:
            indptr.append(blk.indptr[1:] + base)
            base += int(blk.indptr[-1])
        return CSRBlock(np.concatenate([b.data for b in out]), np.concatenate([b.indices for b in out]),
                        np.concatenate(indptr), self.shape[1])


class _Sized:
    def __init__(self, n):
        self.shape = (n,)


class ForeignStore(Store):
    """A :class:`Store` over an AnnData/MuData Zarr store or an annbatch collection, read in place."""

    def __init__(self, path: str, kind: str):
        self.kind = kind
        url = os.fspath(path)
        readers, obs = self._open(url, kind)
        manifest = {"dataset": None, "foreign": kind, "n_obs": len(obs),
                    "modalities": {m: {"shape": list(r.shape), "dtype": str(r.dtype), "storage": r.kind}
                                   for m, r in readers.items()}}
        super().__init__(origin=url, path=url, manifest=manifest, backed=True)
        self._obs, self._readers = obs, readers

    @staticmethod
    def _open(url: str, kind: str):
        import anndata as ad

        root = _root(url)
        mods: dict = {}
        if kind == "anndata":
            obs = ad.io.read_elem(root["obs"])
            mods = _anndata_readers(url, root, len(obs))
        elif kind == "mudata":
            obs = ad.io.read_elem(root["obs"])
            names = list(root["mod"].attrs.get("mod-order", sorted(root["mod"].keys())))
            for m in names:
                mobs = ad.io.read_elem(root[f"mod/{m}/obs"])
                if len(mobs) != len(obs) or not mobs.index.equals(obs.index):
                    raise ForeignStoreError(
                        f"{url}: modality '{m}' holds {len(mobs)} of the {len(obs)} samples (or another order); "
                        "streaming in place needs every modality on every sample: pass mudata.read_zarr(path) instead")
                r = _element_reader(url, f"mod/{m}/X", m, root, len(obs))
                if r is not None:
                    mods[m] = r
        else:  # annbatch collection: dataset_0, dataset_1, ... one table
            keys = sorted((k for k in root.group_keys() if k.startswith("dataset_") and k[8:].isdigit()),
                          key=lambda k: int(k[8:]))
            if not keys:
                raise ForeignStoreError(f"{url}: an annbatch collection with no dataset_<i> groups")
            parts = []
            for k in keys:
                o = ad.io.read_elem(root[f"{k}/obs"])
                r = _element_reader(url, f"{k}/X", "X", root, len(o))
                if r is None:
                    raise ForeignStoreError(f"{url}: '{k}/X' is missing or not one row per sample")
                parts.append((o, r))
            import pandas as pd

            obs = pd.concat([o for o, _ in parts])
            mods["X"] = _ConcatReader([r for _, r in parts], "X")
        if not mods:
            raise ForeignStoreError(f"{url}: no matrix with one row per sample (X, layers, obsm) to stream")
        return mods, obs

    @property
    def mudata(self):
        """The whole store read into memory with anndata/mudata (not needed for streaming)."""
        if self._mudata is None:
            import anndata as ad
            import mudata as md

            if self.kind == "mudata":
                self._mudata = md.read_zarr(self.path)
            else:
                from .settings import new_mudata

                a = ad.read_zarr(self.path) if self.kind == "anndata" else ad.AnnData(obs=self.obs)
                self._mudata = new_mudata({"X": a}, a.obs.copy())
        return self._mudata

    def var_names(self, modality: str) -> list[str]:
        """Feature names of ``modality`` (column numbers for obsm/layers without their own var)."""
        import anndata as ad

        self._check(modality)
        root = _root(self.path)
        key = {"anndata": "var", "mudata": f"mod/{modality}/var", "annbatch": "dataset_0/var"}[self.kind]
        if modality.startswith("obsm/"):
            return [str(i) for i in range(self.readers[modality].shape[1])]
        return [str(v) for v in ad.io.read_elem(root[key]).index]


set_foreign_opener(open_if_foreign)
