"""The on-disk layout of a store: the only module that spells its paths.

A store is MuData's Zarr layout in Zarr format 3 (``mudata.read_zarr``
reads it too), plus Parquet tables and a manifest::

    <store>/zarr.json                  root group, encoding-type MuData
    <store>/obs/ var/ obsm/ uns/ ...   sample table, presence masks
    <store>/mod/<modality>/X           dense: chunks of whole rows;
                                       sparse: CSR data/indices/indptr
    <store>/mod/<modality>/uns/graph   a topology shared by every sample (optional)
    <store>/mod/<modality>/obs var ...
    <store>/tables/<name>/*.parquet    text-bearing tables (optional)
    <store>/manifest.json              see schemas/store.schema.json

Every modality holds *all* samples, in the same row order as ``obs``; a
sample lacking a modality has a zero row and ``obs["has_<modality>"]`` is
False.
"""
from __future__ import annotations

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MOD_GROUP = "mod"
TABLES_DIR = "tables"
GRAPH_KEY = "graph"
MOD_ORDER_ATTR = "mod-order"
#: the ``var`` column of a gene-level modality holding gene symbols (GDC STAR counts' ``gene_name``)
SYMBOL_COLUMN = "gene_symbol"


def mod_key(modality: str) -> str:
    """The group of one modality (an AnnData): ``mod/<modality>``."""
    return f"{MOD_GROUP}/{modality}"


def matrix_key(modality: str) -> str:
    """The matrix of one modality: ``mod/<modality>/X`` (dense array or CSR group)."""
    return f"{mod_key(modality)}/X"


def csr_part_key(modality: str, part: str) -> str:
    """One array (``data``, ``indices``, ``indptr``) of a CSR matrix."""
    return f"{matrix_key(modality)}/{part}"


def graph_key(modality: str) -> str:
    """The topology group of one modality: ``mod/<modality>/uns/graph``."""
    return f"{mod_key(modality)}/uns/{GRAPH_KEY}"


def table_dir(name: str) -> str:
    """The folder of Parquet table ``name``, relative to the store: ``tables/<name>``."""
    return f"{TABLES_DIR}/{name}"


def presence_column(modality: str) -> str:
    """The bool ``obs`` column saying which samples have ``modality``: ``has_<modality>``."""
    return f"has_{modality}"


def is_bulk_file(rel: str) -> bool:
    """True for files a lazy open never reads: matrix chunks (``mod/*/X/**``
    except ``zarr.json``) and Parquet tables (``tables/**``)."""
    parts = rel.split("/")
    if parts[0] == TABLES_DIR:
        return True
    return len(parts) > 3 and parts[0] == MOD_GROUP and parts[2] == "X" and parts[-1] != "zarr.json"


def is_remote(path) -> bool:
    """True for store URLs read through fsspec (``https://``, ``s3://``; not ``file://``)."""
    s = str(path)
    return "://" in s and not s.startswith("file://")
