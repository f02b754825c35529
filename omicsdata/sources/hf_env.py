"""Hub settings read at call time (endpoint, offline switches, cache, token) and the reachability probe.

Part of :mod:`omicsdata.sources.hf` (which re-exports these names).
``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and the cache location
once, at import time; these functions read them now, so they can change in-process.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import offline as _od_offline

PROBE_TIMEOUT = 3.0  # seconds for the one reachability check of the endpoint
_TRUE = {"1", "on", "yes", "true"}


def endpoint() -> str:
    """``$HF_ENDPOINT`` (read now), else the public Hub."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants._HF_DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """True when ``$HF_HUB_OFFLINE``, ``$TRANSFORMERS_OFFLINE`` or ``$OMICSDATA_OFFLINE`` is true."""
    v = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return v.strip().lower() in _TRUE or _od_offline.offline()


def _offline_why() -> str:
    return "offline mode (OMICSDATA_OFFLINE) is on" if _od_offline.offline() else "offline mode (HF_HUB_OFFLINE) is on"


def unreachable() -> str | None:
    """Why the endpoint cannot be reached (one TCP connect, read now), or None when it answers.

    Behind a proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``) nothing is probed (None).
    """
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(k) or os.environ.get(k.lower()) for k in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")):
        return None
    u = urlsplit(endpoint())
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((u.hostname, port), timeout=PROBE_TIMEOUT).close()
    except OSError as e:
        return f"the Hub at {endpoint()} cannot be reached ({e})"
    return None


def _unreachable_hint() -> str:
    return ("; set HF_HUB_OFFLINE=1 (or OMICSDATA_OFFLINE=1) to work from the cache only, "
            "or check HF_ENDPOINT and the network")


def cache_dir() -> Path:
    """The Hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else the library default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expandvars(os.environ["HF_HUB_CACHE"])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def _token():
    # None = huggingface_hub's own lookup ($HF_TOKEN or the saved token).
    return os.environ.get("HF_TOKEN") or None
