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
folder renamed into place; :func:`save` replaces only a zoo checkpoint (or an
empty folder) and refuses a folder holding anything else, so a user's files are
never deleted. Fetching from the Hub or a catalog is :mod:`zoo.pretrained`'s job.

Loading checks before anything is built: ``config.json`` / ``schema.json`` must
be JSON objects (a pickle is named as such and never unpickled); size-like
hyper-parameters (``hidden``, ``*_dim``, ``*_size``, ``width``, ``layers``...)
must be numbers in ``[0, MAX_SIZE]``, so an absurd config cannot try to allocate
petabytes; a schema missing keys is a :class:`SchemaMismatchError` naming the
file and field.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from omicsdata._version import __version__
from omicsdata.errors import CorruptStoreError, SchemaMismatchError, StoreError
from omicsdata.jsonutil import jsonable as _jsonable
from omicsdata.paths import atomic_path

from .model_card import model_card
from .registry import get_model_class

CONFIG, WEIGHTS, SCHEMA, CARD = "config.json", "model.safetensors", "schema.json", "README.md"
FILES = (CONFIG, WEIGHTS, SCHEMA, CARD)
FORMAT = "zoo-checkpoint"
FORMAT_VERSION = 1
#: largest value a size-like hyper-parameter may take (16.7 M units per layer)
MAX_SIZE = 1 << 24
_SIZE_KEY = re.compile(r"hidden|dim|width|units|channels|embed|heads|layers|latent|size", re.IGNORECASE)


class CheckpointExistsError(StoreError):
    """``save_pretrained`` onto a path that holds something other than a zoo checkpoint."""


def check_target(path: Path) -> None:
    """Raise :class:`CheckpointExistsError` unless ``path`` is absent, an empty folder, or a zoo
    checkpoint folder holding only checkpoint files (nothing else would be deleted by replacing it)."""
    if not (path.exists() or path.is_symlink()):
        return
    if not path.is_dir() or path.is_symlink():
        raise CheckpointExistsError(f"{path}: exists and is not a folder; refusing to replace it with a checkpoint")
    entries = sorted(e.name for e in path.iterdir())
    if not entries:
        return
    try:
        is_ckpt = json.loads((path / CONFIG).read_bytes()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError, UnicodeDecodeError):
        is_ckpt = False
    if not is_ckpt:
        raise CheckpointExistsError(
            f"{path}: folder holds files that are not a zoo checkpoint ({', '.join(entries[:5])}"
            f"{', ...' if len(entries) > 5 else ''}); refusing to overwrite it, nothing was deleted. "
            "Save to a new or empty folder")
    extra = [e for e in entries if e not in FILES]
    if extra:
        raise CheckpointExistsError(
            f"{path}: checkpoint folder also holds {', '.join(extra[:5])}; replacing it would delete "
            "them, nothing was deleted. Move them or save to another folder")


def check_sizes(params: dict, where: str) -> None:
    """Raise :class:`SchemaMismatchError` if a size-like hyper-parameter is not a number in ``[0, MAX_SIZE]``."""
    def bad(v) -> bool:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return False
        if isinstance(v, (int, float)):
            return not math.isfinite(v) or v < 0 or v > MAX_SIZE
        return False

    for key, value in params.items():
        if not _SIZE_KEY.search(str(key)):
            continue
        vals = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for v in vals:
            if bad(v):
                raise SchemaMismatchError(f"{where}: field 'params.{key}' has the size {v!r}; sizes must be numbers "
                                          f"from 0 to {MAX_SIZE} (refused before allocating anything)")




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
    check_target(path)
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        (tmp / SCHEMA).write_text(json.dumps(_jsonable(schema)))
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt", "model_type": str(est.model_type)})
        (tmp / CARD).write_text(model_card(est, schema, license, card))
    return str(path)


def read_json(path: Path, kind: str = "zoo checkpoint") -> dict:
    """The JSON object at ``path``; a missing file, a pickle or bad JSON is a clear error naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CorruptStoreError(f"{path.parent}: not a {kind} (no {path.name})") from None
    except OSError as e:
        raise CorruptStoreError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if raw[:1] == b"\x80" or raw[:2] in (b"(d", b"(l", b"cc"):
        raise CorruptStoreError(f"{path}: is a Python pickle, not JSON; pickles are never loaded "
                                "(a zoo checkpoint's config and schema are JSON)")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CorruptStoreError(f"{path}: binary data ({raw[:16]!r}...), not JSON text") from None
    except json.JSONDecodeError as e:
        raise CorruptStoreError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise CorruptStoreError(f"{path}: must hold a JSON object, not {type(doc).__name__}")
    return doc


_read_json = read_json


def read_tensors(path: Path, kind: str = "zoo checkpoint") -> dict:
    """The tensors of the safetensors file at ``path`` (never a pickle); errors name the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CorruptStoreError(f"{path.parent}: not a {kind} (no {path.name})") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptStoreError(f"{path}: cannot read safetensors ({e})") from None


def load_dir(path, expected_cls=None, device: str | None = None):
    """Build the estimator saved in checkpoint folder ``path`` (no code from it runs).

    The class is looked up in the registry by ``config.json``'s ``model_type``
    and must be a subclass of ``expected_cls`` when given.
    """

    path = Path(path)
    config = _read_json(path / CONFIG)
    if config.get("format") != FORMAT:
        raise SchemaMismatchError(f"{path / CONFIG}: field 'format' is {config.get('format')!r}, expected '{FORMAT}'")
    cls = get_model_class(config.get("model_type", ""))
    if expected_cls is not None and not issubclass(cls, expected_cls):
        raise SchemaMismatchError(f"{path / CONFIG}: model_type '{config['model_type']}' is a {cls.__name__}, "
                                  f"not a {expected_cls.__name__}; use zoo.Estimator.from_pretrained")
    if not isinstance(config.get("params", {}), dict):
        raise SchemaMismatchError(f"{path / CONFIG}: field 'params' must be an object")
    params = dict(config.get("params", {}))
    check_sizes(params, str(path / CONFIG))
    if device is not None:
        params["device"] = device
    try:
        est = cls(**params)
    except (TypeError, ValueError) as e:
        raise SchemaMismatchError(f"{path / CONFIG}: field 'params' does not fit {cls.__name__}: {e}") from None
    schema = _read_json(path / SCHEMA)
    tensors = read_tensors(path / WEIGHTS)
    try:
        est.restore_checkpoint(schema, tensors)
    except SchemaMismatchError as e:
        raise SchemaMismatchError(f"{path / (WEIGHTS if 'tensors' in str(e) else SCHEMA)}: {e}") from None
    except KeyError as e:
        raise SchemaMismatchError(f"{path / SCHEMA}: missing field {e} (or {CONFIG} does not match it)") from None
    except (TypeError, ValueError, IndexError, AttributeError) as e:
        raise SchemaMismatchError(f"{path / SCHEMA}: malformed ({type(e).__name__}: {e})") from None
    except (MemoryError, RuntimeError) as e:
        raise SchemaMismatchError(f"{path / CONFIG}: the module it describes cannot be built "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    est.checkpoint_path_ = str(path)
    return est
