"""``import_anndata`` / ``import_mudata``: a user's cells as a cached store plus a local catalog entry.

The matrix is streamed: every modality's X becomes a dask array of row blocks
(about :data:`~omicsdata.importers.source.BLOCK_BYTES` each) read from the
backed file, optionally preprocessed (:mod:`.scverse`), and written block by
block by :func:`omicsdata.storage.write_store` under the synchronous dask
scheduler, so one block is in memory at a time. The store goes where
``od.load(name)`` looks (``<home>/stores/<name>/<version>/``) and the card
under ``<home>/catalog/datasets/<name>/`` (:mod:`.entry`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import paths
from ..errors import CatalogError, FormatError, OmicsDataError
from ..storage import write_store
from . import scverse
from .source import Matrix, open_anndata, open_mudata
from .splits import existing_split, group_splits

BUILDER = "anndata-import"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PREPROCESS = (None, "scverse")


def _dask_rows(n: int, p: int, dtype, sparse: bool, step: int, make_block):
    """A dask array of ``n x p`` whose row block ``[a, b)`` is ``make_block(a, b)`` (computed on demand)."""
    import dask
    import dask.array as da

    parts = []
    meta = sp.csr_matrix((0, p), dtype=dtype) if sparse else np.empty((0, p), dtype=dtype)
    for a in range(0, n, step):
        b = min(n, a + step)
        parts.append(da.from_delayed(dask.delayed(make_block, pure=True)(a, b), shape=(b - a, p),
                                     dtype=dtype, meta=meta))
    if not parts:
        return da.from_array(meta, chunks=(1, max(p, 1)))
    return da.concatenate(parts, axis=0)


def _check_obs(obs: pd.DataFrame, cols: dict, where: str) -> None:
    for role, col in cols.items():
        if col is not None and col not in obs.columns:
            raise FormatError(where, f"{role}={col!r}: obs has no column {col!r} "
                                     f"(columns: {', '.join(map(str, obs.columns[:20]))})")
    if not obs.index.is_unique:
        dup = obs.index[obs.index.duplicated()][:3].tolist()
        raise FormatError(where, f"obs_names are not unique (e.g. {dup}); run adata.obs_names_make_unique()")


def _splits(obs: pd.DataFrame, label, split_by, fractions, seed, where):
    if "split" in obs.columns:
        split = existing_split(obs, "split", where)
        info = {"predefined": True}
        if split_by is not None:
            per_group = pd.DataFrame({"g": obs[split_by].astype(str).to_numpy(), "s": split}).groupby("g")["s"].nunique()
            info["groups_in_two_splits"] = int((per_group > 1).sum())
        return split, info
    groups = obs[split_by].to_numpy() if split_by is not None else obs.index.to_numpy()
    if split_by is not None and pd.isna(obs[split_by]).any():
        raise FormatError(where, f"split_by={split_by!r}: {int(pd.isna(obs[split_by]).sum())} cell(s) have no "
                                 "group; fill them so no group can land in two splits")
    labels = obs[label].to_numpy() if label is not None else None
    split, info = group_splits(groups, labels, fractions, seed)
    info["predefined"] = False
    return split, info


def _modality_arrays(matrix: Matrix, positions, fitted, step):
    """dask X for one modality: rows aligned to global positions, transformed when ``fitted``."""
    n = len(positions)
    p = len(fitted["keep"]) if fitted else matrix.shape[1]
    dtype = np.float32 if fitted else matrix.dtype

    def block(a, b):
        x = matrix.rows(positions[a:b])
        return scverse.transform(x, fitted) if fitted else x

    return _dask_rows(n, p, dtype, matrix.sparse, step, block)


def _fit_scverse(matrix: Matrix, positions, train_mask, n_top_genes, step):
    rows = np.flatnonzero(train_mask & (positions >= 0))

    def train_blocks():
        for a in range(0, len(rows), step):
            yield matrix.rows(positions[rows[a:a + step]])

    try:
        return scverse.fit(train_blocks, matrix.shape[1], n_top_genes)
    except ValueError as e:
        raise FormatError(matrix.where, f"preprocess='scverse': {e}") from None


def import_modalities(mods: dict, obs: pd.DataFrame, target: Path, *, name: str, where: str, label=None,
                      split_by=None, preprocess=None, preprocess_modalities=None, fractions=None, seed: int = 0,
                      n_top_genes: int = 2000, version: str = "1", block_bytes: int | None = None,
                      source: dict | None = None) -> dict:
    """Write ``mods`` (``{name: (Matrix, var DataFrame, positions)}``) with ``obs`` as a store at ``target``.

    Returns the import record kept in the manifest (``extra['import']``)."""
    import anndata as ad
    import dask

    from ..storage.settings import new_mudata

    if preprocess not in PREPROCESS:
        raise OmicsDataError(f"preprocess={preprocess!r}: choose None or 'scverse'")
    _check_obs(obs, {"label": label, "split_by": split_by}, where)
    obs = obs.copy()
    split, split_info = _splits(obs, label, split_by, fractions, seed, where)
    obs["split"] = pd.Categorical(split)
    train = np.asarray(split == "train")
    if preprocess and not train.any():
        raise FormatError(where, "preprocess='scverse' is fitted on train cells, and no cell is in split 'train'")
    adatas, pre_record, kinds = {}, {}, {}
    for mname, (matrix, var, positions) in mods.items():
        step = matrix.block_rows(block_bytes) if block_bytes else matrix.block_rows()
        fitted = None
        if preprocess and mname in (preprocess_modalities or mods):
            fitted = _fit_scverse(matrix, positions, train, n_top_genes, step)
            var = var.iloc[fitted["keep"]].copy()
            for col in ("means", "dispersions", "dispersions_norm"):
                var[col] = fitted["stats"][col].to_numpy()[fitted["keep"]].astype(np.float32)
            pre_record[mname] = scverse.manifest_record(fitted, mods[mname][1].index)
        X = _modality_arrays(matrix, positions, fitted, step)
        adatas[mname] = ad.AnnData(X=X, obs=pd.DataFrame(index=obs.index), var=var)
        kinds[mname] = "log1p normalised counts (scverse)" if fitted else "cell x gene matrix as imported"
        obs[f"has_{mname}"] = positions >= 0
    mdata = new_mudata(adatas, obs)
    record = {"source": dict(source or {}), "label": label, "split_by": split_by, "preprocess": preprocess,
              "seed": int(seed), "splits": split_info, "modalities": list(mods),
              "n_obs": int(len(obs)), "scverse": pre_record}
    split_meta = {"column": "split", "by": split_by, "stratify": label, "seed": int(seed),
                  "fractions": split_info.get("fractions", {})}  # predefined or not: extra.import.splits
    with dask.config.set(scheduler="synchronous"):  # one block in memory at a time
        write_store(mdata, target, dataset=name, version=version, builder=BUILDER, builder_version="1",
                    builder_options={}, split_info=split_meta, feature_kinds=kinds,
                    extra={"import": record}, overwrite=True)
    return record


def check_name(name: str) -> str:
    """A valid, non-built-in dataset name for an import (built-in names cannot be shadowed)."""
    from ..datasets import builtin_card_files, folder_name

    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CatalogError(f"name={name!r}: a dataset name is lower-case letters, digits and '-', "
                           "starting with a letter or digit")
    builtin = {c.parent.name for c in builtin_card_files()}
    if folder_name(name) in builtin:
        raise CatalogError(f"name={name!r} is a built-in dataset; choose another name for the import")
    return name


def anndata_modalities(adata, where: str, modality: str) -> dict:
    """``{modality: (Matrix, var, positions)}`` for one AnnData (every cell present)."""
    if not re.match(r"^[a-z0-9_]+$", modality):
        raise CatalogError(f"modality={modality!r}: a modality name is lower-case letters, digits and '_'")
    var = pd.DataFrame(adata.var).copy()
    return {modality: (Matrix(adata.X, f"{where}: X"), var, np.arange(adata.n_obs, dtype=np.int64))}


def mudata_modalities(mdata, where: str) -> dict:
    """``{modality: (Matrix, var, positions into the modality)}`` aligned to ``mdata.obs_names``."""
    out = {}
    for mname, a in mdata.mod.items():
        if not re.match(r"^[a-z0-9_]+$", mname):
            raise CatalogError(f"{where}: modality {mname!r}: rename it to lower-case letters, digits and '_'")
        pos = pd.Index(a.obs_names).get_indexer(mdata.obs_names).astype(np.int64)
        out[mname] = (Matrix(a.X, f"{where}: mod/{mname}/X"), pd.DataFrame(a.var).copy(), pos)
    return out


def source_record(path, obj, kind: str) -> dict:
    """Where the data came from, for the card and the manifest."""
    if path is None:
        return {"kind": kind, "location": f"in-memory {type(obj).__name__}", "reimportable": False}
    return {"kind": kind, "location": str(Path(path).resolve()), "reimportable": True,
            "bytes": int(Path(path).stat().st_size)}


def open_source(kind: str, path_or_obj):
    """``(obj, path, where)`` for ``kind`` ``anndata`` or ``mudata``."""
    obj, path = (open_anndata if kind == "anndata" else open_mudata)(path_or_obj)
    where = str(path) if path is not None else f"in-memory {type(obj).__name__}"
    return obj, path, where


def write_import(kind: str, path_or_obj, target: Path, *, name: str, modality: str = "rna", **kw) -> dict:
    """Open the source and write its store at ``target`` (used by the import and by the builder)."""
    obj, path, where = open_source(kind, path_or_obj)
    try:
        if kind == "anndata":
            mods = anndata_modalities(obj, where, modality)
            obs = pd.DataFrame(obj.obs).copy()
        else:
            mods = mudata_modalities(obj, where)
            obs = pd.DataFrame(obj.obs).copy()
        if kind == "mudata" and "rna" in mods:
            kw.setdefault("preprocess_modalities", ["rna"])
        return import_modalities(mods, obs, target, name=name, where=where,
                                 source=source_record(path, obj, kind), **kw)
    finally:
        if path is not None:
            _close(obj)


def _close(obj) -> None:
    f = getattr(obj, "file", None)
    if f is not None:
        try:
            f.close()
        except Exception:  # closing a read-only handle: nothing to lose
            pass
    for a in getattr(obj, "mod", {}).values():
        _close(a)


def store_target(name: str, version: str) -> Path:
    """Where ``od.load(name)`` finds the store."""
    return paths.store_dir(name, version)
