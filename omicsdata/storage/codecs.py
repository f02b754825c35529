"""Compressors and chunk sizing of store matrices.

The default codec (Blosc + LZ4HC level 5, byte shuffle) was chosen by
``scripts/bench_codecs.py``: on full-size demo-pancancer RNA, methylation and
protein it gave the best effective read speed (decompression plus reading the
compressed bytes from a 500 MB/s disk), ahead of blosc-zstd-3 (ratio 1.75 vs
1.89, read ~2x faster); stores are read many times (every epoch) and written
once.
"""
from __future__ import annotations

from ..errors import StoreError

DEFAULT_CHUNK_BYTES = 2 << 20  # ~2 MiB of uncompressed rows per chunk
DEFAULT_CODEC = "blosc-lz4hc-5"  # scripts/bench_codecs.py: best effective read speed
#: Blosc's ``blocksize`` setting. With byte shuffle Blosc multiplies it by the typesize: 256 KiB blocks
#: of float32/int32 (its own choice for LZ4HC is 1 MiB, two blocks per 2 MiB chunk). The stream reads
#: the rows it wants of a chunk shared with a neighbouring block through ``blosc_getitem``, which
#: decompresses only the blocks holding them: eight blocks per chunk keep that waste small. Measured
#: on 2 MiB CSR chunks: same ratio (5.12 vs 5.15), whole-chunk decode as fast.
BLOSC_BLOCK_BYTES = 64 << 10


def make_codec(name: str):
    """A zarr v3 compressor from a short name.

    ``blosc-<cname>-<level>[-bitshuffle]`` (cname: zstd, lz4, lz4hc, zlib),
    ``zstd-<level>``, ``gzip-<level>`` or ``none``.
    """
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    parts = name.split("-")
    try:
        if parts[0] == "none":
            return None
        if parts[0] == "blosc":
            shuffle = "bitshuffle" if parts[-1] == "bitshuffle" else "shuffle"
            return BloscCodec(cname=parts[1], clevel=int(parts[2]), shuffle=shuffle, blocksize=BLOSC_BLOCK_BYTES)
        if parts[0] == "zstd":
            return ZstdCodec(level=int(parts[1]))
        if parts[0] == "gzip":
            return GzipCodec(level=int(parts[1]))
    except (IndexError, ValueError):
        pass
    raise StoreError(f"unknown codec '{name}': use blosc-<zstd|lz4|lz4hc|zlib>-<level>[-bitshuffle], zstd-<level>, gzip-<level> or none")


def checked_compressors(name: str) -> list:
    """The compressor of ``name`` followed by a CRC32C checksum (zarr v3 ``crc32c`` codec).

    Every matrix chunk a store writes ends with the checksum of its compressed
    bytes, so a flipped or truncated chunk fails to decode (and is reported as
    :class:`~omicsdata.errors.CorruptStoreError` by the readers) instead of
    being served as data. Costs 4 bytes per chunk.
    """
    from zarr.codecs import Crc32cCodec

    comp = make_codec(name)
    return [comp, Crc32cCodec()] if comp is not None else [Crc32cCodec()]


def rows_per_chunk(n_features: int, itemsize: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per chunk so that a chunk of whole rows is about ``chunk_bytes``."""
    return max(1, int(chunk_bytes // max(1, n_features * itemsize)))
