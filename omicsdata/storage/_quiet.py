"""Silence the Future/User warnings anndata and zarr emit while reading or writing a store."""
from __future__ import annotations

import contextlib
import warnings


@contextlib.contextmanager
def quiet():
    """A context in which FutureWarning and UserWarning are ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        yield
