"""Whole-chunk reads straight from a local Zarr v3 array's chunk files, decoded in parallel.

The stream reads whole chunk runs; zarr's generic pipeline spends more per
chunk (an asyncio task, codec dispatch, a buffer copy) than decoding it
takes. :class:`LocalChunks` handles the common case directly: a local array
chunked along the first axis only, unsharded or sharded (index at the end),
whose codecs are ``bytes`` (little-endian), at most one compressor (blosc,
zstd or gzip) and an optional ``crc32c`` checksum. Each chunk's bytes are read
whole, its checksum checked, and decompressed *straight into* the caller's
output rows (a chunk only partly wanted goes through one scratch chunk, or
only its Blosc blocks are decoded); small chunks go in runs, one job (one
read of a shard) a run. Jobs run on the decode threads of
:mod:`omicsdata.storage.jobs` (numcodecs releases the GIL). Anything else
(remote stores, other codecs) returns ``None`` from :meth:`LocalChunks.of`
and the readers use zarr. A chunk that does not decode raises
:class:`~omicsdata.storage.chunk_errors.ChunkDecodeError` naming its file.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from .blosc import blosc_getitem, is_blosc
from .chunk_errors import ChunkDecodeError
from .memory import Scatter

#: Bytes of decoded chunks one array keeps after reading them in part (at least two chunks).
PARTIAL_CACHE_BYTES = 8 << 20

#: Decoded bytes of consecutive whole chunks one decode job takes (chunks smaller than this go in runs:
#: annbatch's 32k-element inner chunks would be thousands of jobs a read, each a thread switch).
RUN_BYTES = 1 << 20

#: The largest chunk a decode thread keeps an array for (chunks it decodes on their way to scattered rows).
THREAD_CHUNK_BYTES = 16 << 20

def _decoder(codecs):
    """(numcodecs decoder or None, checksum?) for zarr v3 ``codecs``; raises ValueError when not handled."""
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, GzipCodec, ZstdCodec

    codecs = list(codecs)
    if not codecs or not isinstance(codecs[0], BytesCodec):
        raise ValueError("first codec is not bytes")
    if codecs[0].endian is not None and codecs[0].endian.value != "little":
        raise ValueError("big-endian")
    rest = codecs[1:]
    crc = bool(rest) and isinstance(rest[-1], Crc32cCodec)
    if crc:
        rest = rest[:-1]
    if len(rest) > 1:
        raise ValueError("more than one compressor")
    if not rest:
        return None, crc
    c = rest[0]
    if isinstance(c, BloscCodec):
        from numcodecs import Blosc

        return Blosc(), crc
    if isinstance(c, ZstdCodec):
        from numcodecs import Zstd

        return Zstd(), crc
    if isinstance(c, GzipCodec):
        from numcodecs import GZip

        return GZip(), crc
    raise ValueError(f"codec {type(c).__name__}")


def _sharding(codecs, grid):
    """For a sharded array: ((inner chunk rows, index checksummed?), inner codecs); else (None, codecs)."""
    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec

    codecs = list(codecs)
    if not codecs or not isinstance(codecs[0], ShardingCodec):
        return None, codecs
    sc = codecs[0]
    inner = tuple(sc.chunk_shape)
    ic = list(sc.index_codecs)
    if (len(codecs) > 1 or sc.index_location.value != "end" or inner[1:] != tuple(grid[1:]) or grid[0] % inner[0]
            or not ic or not isinstance(ic[0], BytesCodec) or len(ic) > 2
            or (len(ic) == 2 and not isinstance(ic[1], Crc32cCodec))):
        raise ValueError("a sharding layout not handled")
    return (int(inner[0]), len(ic) == 2), list(sc.codecs)


class LocalChunks:
    """First-axis ranges of one local Zarr v3 array, read chunk file by chunk file."""

    def __init__(self, root: str, arr, decoder, crc: bool, shard: tuple | None = None):
        from numcodecs.checksum32 import CRC32C

        self.root, self.decoder, self.crc = root, decoder, CRC32C(location="end") if crc else None
        self.shape, self.dtype = tuple(arr.shape), np.dtype(arr.dtype)
        self.chunk = int(arr.metadata.chunk_grid.chunk_shape[0])
        # sharded: (inner chunks per shard, index checksummed?); chunk c is inner chunk c % k of shard c // k
        self.shard, self._index = None, {}
        self.crc_index = CRC32C(location="end")
        if shard is not None:
            inner, index_crc = shard
            self.shard = (self.chunk // inner, index_crc)
            self.chunk = inner
        self.tail = tuple(self.shape[1:])
        row_bytes = int(np.prod(self.tail, dtype=np.int64)) * self.dtype.itemsize
        self.run_chunks = max(1, RUN_BYTES // max(1, self.chunk * row_bytes))  # whole chunks a decode job takes
        self.fill = arr.metadata.fill_value
        self._key = arr.metadata.encode_chunk_key
        self.nd = len(self.shape)
        self._cache: OrderedDict = OrderedDict()  # chunk -> decoded array, chunks read in part (LRU)
        self._cache_lock = threading.Lock()

    def __getstate__(self):  # a DataLoader worker starts with an empty cache
        d = dict(self.__dict__)
        d["_cache"], d["_cache_lock"] = OrderedDict(), None
        return d

    def __setstate__(self, d):
        d["_cache_lock"] = threading.Lock()
        self.__dict__.update(d)

    @classmethod
    def of(cls, url: str, key: str, arr) -> LocalChunks | None:
        """The direct reader of array ``arr`` at ``key`` in local store ``url``, or ``None`` when not handled."""
        try:
            meta = arr.metadata
            if getattr(meta, "zarr_format", 3) != 3 or "://" in str(url) and not str(url).startswith("file://"):
                return None
            grid = tuple(meta.chunk_grid.chunk_shape)
            if grid[1:] != tuple(arr.shape[1:]) or arr.shape[0] == 0:
                return None
            shard, codecs = _sharding(meta.codecs, grid)
            decoder, crc = _decoder(codecs)
        except Exception:  # noqa: BLE001 - anything unusual: zarr reads it
            return None
        root = str(url)[len("file://"):] if str(url).startswith("file://") else str(url)
        return cls(os.path.join(root, key), arr, decoder, crc, shard)

    def path(self, c: int) -> str:
        """The file of chunk ``c`` (of its shard, when sharded)."""
        c = c // self.shard[0] if self.shard else c
        return os.path.join(self.root, self._key((c,) + (0,) * (self.nd - 1)))

    def _raw(self, c: int, path: str) -> bytes | None:
        """The encoded bytes of chunk ``c`` (None: never written); a shard's index is read once and kept."""
        with open(path, "rb") as fh:
            if not self.shard:
                return fh.read()
            off, n = (int(v) for v in self._shard_index(fh, path)[c % self.shard[0]])
            if off == 2**64 - 1:
                return None
            fh.seek(off)
            return fh.read(n)

    def _shard_index(self, fh, path: str) -> np.ndarray:
        """The (offset, length) rows of shard file ``fh``'s inner chunks, its checksum checked (read once)."""
        idx = self._index.get(path)
        if idx is None:
            k, index_crc = self.shard
            size = 16 * k + 4 * index_crc
            fh.seek(-size, os.SEEK_END)
            raw = fh.read(size)
            if index_crc:
                raw = self.crc_index.decode(raw)
            idx = self._index[path] = np.frombuffer(raw, "<u8").reshape(k, 2)
        return idx

    def _raw_run(self, c0: int, c1: int, path: str) -> list:
        """The encoded bytes of inner chunks ``[c0, c1)`` of one shard (None: never written): one read of
        the span when they are stored back to back (as zarr writes a shard), else one read each."""
        with open(path, "rb") as fh:
            k = self.shard[0]
            off, n = self._shard_index(fh, path)[c0 % k:(c1 - 1) % k + 1].astype(np.int64).T
            if (off >= 0).all() and (off[1:] == off[:-1] + n[:-1]).all():
                fh.seek(int(off[0]))
                span = memoryview(fh.read(int(off[-1] + n[-1] - off[0])))
                return [span[a:a + m] for a, m in zip((off - off[0]).tolist(), n.tolist())]
            got = []
            for a, m in zip(off.tolist(), n.tolist()):
                if a < 0:  # offset 2**64 - 1 (as int64: -1): never written
                    got.append(None)
                    continue
                fh.seek(a)
                got.append(fh.read(m))
            return got

    def _fetch(self, c: int, path: str):
        """The encoded bytes of chunk ``c`` (None: never written); a damaged shard index raises
        :class:`ChunkDecodeError`."""
        try:
            return self._raw(c, path)
        except FileNotFoundError:
            return None
        except Exception as e:  # noqa: BLE001 - a damaged shard index
            raise ChunkDecodeError(path, e) from e

    def _payload(self, path: str, raw: bytes):
        """``raw`` with its CRC32C checked and removed (a view), where the array has one."""
        try:
            return self.crc.decode(raw) if self.crc else raw
        except Exception as e:  # noqa: BLE001 - named by the caller
            raise ChunkDecodeError(path, e) from e

    def _decode(self, c: int, out: np.ndarray) -> None:
        """Chunk ``c`` into ``out`` (a C-contiguous array of one whole chunk)."""
        path = self.path(c)
        raw = self._fetch(c, path)
        if raw is None:  # zarr's rule: a chunk never written holds the fill value
            out[...] = self.fill
            return
        self._decode_payload(path, self._payload(path, raw), out)

    def _decode_payload(self, path: str, payload, out: np.ndarray) -> None:
        try:
            if self.decoder is None:
                if len(payload) != out.nbytes:
                    raise ValueError(f"{len(payload)} bytes, expected {out.nbytes}")
                out.reshape(-1).view(np.uint8)[:] = np.frombuffer(payload, np.uint8)
            else:
                self.decoder.decode(payload, out=out.reshape(-1).view(np.uint8))
        except Exception as e:  # noqa: BLE001 - named by the caller
            raise ChunkDecodeError(path, e) from e

    def _decode_scatter(self, c: int, dst: Scatter) -> None:
        """Chunk ``c`` into this thread's chunk-sized array (reused, so it stays in the last-level cache), then
        its rows to their places."""
        tmp = _thread_chunk(self.chunk, self.tail, self.dtype)
        self._decode(c, tmp)
        dst.put(tmp)

    def jobs(self, out, lo: int, hi: int, partial: dict) -> list:
        """Callables that fill ``out`` (``hi - lo`` rows; an array, or a :class:`~.memory.Scatter` placing
        each row) with the whole chunks of rows ``[lo, hi)``.

        Chunks only partly wanted go into ``partial`` (``{(id(self), c): (self, c, [(dst, i0, i1)])}``),
        so that :func:`plan` decodes each once however many ranges of one read touch it."""
        jobs, run = [], []  # run: consecutive whole chunks going to contiguous rows of out
        n = self.shape[0]
        for c in range(lo // self.chunk, -(-hi // self.chunk)):
            a, b = c * self.chunk, (c + 1) * self.chunk
            s0, s1 = max(a, lo), min(b, hi)
            dst = out[s0 - lo:s1 - lo]
            whole = s0 == a and s1 == b and b <= n
            if whole and isinstance(dst, Scatter):
                jobs.append((self._decode_scatter, c, dst))
            elif whole and dst.flags.c_contiguous:
                run.append(c)
            else:
                partial.setdefault((id(self), c), (self, c, []))[2].append((dst, s0 - a, s1 - a))
        # small chunks go in runs of RUN_BYTES, one job (and in a shard one read) a run, never across shards
        for i in range(0, len(run), self.run_chunks):
            part = run[i:i + self.run_chunks]
            cut = [0, *(j for j in range(1, len(part)) if self.shard and part[j] % self.shard[0] == 0), len(part)]
            for x, y in zip(cut[:-1], cut[1:]):
                c0, c1 = part[x], part[y - 1] + 1
                dst = out[c0 * self.chunk - lo:c1 * self.chunk - lo]
                jobs.append((self._decode, c0, dst) if c1 - c0 == 1 else (self._decode_run, c0, c1, dst))
        return jobs

    def _decode_run(self, c0: int, c1: int, out: np.ndarray) -> None:
        """Consecutive whole chunks ``[c0, c1)`` into ``out`` (C-contiguous, their rows), as one job: chunks
        of one shard come in one read (see :meth:`jobs`)."""
        if not self.shard:
            for c in range(c0, c1):
                self._decode(c, out[(c - c0) * self.chunk:(c - c0 + 1) * self.chunk])
            return
        path = self.path(c0)
        try:
            raws = self._raw_run(c0, c1, path)
        except FileNotFoundError:
            raws = [None] * (c1 - c0)
        except Exception as e:  # noqa: BLE001 - a damaged shard index
            raise ChunkDecodeError(path, e) from e
        for i, raw in enumerate(raws):
            dst = out[i * self.chunk:(i + 1) * self.chunk]
            if raw is None:
                dst[...] = self.fill
            else:
                self._decode_payload(path, self._payload(path, raw), dst)

    def _partials(self, c: int, targets: list) -> None:
        """Chunk ``c`` decoded once (or taken from the small cache of recently decoded partial chunks),
        then the wanted rows copied to each ``(dst, i0, i1)``; or, for a checksummed Blosc chunk, only
        the Blosc blocks holding the wanted rows decoded, straight into each ``dst`` (:func:`blosc_getitem`).

        The cache keeps the last :data:`PARTIAL_CACHE_BYTES` of chunks decoded whole for several
        parts: a CSR ``indptr`` chunk serves every range of a store's rows. Decoding a part spares the
        rest of the chunk a block shares with its neighbour (a shuffled CSR read decoded ~1.5 chunks
        per chunk it used); the neighbour's part comes in a random later buffer, rarely still cached,
        so a single part of a checksummed Blosc chunk read into an array is never decoded whole (other
        codecs, and parts scattered into place, are: see :meth:`_decode_parts`)."""
        tmp = self._cached(c)
        if tmp is None:
            path = self.path(c)
            raw = self._fetch(c, path)
            payload = None if raw is None else self._payload(path, raw)
            if payload is not None and self._decode_parts(path, payload, targets):
                return
            tmp = np.empty((self.chunk, *self.tail), dtype=self.dtype)
            if payload is None:
                tmp[...] = self.fill
            else:
                self._decode_payload(path, payload, tmp)
            self._remember(c, tmp)
        for dst, i0, i1 in targets:
            if isinstance(dst, Scatter):
                dst.put(tmp[i0:i1])
            else:
                dst[...] = tmp[i0:i1]

    def _decode_parts(self, path: str, payload, targets: list) -> bool:
        """Rows ``[i0, i1)`` of a chunk (its checked ``payload``) into each ``dst`` through c-blosc's
        ``blosc_getitem`` (only the Blosc blocks holding them are decompressed); False where that does not
        apply (not Blosc, no checksum, a non-contiguous ``dst``) or, for several parts, would decompress
        more than half of the chunk's blocks, and the caller decodes the chunk whole (and keeps it in the
        small cache). A single part takes this path even when it needs every block: its blocks are
        decompressed straight into ``dst``, without a chunk-sized array to copy out of (reads of the
        stream's shuffled buffers ~20% faster than through the cache).

        Only checksummed chunks (our stores' matrices) take this path: ``blosc_getitem`` trusts the block
        offsets in the chunk, and the CRC32C checked first rules out a damaged one."""
        getitem = blosc_getitem() if self.crc is not None and is_blosc(self.decoder) else None
        if getitem is None or not all(isinstance(dst, np.ndarray) and dst.flags.c_contiguous for dst, _, _ in targets):
            return False
        try:
            payload = np.frombuffer(payload, np.uint8)
            if len(payload) < 16 or int(payload[12:16].view("<u4")[0]) != len(payload):
                raise ValueError("Blosc header does not match the chunk's size")
            nbytes, block = (int(v) for v in payload[4:12].view("<u4"))
            row = (int(np.prod(self.tail, dtype=np.int64)) if self.tail else 1) * self.dtype.itemsize
            size = max(1, int(payload[3]))  # the header's typesize: getitem counts in its items
            # Blosc blocks the parts decompress (one getitem each): one part always (at most the whole chunk's,
            # with no copy); several (a CSR indptr chunk serving every range of a read, and of later reads)
            # only below half, else the chunk is decoded once and kept
            cost = sum((i1 * row - 1) // block - (i0 * row) // block + 1 for _, i0, i1 in targets if i1 > i0)
            blocks = -(-nbytes // block) if block > 0 else 0
            if (len(targets) > 1 and 2 * cost > blocks) or any(
                    (i0 * row) % size or ((i1 - i0) * row) % size for _, i0, i1 in targets):
                return False
            for dst, i0, i1 in targets:
                n = (i1 - i0) * row
                got = getitem(payload.ctypes.data, i0 * row // size, n // size, dst.ctypes.data) if n else 0
                if got != n:
                    raise ValueError(f"blosc_getitem returned {got} of {n} bytes")
        except Exception as e:  # noqa: BLE001 - named by the caller
            raise ChunkDecodeError(path, e) from e
        return True

    def _cached(self, c: int):
        with self._cache_lock:
            tmp = self._cache.get(c)
            if tmp is not None:
                self._cache.move_to_end(c)
            return tmp

    def _remember(self, c: int, tmp: np.ndarray) -> None:
        keep = max(2, PARTIAL_CACHE_BYTES // max(1, tmp.nbytes))
        with self._cache_lock:
            self._cache[c] = tmp
            while len(self._cache) > keep:
                self._cache.popitem(last=False)


_local = threading.local()


def _thread_chunk(rows: int, tail: tuple, dtype) -> np.ndarray:
    """This thread's array of one chunk (kept per shape and dtype up to :data:`THREAD_CHUNK_BYTES`,
    reused by every chunk it decodes; a larger one is fresh each time)."""
    arrays = _local.__dict__.setdefault("chunks", {})
    key = (rows, tail, np.dtype(dtype))
    a = arrays.get(key)
    if a is None:
        a = np.empty((rows, *tail), dtype=dtype)
        if a.nbytes <= THREAD_CHUNK_BYTES:
            arrays[key] = a
    return a


def plan(parts) -> list:
    """Decode jobs for ``[(LocalChunks, out, starts, stops)]`` (ranges packed one after another in each
    ``out``): one job per whole chunk, one per chunk read in part (however many ranges touch it)."""
    jobs: list = []
    partial: dict = {}
    for direct, out, starts, stops in parts:
        o = 0
        for a, b in zip(np.asarray(starts).tolist(), np.asarray(stops).tolist()):
            jobs += direct.jobs(out[o:o + b - a], a, b, partial)
            o += b - a
    return jobs + [(d._partials, c, targets) for d, c, targets in partial.values()]
