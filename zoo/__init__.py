"""zoo: pretrained and trainable models over omicsdata datasets.

>>> import zoo
>>> zoo.list_models()                                  # architectures
>>> model = zoo.SeNMo(random_state=0).fit("demo-pancancer", split="train")
>>> model.score("demo-pancancer", split="test")        # C-index
>>> model.save_pretrained("ckpt/"); zoo.SeNMo.from_pretrained("ckpt/")
>>> model = zoo.load("senmo-pancancer")                # catalog entry -> fetched (and converted) checkpoint

Persistence is three layers that only point down: :mod:`zoo.checkpoint` (the
folder format), :mod:`zoo.hub` (transfer), :mod:`zoo.pretrained` (catalog
entry -> estimator, converters from :mod:`zoo.converters`).
"""
from __future__ import annotations

from omicsdata._version import __version__  # single source: omicsdata/_version.py

from . import losses, metrics  # noqa: E402
from .converters import list_converters, register_converter  # noqa: E402
from .estimator import Estimator, NotFittedError  # noqa: E402
from .models.senmo import SeNMo  # noqa: E402
from .registry import create_model, get_model_class, list_models, register_model  # noqa: E402


def load(name: str, revision: str | None = None, **kw):
    """The pretrained estimator of catalog model ``name`` (:mod:`zoo.catalog`), verified."""
    from .pretrained import load as _load

    return _load(name, revision=revision, **kw)


def __getattr__(name):
    import importlib

    if name in {"explain", "checkpoint", "hub", "pretrained", "catalog", "model_card", "align", "convert_senmo",
                "cli", "data", "preprocess"}:
        return importlib.import_module(f".{name}", __name__)
    if name == "SparseAutoencoder":
        return importlib.import_module(".sae", __name__).SparseAutoencoder
    if name[:1].isupper():  # a registered model class by its class name: zoo.MOGONET, zoo.CellGAT, ...
        from .registry import get_model_class, list_models

        for model_name in list_models():
            cls = get_model_class(model_name)
            if cls.__name__ == name:
                return cls
    raise AttributeError(f"module 'zoo' has no attribute '{name}'")
