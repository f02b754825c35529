"""Old import path of the storage layer; everything lives in :mod:`omicsdata.storage` now.

Kept so ``from omicsdata.store import open_store, write_store, read_manifest, ...``
keeps working. The layout is described in :mod:`omicsdata.storage.layout`.
"""
from __future__ import annotations

from .storage import (  # noqa: F401
                      DEFAULT_CHUNK_BYTES,
                      DEFAULT_CODEC,
                      FORMAT_VERSION,
                      MANIFEST,
                      TABLE_FILE_BYTES,
                      TABLE_MAX_GROUP_ROWS,
                      TABLE_ROW_GROUP_BYTES,
                      check_metadata,
                      hash_tree,
                      is_bulk_file,
                      make_codec,
                      open_store,
                      presence_column,
                      read_manifest,
                      rows_per_chunk,
                      store_nbytes,
                      table_row_group_rows,
                      verify_store,
                      write_parquet_shards,
                      write_store,
)
from .storage.manifest import jsonable as _jsonable  # noqa: F401
from .storage.manifest import read_remote_manifest as _read_remote_manifest  # noqa: F401
from .storage.open import _lazy_chunks  # noqa: F401

__all__ = ["open_store", "write_store", "read_manifest", "verify_store", "check_metadata", "hash_tree",
           "is_bulk_file", "presence_column", "make_codec", "rows_per_chunk", "store_nbytes",
           "write_parquet_shards", "table_row_group_rows", "MANIFEST", "FORMAT_VERSION", "DEFAULT_CHUNK_BYTES",
           "DEFAULT_CODEC", "TABLE_ROW_GROUP_BYTES", "TABLE_FILE_BYTES", "TABLE_MAX_GROUP_ROWS"]
