"""The storage layer: the only code that knows a store's on-disk layout.

>>> from omicsdata import storage
>>> st = storage.open("demo-pancancer")      # name | path | URL | MuData | AnnData | Store
>>> st.rows("train"); st.presence("rna"); st.read_rows("rna", [3, 1, 2])

Modules, one job each: :mod:`~.layout` (path and key names),
:mod:`~.codecs` (compressors, chunk sizing), :mod:`~.manifest` (read,
validate, hash, verify), :mod:`~.write` (write_store, Parquet shards),
:mod:`~.open` (open_store -> MuData), :mod:`~.readers` (dense, CSR,
in-memory and topology readers), :mod:`~.store` (the :class:`Store`).
"""
from __future__ import annotations

from . import foreign, layout  # foreign: storage.open reads AnnData/MuData/annbatch Zarr stores in place
from .codecs import DEFAULT_CHUNK_BYTES, DEFAULT_CODEC, make_codec, rows_per_chunk
from .layout import FORMAT_VERSION, MANIFEST, is_bulk_file, presence_column
from .lazy import is_pristine, lazy_matrix
from .manifest import (
                       check_chunks,
                       check_metadata,
                       hash_tree,
                       is_store_dir,
                       read_manifest,
                       read_remote_manifest,
                       store_nbytes,
                       verify_store,
)
from .open import VERIFY_MODES, check_store, open_store
from .readers import CSRBlock, CSRZarrReader, DenseZarrReader, MemoryReader, read_graph_arrays, read_rows, row_runs
from .store import Store, from_path, open, set_name_resolver  # noqa: A004 - storage.open
from .write import (
                       TABLE_FILE_BYTES,
                       TABLE_MAX_GROUP_ROWS,
                       TABLE_ROW_GROUP_BYTES,
                       table_row_group_rows,
                       write_parquet_shards,
                       write_store,
)

__all__ = [
    "layout", "foreign", "Store", "open", "from_path", "set_name_resolver", "open_store", "write_store",
    "write_parquet_shards", "table_row_group_rows", "read_manifest", "read_remote_manifest", "verify_store",
    "check_metadata", "hash_tree", "is_store_dir", "store_nbytes", "make_codec", "rows_per_chunk",
    "presence_column", "is_bulk_file", "MANIFEST", "FORMAT_VERSION", "DEFAULT_CHUNK_BYTES", "DEFAULT_CODEC",
    "TABLE_ROW_GROUP_BYTES", "TABLE_FILE_BYTES", "TABLE_MAX_GROUP_ROWS", "CSRBlock", "DenseZarrReader",
    "CSRZarrReader", "MemoryReader", "read_rows", "row_runs", "read_graph_arrays", "check_chunks", "check_store",
    "VERIFY_MODES", "lazy_matrix", "is_pristine",
]
