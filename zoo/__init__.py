"""zoo: pretrained and trainable models over omicsdata datasets.

>>> import zoo
>>> zoo.list_models()                                  # architectures
>>> model = zoo.SeNMo(random_state=0).fit("demo-pancancer", split="train")
>>> model.score("demo-pancancer", split="test")        # C-index
>>> model.save_pretrained("ckpt/"); zoo.SeNMo.from_pretrained("ckpt/")
>>> model = zoo.load("senmo-pancancer")                # catalog checkpoint via huggingface_hub
"""
from __future__ import annotations

__version__ = "0.1.0"

from .estimator import Estimator, NotFittedError  # noqa: E402
from .registry import create_model, get_model_class, list_models, register_model  # noqa: E402
from .models.senmo import SeNMo  # noqa: E402
from . import metrics, losses  # noqa: E402


def load(name: str, revision: str | None = None, **kw):
    """The pretrained estimator of catalog model ``name`` (``catalog/models/NAME.yaml``), verified."""
    from .hub import load as _load

    return _load(name, revision=revision, **kw)


def __getattr__(name):
    import importlib

    if name in {"explain", "checkpoint", "hub", "align", "convert_senmo", "cli", "data"}:
        return importlib.import_module(f".{name}", __name__)
    if name == "TOSGClassifier":
        return getattr(importlib.import_module(".models.tosg", __name__), "TOSGClassifier")
    raise AttributeError(f"module 'zoo' has no attribute '{name}'")
