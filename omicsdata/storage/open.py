"""Opening a store as a :class:`mudata.MuData` (lazy by default)."""
from __future__ import annotations

import os

from ..errors import CorruptStoreError
from ..sources.http import mirror_url
from ._quiet import quiet
from .layout import MOD_GROUP, MOD_ORDER_ATTR, is_remote
from .manifest import check_metadata, read_manifest, read_remote_manifest, verify_store


def open_store(path: str | os.PathLike, lazy: bool = True, verify: bool = False):
    """Open a store as a :class:`mudata.MuData`.

    ``lazy=True`` (default) reads only metadata, ``obs`` and ``var``; every
    matrix is a dask array over the Zarr chunks (dense) or over CSR row
    blocks (sparse), and nothing else is read until asked. ``lazy=False``
    loads everything into memory. ``verify=True`` re-hashes every file first;
    otherwise only the small files the open itself reads are re-hashed
    (:func:`~omicsdata.storage.manifest.check_metadata`), so a corrupt
    metadata file is refused cheaply. Remote stores (``https://``,
    ``s3://``...) open through fsspec. The manifest is attached as
    ``mdata.uns["omicsdata"]``, the path as ``mdata.uns["omicsdata_path"]``.
    """
    import anndata as ad
    import mudata as md
    import zarr

    spath = mirror_url(str(path))  # $OMICSDATA_HTTP_MIRROR applies to store URLs too
    if is_remote(spath):
        manifest = read_remote_manifest(spath)
    else:
        manifest = read_manifest(path)
        if verify:
            rep = verify_store(path)
            if not rep["ok"]:
                bad = rep["mismatched"] + rep["missing"]
                raise CorruptStoreError(
                    f"{path}: {len(bad)} file(s) do not match the manifest: {', '.join(bad[:5])}; "
                    "rebuild with od.build(name, force=True)", bad)
        else:
            check_metadata(path, manifest)
    with quiet():
        try:
            root = zarr.open_group(spath, mode="r", zarr_format=3)
            obs = ad.io.read_elem(root["obs"])
            mods = {}
            for name in root[MOD_GROUP].attrs[MOD_ORDER_ATTR]:
                g = root[MOD_GROUP][name]
                Xg = g["X"]
                X = ad.experimental.read_elem_lazy(Xg, chunks=_lazy_chunks(manifest, name)) if lazy else ad.io.read_elem(Xg)
                var = ad.io.read_elem(g["var"])
                mobs = ad.io.read_elem(g["obs"])
                mods[name] = ad.AnnData(X=X, obs=mobs, var=var)
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
    if meta.get("storage") == "csr":
        n, p = meta["shape"]
        return (max(1, min(n, 4096)), p)
    return None
