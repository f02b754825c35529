"""Naming the chunk file that does not decode: the error every reader raises for a corrupt store."""
from __future__ import annotations

from ..errors import CorruptStoreError


class ChunkDecodeError(Exception):
    """A chunk file that does not decode (``.path`` names it)."""

    def __init__(self, path: str, err: Exception):
        super().__init__(f"{type(err).__name__}: {err}")
        self.path = path


def _chunk_file(url: str, arr, key: str, row: int) -> str:
    """The file holding element ``row`` (first axis) of zarr array ``arr`` at ``key`` in store ``url``."""
    grid = arr.metadata.chunk_grid.chunk_shape  # the shard shape when sharded: one file per shard
    coords = (row // grid[0],) + (0,) * (len(grid) - 1)
    return f"{url.rstrip('/')}/{key}/{arr.metadata.encode_chunk_key(coords)}"


def _decode_error(url: str, modality: str, dataset: str | None, parts, ranges, err: Exception) -> Exception:
    """Find which chunk of ``parts`` (``[(key, zarr array)]``) over element ``ranges`` fails to decode.

    Re-reads the chunks of the failed read one at a time; returns a
    :class:`CorruptStoreError` naming the chunk file (or ``err`` itself when
    every chunk decodes alone, i.e. it was not a corrupt chunk).
    """
    for key, arr in parts:
        step = int(arr.metadata.chunk_grid.chunk_shape[0])
        n = int(arr.shape[0])
        for a, b in ranges(key):
            for c0 in range((a // step) * step, min(b, n), step):
                try:
                    arr[c0:min(c0 + step, n)]
                except Exception as e:  # noqa: BLE001 - any decode failure is what we look for
                    return corrupt_chunk(url, modality, dataset, _chunk_file(url, arr, key, c0), e)
    return err


def corrupt_chunk(url: str, modality: str, dataset: str | None, chunk_file: str, err: Exception) -> CorruptStoreError:
    """The error for a chunk that does not decode: names the dataset, the modality, the file and the fix."""
    name = dataset or "<name>"
    return CorruptStoreError(
        f"dataset '{name}': store {url}: modality '{modality}': chunk file {chunk_file} cannot be decoded "
        f"({type(err).__name__}: {err}); the store is corrupt (flipped or truncated bytes); rebuild it with "
        f"od.build('{name}', force=True)", [chunk_file])
