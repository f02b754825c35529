"""Writing a store: matrices (dense row chunks or CSR), the sample table, Parquet tables, the manifest.

Dense matrices are chunked by rows, every chunk holding all features of its
rows; the rows per chunk are chosen so a chunk is about ``chunk_bytes``
uncompressed (codec: :mod:`omicsdata.storage.codecs`). The store is written
under a temporary name and renamed into place when complete.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import paths as _paths
from .._version import __version__
from ..errors import StoreError
from ..paths import atomic_path
from ._quiet import quiet
from .align import expand_modality
from .codecs import DEFAULT_CHUNK_BYTES, DEFAULT_CODEC, checked_compressors, rows_per_chunk
from .layout import FORMAT_VERSION, GRAPH_KEY, MANIFEST, MOD_GROUP, MOD_ORDER_ATTR, presence_column, table_dir
from .manifest import hash_tree, jsonable, write_manifest
from .settings import new_mudata, zarr_v3

#: ``uns`` keys an opened store carries that are bookkeeping, not data (rewritten by every write)
BOOKKEEPING_UNS = ("omicsdata", "omicsdata_path")


def _is_sparse(X) -> bool:
    if sp.issparse(X):
        return True
    meta = getattr(X, "_meta", None)
    return meta is not None and sp.issparse(meta)


def _is_dask_csr(X) -> bool:
    """A dask array of CSR row blocks: anndata writes it block by block (never whole in memory)."""
    meta = getattr(X, "_meta", None)
    return hasattr(X, "dask") and isinstance(meta, sp.csr_matrix | sp.csr_array) and len(X.chunks[1]) == 1


def _write_matrix(group, X, chunk_rows: int | None, chunk_bytes: int, codec: str, shard_chunks: int | None):
    import anndata as ad

    kw: dict[str, Any] = {"compressors": checked_compressors(codec)}
    n, p = X.shape
    if _is_sparse(X):
        if not sp.issparse(X) and not _is_dask_csr(X):
            X = X.compute()
        if sp.issparse(X):
            X = sp.csr_matrix(X)
        elems = max(1, chunk_bytes // 4)
        kw["chunks"] = (int(elems),)
        ad.io.write_elem(group, "X", X, dataset_kwargs=kw)
        return {"storage": "csr", "chunks": [int(elems)], "shards": None}
    rows = chunk_rows or rows_per_chunk(p, np.dtype(X.dtype).itemsize, chunk_bytes)
    rows = min(rows, max(n, 1))
    kw["chunks"] = (rows, max(p, 1))
    shards = None
    if shard_chunks and shard_chunks > 1:
        shards = [rows * shard_chunks, max(p, 1)]
        kw["shards"] = tuple(shards)
    if hasattr(X, "dask") or hasattr(X, "compute"):
        import dask.array as da

        # dask blocks must cover whole zarr chunks (or shards): two blocks
        # writing one chunk would race. ~64 MiB per block bounds memory.
        unit = rows * (shard_chunks or 1)
        k = max(1, (64 << 20) // max(1, unit * p * np.dtype(X.dtype).itemsize))
        X = da.asarray(X).rechunk((unit * k, p))
    else:
        X = np.asarray(X)
    ad.io.write_elem(group, "X", X, dataset_kwargs=kw)
    return {"storage": "dense", "chunks": [rows, p], "shards": shards}


def from_anndata(adata, modality: str = "rna"):
    """A one-modality MuData of ``adata`` named ``modality``; ``adata.obs`` is the global obs as is (unprefixed)."""
    if not isinstance(modality, str) or not modality or "/" in modality:
        raise StoreError(f"modality={modality!r}: give a non-empty name without '/' (e.g. 'rna')")
    return new_mudata({modality: adata}, adata.obs.copy())


def _aligned(mdata) -> tuple[pd.DataFrame, dict]:
    """The global obs (with a ``has_<modality>`` column per modality) and every modality over all its rows."""
    for name, a in mdata.mod.items():
        if not a.obs_names.is_unique:
            dup = a.obs_names[a.obs_names.duplicated()][0]
            raise StoreError(f"modality '{name}': obs_names are not unique ({dup!r} repeats); a store row is one "
                             "sample: make them unique (a.obs_names_make_unique())")
    if not mdata.obs_names.is_unique:
        raise StoreError(f"obs_names are not unique ({mdata.obs_names[mdata.obs_names.duplicated()][0]!r} repeats); "
                         "make them unique (mdata.obs_names_make_unique())")
    obs = mdata.obs.copy()
    mods = {}
    for name, a in mdata.mod.items():
        col = presence_column(name)
        if a.n_obs == len(obs) and a.obs_names.equals(obs.index):
            mods[name] = a
            if col not in obs.columns:
                obs[col] = True
            continue
        mods[name], present = expand_modality(name, a, obs)
        obs[col] = present if col not in obs.columns else (obs[col].to_numpy(dtype=bool) & present)
    return obs, mods


def _write_global(root, mdata, obs: pd.DataFrame) -> None:
    """The MuData-level elements: obs, var, obsm (less mudata's per-modality masks), varm, obsp, varp, uns."""
    import anndata as ad

    ad.io.write_elem(root, "obs", obs)
    ad.io.write_elem(root, "var", mdata.var)
    ad.io.write_elem(root, "obsm", {k: v for k, v in mdata.obsm.items() if k not in mdata.mod})
    for key in ("varm", "obsp", "varp"):
        elems = {k: v for k, v in getattr(mdata, key).items() if k not in mdata.mod}
        if elems:
            ad.io.write_elem(root, key, elems)
    ad.io.write_elem(root, "uns", {k: v for k, v in mdata.uns.items() if k not in BOOKKEEPING_UNS})


def _stored_graph(a, name: str, src) -> dict:
    """``{"graph": topology}`` of modality ``name`` in the store ``src`` a MuData was lazily opened from (a lazy
    open leaves it on disk), when the modality has none in ``uns`` and the same number of nodes; else ``{}``."""
    if not src or GRAPH_KEY in a.uns:
        return {}
    from .readers import read_graph_arrays

    try:
        topo = read_graph_arrays(str(src), name)
    except (StoreError, OSError, KeyError, ValueError):
        return {}
    return {GRAPH_KEY: topo} if int(topo["n_nodes"]) == a.n_vars else {}


def _shell(a, extra_uns: dict | None = None):
    """The AnnData of one modality without X (written next, chunked for the stream): every other element."""
    import anndata as ad

    shell = ad.AnnData(obs=a.obs.copy(), var=a.var.copy(), uns={**a.uns, **(extra_uns or {})}, obsm=dict(a.obsm),
                       varm=dict(a.varm), layers=dict(a.layers), obsp=dict(a.obsp), varp=dict(a.varp))
    if a.raw is not None:
        shell.raw = ad.AnnData(X=a.raw.X, obs=pd.DataFrame(index=a.obs_names), var=a.raw.var.copy(),
                               varm=dict(a.raw.varm))
    return shell


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse to write over anything but an omicsdata store (or an empty folder): nothing of a user's is deleted."""
    from .manifest import is_store_dir

    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise StoreError(f"{path}: exists and is not a folder; write_store writes a store folder there "
                         "(choose another path)")
    if not path.is_dir():
        return
    if is_store_dir(path):
        if not overwrite:
            raise StoreError(f"{path}: store exists (pass overwrite=True to replace it)")
        return
    if any(path.iterdir()):
        raise StoreError(f"{path}: folder holds files and is not an omicsdata store (no {MANIFEST}); "
                         "write_store replaces only an existing store, so nothing was written or deleted; "
                         "choose an empty or new folder")


@contextlib.contextmanager
def _disk_errors(path: Path):
    """A full, read-only or forbidden disk while writing ``path`` becomes a :class:`StoreError`."""
    from ..paths import disk_error, is_disk_error

    try:
        yield
    except OSError as e:
        if is_disk_error(e):
            raise disk_error(e, path, "writing the store") from e
        raise


def _fault_hook() -> None:
    """Test hook: ``$OMICSDATA_TEST_WRITE_FAULT=enospc`` raises ENOSPC at the write layer (fault suite)."""
    if os.environ.get("OMICSDATA_TEST_WRITE_FAULT") == "enospc":
        import errno

        raise OSError(errno.ENOSPC, "No space left on device (injected)")


def write_store(
    mdata,
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    version: str = "0",
    builder: str = "manual",
    builder_version: str = "0",
    builder_options: Mapping | None = None,
    obs_fields: Mapping[str, Mapping] | None = None,
    split_info: Mapping | None = None,
    feature_kinds: Mapping[str, str] | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    chunk_rows: int | None = None,
    codec: str = DEFAULT_CODEC,
    shard_chunks: int | None = None,
    tables: Mapping[str, Any] | None = None,
    extra: Mapping | None = None,
    overwrite: bool = True,
    progress: bool = False,
    modality: str = "rna",
) -> Path:
    """Write a MuData (or an AnnData, as one modality named ``modality``) as an omicsdata store.

    Every element is kept: global ``obs``/``var``/``obsm``/``varm``/``obsp``/``uns`` and, per
    modality, ``X``, ``obs``, ``var``, ``obsm``, ``varm``, ``layers``, ``obsp``, ``varp``, ``uns`` and
    ``raw`` (``uns["omicsdata"]``/``uns["omicsdata_path"]``, the bookkeeping of an opened store, are
    replaced by the new manifest). An AnnData's obs columns stay the global obs, unprefixed (its
    ``split`` column is the store's split). A modality holding only some samples is written over all of
    them (zero rows, ``obs["has_<modality>"]`` False where absent). No anndata/mudata setting is changed.

    The store is written to a temporary folder next to ``path`` and renamed
    into place only when complete (manifest included), so readers never see a
    half store. ``tables`` maps a name to a pyarrow Table or pandas DataFrame
    written as Parquet under ``tables/<name>/``. Returns the store path.
    """
    import anndata as ad
    import zarr

    path = Path(path)
    _check_target(path, overwrite)
    _paths.clean_stale_tmp(path.parent) if path.parent.is_dir() else None  # killed writers' leftovers (issue 15)
    if isinstance(mdata, ad.AnnData):
        mdata = from_anndata(mdata, modality)
    with quiet(), zarr_v3():
        mods_meta: dict[str, dict] = {}
        obs, mods = _aligned(mdata)
        n_obs = len(obs)
        with _disk_errors(path), atomic_path(path) as tmp:
            root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            root.attrs.update({"encoding-type": "MuData", "encoding-version": "0.1.0",
                               "encoder": "omicsdata", "encoder-version": __version__, "axis": 0})
            _write_global(root, mdata, obs)
            modg = root.require_group(MOD_GROUP)
            modg.attrs[MOD_ORDER_ATTR] = list(mods)
            it = mods.items()
            if progress:
                from ..progress import bar as tqdm
                it = tqdm(list(it), desc=f"writing {dataset or path.name}", unit="modality")
            for name, a in it:
                X = a.X
                if X is None:
                    raise StoreError(f"modality '{name}': has no X matrix; a store modality needs one "
                                     "(set a.X, e.g. from a layer)")
                ad.io.write_elem(modg, name, _shell(a, _stored_graph(a, name, mdata.uns.get("omicsdata_path"))))
                info = _write_matrix(modg[name], X, chunk_rows, chunk_bytes, codec, shard_chunks)
                _fault_hook()
                mods_meta[name] = {
                    "shape": [int(a.n_obs), int(a.n_vars)],
                    "dtype": str(np.dtype(X.dtype)),
                    "storage": info["storage"],
                    "chunks": info["chunks"],
                    "shards": info["shards"],
                    "codec": codec,
                    "n_present": int(np.asarray(obs[presence_column(name)]).sum()),
                    "presence_column": presence_column(name),
                }
                if feature_kinds and name in feature_kinds:
                    mods_meta[name]["feature_kind"] = feature_kinds[name]
            tables_meta = _write_tables(tmp, tables or {})
            split_meta = dict(split_info or {})
            split_col = split_meta.get("column", "split")
            split_meta["column"] = split_col
            if split_col in obs.columns:
                split_meta["counts"] = {str(k): int(v) for k, v in obs[split_col].astype(str).value_counts().sort_index().items()}
            else:
                split_meta.setdefault("counts", {})
            manifest = {
                "format": "omicsdata-store",
                "format_version": FORMAT_VERSION,
                "dataset": dataset or path.name,
                "version": str(version),
                "builder": builder,
                "builder_version": str(builder_version),
                "builder_options": jsonable(dict(builder_options or {})),
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "zarr_format": 3,
                "n_obs": int(n_obs),
                "modalities": mods_meta,
                "obs_fields": {k: dict(v) for k, v in (obs_fields or {}).items()},
                "splits": split_meta,
                "tables": tables_meta,
                "extra": jsonable(dict(extra or {})),
                "files": hash_tree(tmp),
            }
            write_manifest(manifest, tmp, f"{path}/{MANIFEST}")
    return path


TABLE_ROW_GROUP_BYTES = 1 << 20   # ~1 MiB of uncompressed rows per Parquet row group (the stream's unit)
TABLE_FILE_BYTES = 256 << 20      # a new Parquet shard every ~256 MiB of uncompressed rows
TABLE_MAX_GROUP_ROWS = 65536


def table_row_group_rows(table, row_group_bytes: int | None = None) -> int:
    """Rows per row group so a group holds about ``row_group_bytes`` (default
    :data:`TABLE_ROW_GROUP_BYTES`) of uncompressed data."""
    row_group_bytes = row_group_bytes or TABLE_ROW_GROUP_BYTES
    per_row = max(1, int(table.nbytes) // max(1, int(table.num_rows)))
    return int(min(TABLE_MAX_GROUP_ROWS, max(16, row_group_bytes // per_row)))


def write_parquet_shards(table, folder: str | os.PathLike, *, row_group_rows: int | None = None,
                         row_group_bytes: int | None = None, file_bytes: int | None = None,
                         compression: str = "zstd") -> dict:
    """Write a pyarrow Table (or DataFrame) as ``part-NNNNN.parquet`` shards sized for streaming.

    Row groups hold ``row_group_rows`` rows (default: about ``row_group_bytes``
    uncompressed, see :func:`table_row_group_rows`); a new file starts every
    ``file_bytes``. Returns ``{"n_rows", "columns", "row_group_rows", "row_groups", "files"}``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rg = int(row_group_rows or table_row_group_rows(table, row_group_bytes))
    per_row = max(1, int(table.nbytes) // max(1, int(table.num_rows)))
    groups_per_file = max(1, int((file_bytes or TABLE_FILE_BYTES) // max(1, rg * per_row)))
    rows_per_file = rg * groups_per_file
    n = int(table.num_rows)
    files, groups = 0, 0
    for k, start in enumerate(range(0, max(n, 1), rows_per_file)):
        part = table.slice(start, rows_per_file)
        pq.write_table(part, folder / f"part-{k:05d}.parquet", row_group_size=rg, compression=compression)
        files += 1
        groups += max(1, -(-int(part.num_rows) // rg))
    return {"n_rows": n, "columns": table.schema.names, "row_group_rows": rg, "row_groups": groups, "files": files}


def _write_tables(root: Path, tables: Mapping[str, Any]) -> dict:
    import pyarrow as pa

    meta = {}
    for name, t in tables.items():
        if isinstance(t, (str, os.PathLike)):  # a folder of parquet files (or one file), copied in
            import shutil
            dst = root / table_dir(name)
            if Path(t).is_file():
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(t, dst / "part-00000.parquet")
            else:
                shutil.copytree(t, dst)
            import pyarrow.dataset as ds
            dset = ds.dataset(str(dst), format="parquet")
            meta[name] = {"path": table_dir(name), "n_rows": int(dset.count_rows()), "columns": dset.schema.names}
            continue
        if isinstance(t, pd.DataFrame):
            t = pa.Table.from_pandas(t, preserve_index=False)
        info = write_parquet_shards(t, root / table_dir(name))
        meta[name] = {"path": table_dir(name), **info}
    return meta
