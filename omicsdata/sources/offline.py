"""``OMICSDATA_OFFLINE``: one switch that keeps every source (hf, http, gdc) off the network.

With ``OMICSDATA_OFFLINE`` set to a true value (``1``, ``on``, ``yes``, ``true``)
files already in the local caches are still served (verified as usual);
anything that would need the network raises :class:`OfflineError` naming what
was asked for and the variable to unset. The Hub source also honours
huggingface_hub's own ``HF_HUB_OFFLINE``.
"""
from __future__ import annotations

import os

from ..errors import DownloadError

ENV = "OMICSDATA_OFFLINE"
_TRUE = {"1", "on", "yes", "true"}


class OfflineError(DownloadError):
    """Offline mode is on (or the server cannot be reached) and what was asked for is not cached."""


def offline() -> bool:
    """True when ``$OMICSDATA_OFFLINE`` (read now) is set to a true value."""
    return (os.environ.get(ENV) or "").strip().lower() in _TRUE


def refuse_if_offline(what: str) -> None:
    """Raise :class:`OfflineError` for ``what`` (a file or request) when ``OMICSDATA_OFFLINE`` is on."""
    if offline():
        raise OfflineError(f"{what}: offline mode ({ENV}) is on and it is not in the local cache; "
                           f"unset {ENV} to download it")
