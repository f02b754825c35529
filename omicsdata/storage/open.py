"""Opening a store as a :class:`mudata.MuData` (lazy by default)."""
from __future__ import annotations

import os

import numpy as np

from ..errors import CorruptStoreError, StoreError
from ..sources.http import mirror_url
from ._quiet import quiet
from .layout import MOD_GROUP, MOD_ORDER_ATTR, is_remote
from .lazy import lazy_matrix
from .manifest import check_chunks, check_metadata, read_manifest, read_remote_manifest, verify_store
from .readers import CSRBlock, zarr_reader

VERIFY_MODES = ("fast", "full", "none")


def check_store(path, manifest: dict, verify="fast") -> None:
    """The integrity check of an open: ``"fast"`` (default) re-hashes the small files the open reads
    and checks every chunk file the manifest lists exists (one directory walk); ``"full"`` re-hashes
    every file; ``"none"`` checks nothing. Raises :class:`CorruptStoreError` naming the bad files."""
    if verify is True:
        verify = "full"
    elif verify is False or verify is None:
        verify = "fast"
    if verify not in VERIFY_MODES:
        raise StoreError(f"verify={verify!r}: use one of {', '.join(VERIFY_MODES)}")
    if verify == "none":
        return
    if verify == "full":
        rep = verify_store(path)
        if not rep["ok"]:
            bad = rep["mismatched"] + rep["missing"]
            name = manifest.get("dataset", "<name>")
            raise CorruptStoreError(
                f"dataset '{name}': {path}: {len(bad)} file(s) do not match the manifest: {', '.join(bad[:5])}; "
                f"rebuild with od.build('{name}', force=True)", bad)
        return
    check_metadata(path, manifest)
    check_chunks(path, manifest)


def open_store(path: str | os.PathLike, lazy: bool = True, verify="fast"):
    """Open a store as a :class:`mudata.MuData`.

    ``lazy=True`` (default) reads only metadata, ``obs`` and ``var``; every
    matrix is a dask array over the store's row readers (dense row chunks or
    CSR row blocks), and nothing else is read until asked. ``lazy=False``
    loads everything into memory. ``verify`` (see :func:`check_store`):
    ``"fast"`` (default), ``"full"`` or ``"none"``; a chunk that fails to
    decode later raises :class:`CorruptStoreError` naming its file. Remote
    stores (``https://``, ``s3://``...) open through fsspec. The manifest is
    attached as ``mdata.uns["omicsdata"]``, the path as ``mdata.uns["omicsdata_path"]``.
    """
    import anndata as ad
    import mudata as md
    import zarr

    spath = mirror_url(str(path))  # $OMICSDATA_HTTP_MIRROR applies to store URLs too
    if is_remote(spath):
        manifest = read_remote_manifest(spath)
    else:
        manifest = read_manifest(path)
        check_store(path, manifest, verify)
    dataset = manifest.get("dataset")
    with quiet():
        try:
            root = zarr.open_group(spath, mode="r", zarr_format=3)
            obs = ad.io.read_elem(root["obs"])
            mods = {}
            for name in root[MOD_GROUP].attrs[MOD_ORDER_ATTR]:
                g = root[MOD_GROUP][name]
                meta = manifest["modalities"].get(name)
                if meta is None:
                    raise KeyError(f"modality '{name}' is not in the manifest")
                reader = zarr_reader(spath, name, meta, dataset)
                if lazy:
                    X = lazy_matrix(reader, _lazy_chunks(manifest, name)[0])
                else:
                    block = reader.read(np.array([0]), np.array([reader.shape[0]]))
                    X = block.to_scipy() if isinstance(block, CSRBlock) else block
                var = ad.io.read_elem(g["var"])
                mobs = ad.io.read_elem(g["obs"])
                mods[name] = ad.AnnData(X=X, obs=mobs, var=var)
        except CorruptStoreError:
            raise
        except (KeyError, ValueError, OSError, zarr.errors.BaseZarrError) as e:  # type: ignore[attr-defined]
            raise CorruptStoreError(
                f"{path}: cannot read store ({type(e).__name__}: {e}); run od.verify to find the bad file, "
                "then rebuild with od.build(name, force=True)") from e
        md.set_options(pull_on_update=False)
        mdata = md.MuData(mods)
        mdata.obs = obs.loc[mdata.obs_names] if not obs.index.equals(mdata.obs_names) else obs
        mdata.uns["omicsdata"] = manifest
        mdata.uns["omicsdata_path"] = spath
    return mdata


def _lazy_chunks(manifest: dict, name: str):
    meta = manifest["modalities"].get(name, {})
    if meta.get("storage") == "dense" and meta.get("chunks"):
        return tuple(meta["chunks"])
    n, p = meta["shape"]
    return (max(1, min(n, 4096)), p)
