"""anndata/mudata settings the toolkit needs, set in a context and restored: no call changes a global.

* :func:`mudata_no_pull`: ``mudata`` option ``pull_on_update=False`` (MuData's
  announced default) while MuData objects are made, so modality ``obs``
  columns are never copied into the global ``obs`` with a ``<modality>:`` prefix;
* :func:`zarr_v3`: ``anndata.settings.zarr_write_format = 3`` while a store is written;
* :func:`new_mudata`: a MuData of ``mods`` with the given global ``obs``, made under :func:`mudata_no_pull`.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def mudata_no_pull():
    """A context with ``mudata.set_options(pull_on_update=False)``; the caller's value is restored after."""
    import mudata as md

    with md.set_options(pull_on_update=False):
        yield


@contextlib.contextmanager
def zarr_v3():
    """A context in which anndata writes Zarr format 3; the caller's ``zarr_write_format`` is restored after."""
    import anndata as ad

    with ad.settings.override(zarr_write_format=3):
        yield


def new_mudata(mods, obs=None, **kwargs):
    """``mudata.MuData(mods, **kwargs)`` made without pulling modality columns; ``obs`` (a DataFrame
    indexed like the modalities' union, reordered to the MuData's rows) becomes the global ``obs``."""
    import mudata as md

    with mudata_no_pull():
        mdata = md.MuData(mods, **kwargs)
        if obs is not None:
            mdata.obs = obs if obs.index.equals(mdata.obs_names) else obs.loc[mdata.obs_names]
    return mdata
