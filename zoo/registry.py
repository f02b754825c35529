"""Model registry (timm-like): adding a model is one module in ``zoo/models/``.

>>> @zoo.register_model("senmo")
... class SeNMo(zoo.Estimator): ...
>>> zoo.list_models()                  # architectures: ['senmo', ...]
>>> zoo.list_models(pretrained=True)   # pretrained checkpoints in the model catalog (zoo/catalog/)
>>> zoo.create_model("senmo", hidden=(256, 64))

Model (and converter) modules are found, never listed: on the first lookup
every module of the :mod:`zoo.models` package is imported (``pkgutil``;
names starting with ``_`` are skipped), then every entry point of the group
``zoo.models`` is loaded, so another distribution adds models by declaring
``[project.entry-points."zoo.models"] mymodel = "mypkg.mymodel"``.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata
import pkgutil
import warnings

from omicsdata.catalog import unknown_message
from omicsdata.errors import UnknownDatasetError

from .catalog import model_entries

MODELS_PACKAGE = "zoo.models"
ENTRY_POINT_GROUP = "zoo.models"

_MODELS: dict[str, type] = {}
_discovered = False


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


def builtin_modules() -> list[str]:
    """Dotted names of every public module of the ``zoo.models`` package."""
    pkg = importlib.import_module(MODELS_PACKAGE)
    return [f"{MODELS_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]


def _entry_points():
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def discover(force: bool = False) -> None:
    """Import every model/converter module: ``zoo.models.*`` then the ``zoo.models`` entry points.

    A built-in module that fails to import raises; a third-party entry point
    that fails warns and is skipped, so one broken plug-in does not hide the rest.
    """
    global _discovered
    if _discovered and not force:
        return
    for mod in builtin_modules():
        importlib.import_module(mod)
    for ep in _entry_points():
        try:
            ep.load()
        except Exception as e:  # a plug-in's bug must not break the zoo
            warnings.warn(f"zoo: entry point '{ep.name}' ({ep.value}) of group '{ENTRY_POINT_GROUP}' "
                          f"failed to load: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
    _discovered = True


def list_models(filter: str = "*", pretrained: bool = False, task: str | None = None) -> list[str]:
    """Registered architectures matching the glob ``filter``; ``pretrained=True``: catalog model names.

    ``task`` (e.g. ``"survival"``) keeps the architectures whose ``task_names`` class attribute lists it.
    """
    if pretrained:
        names = list(model_entries())
    else:
        discover()
        names = [n for n, c in _MODELS.items() if task is None or task in tuple(getattr(c, "task_names", ()))]
    return sorted(n for n in names if fnmatch.fnmatch(n, filter))


def get_model_class(name: str) -> type:
    """The estimator class registered as ``name``."""
    discover()
    if name not in _MODELS:
        raise UnknownDatasetError(unknown_message("model architecture", name, list(_MODELS)))
    return _MODELS[name]


def create_model(name: str, **params):
    """An unfitted estimator of architecture ``name`` with ``params``."""
    return get_model_class(name)(**params)
