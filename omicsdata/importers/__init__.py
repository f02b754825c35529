"""Bring your own AnnData / MuData: ``od.import_anndata`` and ``od.import_mudata``.

>>> import omicsdata as od
>>> od.import_anndata("pbmc.h5ad", name="my-pbmc", label="cell_type", split_by="donor")
>>> mdata = od.load("my-pbmc")                     # the store; obs['split'] train/val/test

Modules: :mod:`.source` (backed files, row blocks), :mod:`.splits` (group-aware
splits), :mod:`.scverse` (streamed normalise/log1p/HVG fitted on train),
:mod:`.core` (the streamed write), :mod:`.entry` (the local catalog card and
its builder).
"""
from __future__ import annotations

from pathlib import Path

from .. import paths
from ..errors import CatalogError

__all__ = ["import_anndata", "import_mudata"]


def _import(kind: str, path_or_obj, name: str, *, label=None, split_by=None, preprocess=None, modality: str = "rna",
            fractions=None, seed: int = 0, n_top_genes: int = 2000, version: str = "1", overwrite: bool = False,
            title: str | None = None, block_bytes: int | None = None) -> Path:
    from ..storage import read_manifest
    from .core import check_name, store_target, write_import
    from .entry import entry_dir, make_card, write_entry

    check_name(name)
    version = paths.safe_component(str(version), f"dataset '{name}': version")
    if (entry_dir(name) / "card.yaml").exists() and not overwrite:
        raise CatalogError(f"dataset '{name}' was imported before ({entry_dir(name)}); pass overwrite=True "
                           "to replace it, or choose another name")
    options = {"kind": kind, "label": label, "split_by": split_by, "preprocess": preprocess, "seed": int(seed),
               "n_top_genes": int(n_top_genes)}
    if kind == "anndata":
        options["modality"] = modality
    if fractions:
        options["fractions"] = {k: float(v) for k, v in dict(fractions).items()}
    target = store_target(name, version)
    with paths.locked(f"build-{name}-{version}"):
        paths.clean_stale_tmp(target.parent)
        kw = {k: v for k, v in options.items() if k != "kind"}
        record = write_import(kind, path_or_obj, target, name=name, version=version, block_bytes=block_bytes, **kw)
        card = make_card(name, version, record, read_manifest(target)["modalities"], options, title)
        write_entry(card)
    return target


def import_anndata(path_or_adata, name: str, *, label: str | None = None, split_by: str | None = None,
                   preprocess: str | None = None, modality: str = "rna", fractions=None, seed: int = 0,
                   n_top_genes: int = 2000, version: str = "1", overwrite: bool = False,
                   title: str | None = None, block_bytes: int | None = None) -> Path:
    """Import an AnnData (object or ``.h5ad`` path) as dataset ``name``; returns the store path.

    The ``.h5ad`` is read backed, in row blocks (dense or CSR X), and written as
    a store where ``od.load(name)`` finds it; a card goes to
    ``<home>/catalog/datasets/`` so ``od.list_datasets()`` lists it. Obs
    columns keep their names; the matrix is modality ``modality`` (``rna``).
    Splits: an obs ``split`` column is used as is; otherwise seeded
    train/val/test (``fractions``, default 0.7/0.15/0.15) with whole
    ``split_by`` groups (donors) in one split, stratified by ``label`` where
    the groups allow. ``preprocess="scverse"``: normalise total, log1p, and
    the ``n_top_genes`` highly variable genes, all fitted on train cells and
    recorded in the manifest (``extra.import.scverse``). Bad input raises an
    :class:`~omicsdata.OmicsDataError` naming the file and field.
    """
    return _import("anndata", path_or_adata, name, label=label, split_by=split_by, preprocess=preprocess,
                   modality=modality, fractions=fractions, seed=seed, n_top_genes=n_top_genes, version=version,
                   overwrite=overwrite, title=title, block_bytes=block_bytes)


def import_mudata(path_or_mdata, name: str, *, label: str | None = None, split_by: str | None = None,
                  preprocess: str | None = None, fractions=None, seed: int = 0, n_top_genes: int = 2000,
                  version: str = "1", overwrite: bool = False, title: str | None = None,
                  block_bytes: int | None = None) -> Path:
    """:func:`import_anndata` for a MuData (object or ``.h5mu`` path): one store modality per MuData
    modality (cells missing from a modality get zero rows and ``has_<modality>`` False); ``label`` and
    ``split_by`` are columns of the MuData's global obs; ``preprocess`` applies to modality ``rna``
    (to every modality when there is none named ``rna``)."""
    return _import("mudata", path_or_mdata, name, label=label, split_by=split_by, preprocess=preprocess,
                   fractions=fractions, seed=seed, n_top_genes=n_top_genes, version=version,
                   overwrite=overwrite, title=title, block_bytes=block_bytes)
