"""c-blosc's partial decode, bound from the library numcodecs ships.

:func:`blosc_getitem` decompresses only the Blosc blocks holding a range of
a chunk's items (:meth:`omicsdata.storage.chunks.LocalChunks._decode_parts`
uses it for chunks a read wants only part of). numcodecs 0.16 removed its
wrapper (``decode_partial``), so the C function is bound with ctypes: the
one piece of decoding written by hand here.
"""
from __future__ import annotations


def is_blosc(decoder) -> bool:
    """Whether ``decoder`` is numcodecs' own Blosc codec (the library :func:`blosc_getitem` binds)."""
    return type(decoder).__name__ == "Blosc" and type(decoder).__module__.startswith("numcodecs")


_GETITEM: list = []


def blosc_getitem():
    """c-blosc's ``blosc_getitem(src, start, nitems, dest)`` from the library numcodecs ships, or None.

    numcodecs 0.16 no longer wraps it (``decode_partial`` was removed), so it
    is bound with ctypes (which releases the GIL during the call); it
    decompresses only the Blosc blocks holding items ``[start, start + nitems)``.
    """
    if not _GETITEM:
        fn = None
        try:
            import ctypes

            from numcodecs import blosc

            if str(blosc.VERSION_STRING).startswith("1."):
                fn = ctypes.CDLL(blosc.__file__).blosc_getitem
                fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
                fn.restype = ctypes.c_int
        except (ImportError, OSError, AttributeError):  # another build: whole chunks are decoded
            fn = None
        _GETITEM.append(fn)
    return _GETITEM[0]

