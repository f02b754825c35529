"""Opening a store as a :class:`mudata.MuData` (lazy by default)."""
from __future__ import annotations

import os

import numpy as np

from ..errors import CorruptStoreError, StoreError
from ..sources.http import mirror_url
from ._quiet import quiet
from .align import drop_missing
from .layout import GRAPH_KEY, MOD_GROUP, MOD_ORDER_ATTR, is_remote, presence_column
from .lazy import lazy_matrix
from .manifest import check_chunks, check_metadata, read_manifest, read_remote_manifest, verify_store
from .readers import CSRBlock, zarr_reader
from .settings import mudata_no_pull, new_mudata

VERIFY_MODES = ("fast", "full", "none")
MISSING_MODES = ("zeros", "drop")


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


def open_store(path: str | os.PathLike, lazy: bool = True, verify="fast", missing: str = "zeros"):
    """Open a store as a :class:`mudata.MuData`.

    ``lazy=True`` (default) reads only metadata and the small elements (not ``X``); every
    matrix is a dask array over the store's row readers (dense row chunks or
    CSR row blocks), and nothing else is read until asked. ``lazy=False``
    loads everything into memory. ``verify`` (see :func:`check_store`):
    ``"fast"`` (default), ``"full"`` or ``"none"``; a chunk that fails to
    decode later raises :class:`CorruptStoreError` naming its file. Remote
    stores (``https://``, ``s3://``...) open through fsspec. The manifest is
    attached as ``mdata.uns["omicsdata"]``, the path as ``mdata.uns["omicsdata_path"]``.

    Every stored element comes back: global ``obsm``/``varm``/``obsp``/``uns``; per modality ``obs``,
    ``var``, ``obsm``, ``varm``, ``layers``, ``obsp``, ``varp``, ``uns`` and ``raw`` (read into memory;
    only ``X`` is lazy; a lazy open leaves a stored graph topology, ``uns["graph"]``, on disk).
    A modality whose stored ``obs`` has no columns gets the global obs columns (its own
    ``has_<modality>`` included, other modalities' masks left out). ``missing``: ``"zeros"`` (default:
    every modality holds every sample, zero rows where absent, ``obs["has_<modality>"]`` says which)
    or ``"drop"`` (each modality holds only its observed samples, as MuData intends; lazy stays lazy).
    """
    import anndata as ad
    import zarr

    spath = mirror_url(str(path))  # $OMICSDATA_HTTP_MIRROR applies to store URLs too
    if is_remote(spath):
        manifest = read_remote_manifest(spath)
    else:
        manifest = read_manifest(path)
        check_store(path, manifest, verify)
    if missing not in MISSING_MODES:
        raise StoreError(f"missing={missing!r}: use one of {', '.join(MISSING_MODES)}")
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
                mods[name] = _read_modality(g, X, lazy)
            glob = _read_global(root)
        except CorruptStoreError:
            raise
        except (KeyError, ValueError, OSError, zarr.errors.BaseZarrError) as e:  # type: ignore[attr-defined]
            raise CorruptStoreError(
                f"{path}: cannot read store ({type(e).__name__}: {e}); run od.verify to find the bad file, "
                "then rebuild with od.build(name, force=True)") from e
        for name, a in mods.items():
            _fill_obs(name, a, obs)
        mdata = new_mudata(mods, obs)
        _set_global(mdata, glob)
        if missing == "drop":
            with mudata_no_pull():
                for name, a in drop_missing(mods, obs).items():
                    mdata.mod[name] = a
                mdata.update()
                if mdata.obs_names.equals(obs.index):
                    mdata.obs = obs  # mudata's update re-infers dtypes (float32 -> int64): keep the stored ones
        mdata.uns["omicsdata"] = manifest
        mdata.uns["omicsdata_path"] = spath
    return mdata


def _lazy_chunks(manifest: dict, name: str):
    meta = manifest["modalities"].get(name, {})
    if meta.get("storage") == "dense" and meta.get("chunks"):
        return tuple(meta["chunks"])
    n, p = meta["shape"]
    return (max(1, min(n, 4096)), p)


def _read_modality(g, X, lazy: bool):
    """One modality's AnnData: the matrix ``X`` given, every other stored element read from group ``g``."""
    import anndata as ad

    elems = {k: ad.io.read_elem(g[k]) for k in ("obsm", "varm", "layers", "obsp", "varp") if k in g}
    uns = {k: ad.io.read_elem(g["uns"][k]) for k in g["uns"] if not (lazy and k == GRAPH_KEY)} if "uns" in g else {}
    a = ad.AnnData(X=X, obs=ad.io.read_elem(g["obs"]), var=ad.io.read_elem(g["var"]), uns=uns, **elems)
    if "raw" in g:
        a.raw = ad.io.read_elem(g["raw"])
    return a


def _fill_obs(name: str, a, obs) -> None:
    """Give a modality with no obs columns the global ones (its own presence mask, not the others')."""
    if len(a.obs.columns) or not a.obs_names.equals(obs.index):
        return
    others = {c for c in obs.columns if c.startswith("has_")}
    for c in obs.columns:
        if c not in others or c == presence_column(name):
            a.obs[c] = obs[c].values


def _read_global(root) -> dict:
    """The MuData-level obsm, varm, obsp, varp, uns and var a store holds."""
    import anndata as ad

    return {k: ad.io.read_elem(root[k]) for k in ("obsm", "varm", "obsp", "varp", "uns", "var") if k in root}


def _set_global(mdata, glob: dict) -> None:
    """Put the stored MuData-level elements on ``mdata`` (var only when it has columns of its own)."""
    for key in ("obsm", "varm", "obsp", "varp"):
        for k, v in glob.get(key, {}).items():
            getattr(mdata, key)[k] = v
    mdata.uns.update(glob.get("uns", {}))
    var = glob.get("var")
    if var is not None and len(var.columns) and var.index.equals(mdata.var_names):
        mdata.var = var
