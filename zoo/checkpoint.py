"""Checkpoint format: a folder of data, never pickles.

::

    config.json        {"format": "zoo-checkpoint", "format_version", "model_type", "params",
                        "zoo_version", ...est.checkpoint_config()}
    model.safetensors  the torch module's tensors
    schema.json        per modality: feature names in order, fitted preprocessing; the tasks
                       with their label encoders; survival: the baseline step functions only
                       (no training times or events)
    README.md          model card (:mod:`zoo.model_card`)

This layer knows the files and nothing of an estimator's insides: it writes
what ``est.checkpoint_state()`` / ``est.checkpoint_config()`` return and gives
the files back through ``est.restore_checkpoint(schema, tensors)`` on an
estimator built as ``cls(**params)``, ``cls`` looked up in the registry by
``model_type`` - no code from the checkpoint runs. Writes go to a temporary
folder renamed into place. Fetching from the Hub or a catalog is
:mod:`zoo.pretrained`'s job.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from omicsdata._version import __version__
from omicsdata.errors import CorruptStoreError, SchemaMismatchError
from omicsdata.paths import atomic_path

from .model_card import model_card
from .registry import get_model_class

CONFIG, WEIGHTS, SCHEMA, CARD = "config.json", "model.safetensors", "schema.json", "README.md"
FILES = (CONFIG, WEIGHTS, SCHEMA, CARD)
FORMAT = "zoo-checkpoint"
FORMAT_VERSION = 1


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def save(est, path, license: str | None = None, **card) -> str:
    """Write fitted ``est`` as a checkpoint folder at ``path`` (replacing one that is there).

    ``license`` and ``card`` (``title``, ``description``) go to the model card.
    """
    from safetensors.torch import save_file

    schema, tensors = est.checkpoint_state()
    notes = getattr(est, "card_notes", None)  # a model's own card text, e.g. what training data it keeps
    if callable(notes):
        card = dict(card, description=" ".join(x for x in (card.get("description"), notes()) if x))
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_type": est.model_type,
              "zoo_version": __version__, "params": _jsonable(est.get_params(deep=False)),
              **_jsonable(est.checkpoint_config())}
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        (tmp / SCHEMA).write_text(json.dumps(_jsonable(schema)))
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt", "model_type": str(est.model_type)})
        (tmp / CARD).write_text(model_card(est, schema, license, card))
    return str(path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptStoreError(f"{path.parent}: not a zoo checkpoint (no {path.name})") from None
    except json.JSONDecodeError as e:
        raise CorruptStoreError(f"{path}: not valid JSON ({e})") from None


def load_dir(path, expected_cls=None, device: str | None = None):
    """Build the estimator saved in checkpoint folder ``path`` (no code from it runs).

    The class is looked up in the registry by ``config.json``'s ``model_type``
    and must be a subclass of ``expected_cls`` when given.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config = _read_json(path / CONFIG)
    if config.get("format") != FORMAT:
        raise SchemaMismatchError(f"{path / CONFIG}: field 'format' is {config.get('format')!r}, expected '{FORMAT}'")
    cls = get_model_class(config.get("model_type", ""))
    if expected_cls is not None and not issubclass(cls, expected_cls):
        raise SchemaMismatchError(f"{path / CONFIG}: model_type '{config['model_type']}' is a {cls.__name__}, "
                                  f"not a {expected_cls.__name__}; use zoo.Estimator.from_pretrained")
    params = dict(config.get("params", {}))
    if device is not None:
        params["device"] = device
    try:
        est = cls(**params)
    except TypeError as e:
        raise SchemaMismatchError(f"{path / CONFIG}: field 'params' does not fit {cls.__name__}: {e}") from None
    schema = _read_json(path / SCHEMA)
    try:
        tensors = load_file(str(path / WEIGHTS))
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: not a zoo checkpoint (no {WEIGHTS})") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptStoreError(f"{path / WEIGHTS}: cannot read safetensors ({e})") from None
    try:
        est.restore_checkpoint(schema, tensors)
    except SchemaMismatchError as e:
        raise SchemaMismatchError(f"{path}: {e}") from None
    est.checkpoint_path_ = str(path)
    return est
