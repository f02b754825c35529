"""Model registry (timm-like): adding a model is one module plus one catalog YAML.

>>> @zoo.register_model("senmo")
... class SeNMo(zoo.Estimator): ...
>>> zoo.list_models()                  # architectures: ['senmo', ...]
>>> zoo.list_models(pretrained=True)   # pretrained checkpoints in catalog/models/
>>> zoo.create_model("senmo", hidden=(256, 64))
"""
from __future__ import annotations

import fnmatch
import importlib

from omicsdata.catalog import unknown_message
from omicsdata.errors import UnknownDatasetError

_MODELS: dict[str, type] = {}
# built-in model modules, imported lazily on the first registry lookup
_BUILTIN_MODULES = ("zoo.models.senmo",)
_EXTRA_MODULES = ("zoo.models.tosg",)  # written by other engineers; imported if present


def register_model(name: str):
    """Class decorator: register an :class:`zoo.Estimator` subclass under ``name``.

    The name is the ``model_type`` written to ``config.json``; loading a
    checkpoint looks the class up here (no code is loaded from the checkpoint).
    """
    def deco(cls):
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name '{name}' is already registered by {_MODELS[name].__qualname__}")
        cls.model_type = name
        _MODELS[name] = cls
        return cls
    return deco


def _import_builtins() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    for mod in _EXTRA_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def list_models(filter: str = "*", pretrained: bool = False) -> list[str]:
    """Registered architectures matching the glob ``filter``; ``pretrained=True``: catalog checkpoints."""
    if pretrained:
        from .hub import model_entries
        names = list(model_entries())
    else:
        _import_builtins()
        names = list(_MODELS)
    return sorted(n for n in names if fnmatch.fnmatch(n, filter))


def get_model_class(name: str) -> type:
    """The estimator class registered as ``name``."""
    _import_builtins()
    if name not in _MODELS:
        raise UnknownDatasetError(unknown_message("model architecture", name, list(_MODELS)))
    return _MODELS[name]


def create_model(name: str, **params):
    """An unfitted estimator of architecture ``name`` with ``params``."""
    return get_model_class(name)(**params)
