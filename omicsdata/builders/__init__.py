"""Builders: the registry of functions that turn a dataset's raw files into a MuData.

Each dataset's builder lives in its folder, ``omicsdata/datasets/<name>/builder.py``
(user and plug-in builders: :mod:`omicsdata.builders.discovery`); this package keeps
what they share: :func:`register`, :class:`BuildResult`, :func:`get_builder`,
:func:`register_download` and helpers such as :mod:`omicsdata.builders._text_source`.
A builder is a function registered under the name a catalog entry's
``builder`` field uses::

    @register("demo-pancancer")
    def build(card, workdir, **options) -> BuildResult: ...

It receives the validated catalog card, a scratch folder, and the user's
builder options (``od.build(name, **options)``). It returns a
:class:`BuildResult`; the framework then assigns splits (if the builder has
not), writes the store atomically and records the manifest.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ..errors import BuildError

_REGISTRY: dict[str, Callable] = {}


@dataclasses.dataclass
class BuildResult:
    """What a builder hands back.

    mdata: MuData with aligned rows (every modality has all samples).
    report: free-form build report (counts, dropped samples and why) kept in the manifest.
    tables: optional Parquet tables (name -> DataFrame / pyarrow Table / folder).
    extra: builder metadata kept in the manifest (fitted transforms, graph info).
    """

    mdata: Any
    report: dict = dataclasses.field(default_factory=dict)
    tables: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)
    feature_kinds: dict = dataclasses.field(default_factory=dict)


def register(name: str):
    """Decorator: register a builder function under ``name``."""

    def deco(fn):
        _REGISTRY[name] = fn
        return fn

    return deco


def _discover(name: str | None = None, registry: dict | None = None) -> None:
    from .discovery import discover

    discover(name, registered=lambda: registry is not None and name in registry)


def get_builder(name: str) -> Callable:
    """The builder registered as ``name``, importing builder modules on first use."""
    if name not in _REGISTRY:
        _discover(name, _REGISTRY)
    if name not in _REGISTRY:
        raise BuildError(f"no builder named '{name}' (known: {', '.join(sorted(_REGISTRY)) or 'none'})")
    return _REGISTRY[name]


# Optional download hook: a builder whose raw files can be fetched ahead of
# the build (``omicsdata download NAME``) registers a function
# ``download(card, **options) -> list[pathlib.Path]`` that fetches them into
# the raw cache (omicsdata.paths.raw_dir) and returns their paths.
_DOWNLOADERS: dict[str, Callable] = {}


def register_download(name: str):
    """Decorator: register the raw-file download hook of builder ``name``."""

    def deco(fn):
        _DOWNLOADERS[name] = fn
        return fn

    return deco


def get_downloader(name: str) -> Callable | None:
    """The download hook of builder ``name``, or None if it has nothing to download."""
    if name not in _DOWNLOADERS:
        _discover(name, _DOWNLOADERS)
    return _DOWNLOADERS.get(name)
