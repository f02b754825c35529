"""Converter registry: upstream weight formats -> zoo checkpoints, by name.

A model catalog entry with ``convert: {name: <converter>, ...options}`` is
turned into a zoo checkpoint by the converter registered under that name. A
converter lives in the module beside its model (``zoo/models/<x>_upstream.py``)
and is found by the same discovery as models (:func:`zoo.registry.discover`):

>>> @zoo.register_converter("senmo-upstream", options_schema={...}, variant=lambda o: f"fold-{o.get('fold', 1)}")
... def convert_senmo(source, out_dir, options, entry):
...     pt = source.fetch("checkpoints/fold_1.pt")       # sha256-checked when the entry pins it
...     ...                                               # build the estimator, save it at out_dir

The function receives ``source`` (a :class:`zoo.pretrained.Source`: ``fetch``,
``list_files``, ``describe``), the folder to write the checkpoint to (it does
not exist yet; it is renamed into the cache when the function returns), the
entry's ``convert`` options (without ``name``) and the whole entry. It writes
a zoo checkpoint (``zoo.checkpoint.save``) and returns nothing.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jsonschema

from omicsdata.catalog import unknown_message
from omicsdata.errors import CatalogError, UnknownDatasetError

from .registry import discover


def _default_variant(options: dict) -> str:
    return "converted"


@dataclasses.dataclass(frozen=True)
class Converter:
    """A registered converter: the function, its options' JSON schema, its cache sub-folder name."""

    name: str
    fn: Callable
    options_schema: dict | None = None
    variant: Callable[[dict], str] = _default_variant

    def check_options(self, options: dict, where: str) -> None:
        """Validate ``options`` against the converter's schema; the error names ``where`` and the field."""
        if self.options_schema is None:
            return
        errors = sorted(jsonschema.Draft202012Validator(self.options_schema).iter_errors(options),
                        key=lambda e: list(e.absolute_path))
        if errors:
            field = ".".join(str(p) for p in errors[0].absolute_path) or "<root>"
            raise CatalogError(f"{where}: convert option '{field}' ({self.name}): {errors[0].message}")

    def __call__(self, source, out_dir, options: dict, entry: dict) -> None:
        return self.fn(source, out_dir, options, entry)


_CONVERTERS: dict[str, Converter] = {}


def register_converter(name: str, options_schema: dict | None = None,
                       variant: Callable[[dict], str] | None = None):
    """Function decorator: register an upstream-format converter under ``name``.

    ``options_schema``: JSON schema of the entry's ``convert`` options (``name`` removed);
    ``variant(options)``: the cache sub-folder of one conversion (e.g. ``"fold-1"``).
    """
    def deco(fn):
        if name in _CONVERTERS and _CONVERTERS[name].fn is not fn:
            raise ValueError(f"converter name '{name}' is already registered by {_CONVERTERS[name].fn.__qualname__}")
        _CONVERTERS[name] = Converter(name, fn, options_schema, variant or _default_variant)
        return fn
    return deco


def get_converter(name: str) -> Converter:
    """The converter registered as ``name`` (model modules are discovered first)."""
    discover()
    if name not in _CONVERTERS:
        raise UnknownDatasetError(unknown_message("converter", name, list(_CONVERTERS)))
    return _CONVERTERS[name]


def list_converters() -> list[str]:
    """Names of every registered converter."""
    discover()
    return sorted(_CONVERTERS)
