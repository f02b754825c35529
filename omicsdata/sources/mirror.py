"""``$OMICSDATA_HTTP_MIRROR``: URL prefix rewriting for every download (see :mod:`omicsdata.sources.http`)."""
from __future__ import annotations

import os

from ..errors import CatalogError

MIRROR_ENV = "OMICSDATA_HTTP_MIRROR"


def mirror_rules(value: str | None = None) -> list[tuple[str, str]]:
    """The ``(upstream_prefix, mirror_prefix)`` pairs of ``$OMICSDATA_HTTP_MIRROR`` (or ``value``).

    Longest upstream prefix first. A malformed entry raises :class:`CatalogError`
    naming the variable and the entry.
    """
    value = os.environ.get(MIRROR_ENV, "") if value is None else value
    rules = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        up, sep, mirror = item.partition("=")
        up, mirror = up.strip(), mirror.strip()
        if not sep or not up or not mirror:
            raise CatalogError(f"${MIRROR_ENV}: entry '{item}' is not '<upstream-prefix>=<mirror-prefix>'")
        for what, p in (("upstream prefix", up), ("mirror prefix", mirror)):
            if "://" not in p:
                raise CatalogError(f"${MIRROR_ENV}: entry '{item}': the {what} '{p}' is not a URL (scheme://...)")
        rules.append((up, mirror))
    return sorted(rules, key=lambda r: -len(r[0]))


def mirror_url(url: str, value: str | None = None) -> str:
    """``url`` rewritten by the first matching ``$OMICSDATA_HTTP_MIRROR`` rule (unchanged if none matches)."""
    for up, mirror in mirror_rules(value):
        if url.startswith(up):
            return mirror + url[len(up):]
    return url


def _via(url: str, real: str) -> str:
    return url if real == url else f"{url} (via mirror {real})"
