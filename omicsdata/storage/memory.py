"""Where a read's decoded rows land: buffer-sized arrays mapped without numpy's huge-page advice, and
:class:`Scatter`, rows written to places of a larger array instead of one after another.

numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``)
on every array of 4 MiB or more. Where the kernel's THP ``defrag`` setting
is ``madvise`` (a common default), the first touch of such an array then
stalls on memory compaction: on this project's 2-core test machine a 64 MB
array took 180-240 ms to fill the first time, against 35-50 ms for the same
bytes mapped without the advice (the second fill: 4-5 ms either way).
A stream's read scratch and gathered buffers are filled once per buffer
and kept, so they are mapped directly (private anonymous memory; the
kernel's own THP policy still applies) and the first epoch does not pay
the stalls. Small arrays and systems without ``mmap`` flags use ``np.empty``.
"""
from __future__ import annotations

import mmap

import numpy as np

#: Arrays smaller than this come from ``np.empty`` (numpy advises huge pages only from 4 MiB).
MAPPED_MIN_BYTES = 4 << 20


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype``; from a private anonymous mapping when large.

    The array does not own its memory (its ``base`` is the mapping); the
    memory goes back to the system when the array and its views are gone.
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    flags = getattr(mmap, "MAP_PRIVATE", None), getattr(mmap, "MAP_ANONYMOUS", None)
    if nbytes < MAPPED_MIN_BYTES or None in flags:
        return np.empty(shape, dtype=dtype)
    buf = mmap.mmap(-1, nbytes, flags=flags[0] | flags[1])
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


class Scatter:
    """A read's destination whose row ``i`` lands at row ``dest[i]`` of ``out`` (``-1``: not wanted).

    A reader given one (:meth:`~omicsdata.storage.readers.DenseZarrReader.read`'s
    ``into``) decodes each chunk into a chunk-sized per-thread array (a few
    MB, held in the CPU's last-level cache) and writes its rows straight to their places (numpy's row
    assignment, which releases the GIL): a shuffled buffer gathered while it
    is decoded, with no buffer-sized intermediate and no second pass over it.
    Slicing gives the destination of a run of the read's rows.
    """

    __slots__ = ("out", "dest")

    def __init__(self, out: np.ndarray, dest: np.ndarray):
        self.out, self.dest = out, dest

    def __getitem__(self, s: slice) -> Scatter:
        return Scatter(self.out, self.dest[s])

    def __len__(self) -> int:
        return len(self.dest)

    def put(self, rows: np.ndarray) -> None:
        """Write ``rows`` (one per entry of ``dest``) to their places in ``out``."""
        d = self.dest
        if len(d) and int(d.min()) < 0:
            keep = d >= 0
            self.out[d[keep]] = rows[keep]
        else:
            self.out[d] = rows
