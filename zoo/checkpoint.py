"""Checkpoints: a folder of data, never pickles.

::

    config.json        {"format": "zoo-checkpoint", "model_type", "params", "zoo_version", ...}
    model.safetensors  the torch module's state dict
    schema.json        per modality: feature names in order, fitted preprocessing
                       (transform, mean, scale, fill), required flag; the tasks with
                       their label encoders (class list); survival baseline hazard
    README.md          model card: data set and version, split, metrics, licence

Loading looks the class up in the registry by ``model_type``, builds it from
the JSON parameters and loads the tensors with ``safetensors`` - no code from
the checkpoint runs. Writes go to a temporary folder renamed into place.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from omicsdata.errors import CorruptStoreError, SchemaMismatchError
from omicsdata.paths import atomic_path

from . import __version__

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


def _card(est, license: str | None, extra: dict) -> str:
    d = est.schema_.get("data", {})
    dataset = d.get("dataset") or "(in-memory data)"
    lic = license or extra.get("license") or _dataset_license(d.get("dataset")) or "other"
    tasks = est.schema_["tasks"]
    lines = ["---", f"license: {lic.lower() if lic else 'other'}", "library_name: omicszoo",
             f"tags: [omicszoo, {est.model_type}, multi-omics]"]
    if d.get("dataset"):
        lines.append(f"datasets: [{d['dataset']}]")
    lines += ["---", "", f"# {extra.get('title') or est.model_type + ' on ' + dataset}", ""]
    if extra.get("description"):
        lines += [extra["description"], ""]
    lines += ["| | |", "| --- | --- |",
              f"| architecture | `{est.model_type}` ({type(est).__name__}) |",
              f"| data set | {dataset} v{d.get('dataset_version') or '?'} |",
              f"| builder options | `{json.dumps(d.get('builder_options'))}` |",
              f"| training split | {d.get('split')} ({d.get('n_train')} samples) |",
              f"| modalities | " + ", ".join(f"{m} ({len(v['features'])})" for m, v in est.schema_["modalities"].items()) + " |",
              f"| tasks | " + ", ".join(tasks) + " |",
              f"| epochs (early stopping) | {d.get('n_epochs')} (best validation score {d.get('best_val_score')}) |",
              f"| licence | {lic} |", ""]
    metrics = getattr(est, "metrics_", {}) or {}
    if metrics:
        lines += ["## Metrics", "", "| split | n | metric | value |", "| --- | --- | --- | --- |"]
        for split, res in metrics.items():
            for k, v in res.items():
                if k in ("split", "n"):
                    continue
                lines.append(f"| {split} | {res.get('n')} | {k} | {v:.4f} |")
        lines.append("")
    lines += ["## Use", "", "```python", "import zoo", "model = zoo.Estimator.from_pretrained(\"<this folder or repo id>\")",
              "risk = model.predict(mdata)   # features are aligned by name to schema.json", "```", "",
              "Sign convention: higher risk = shorter survival.", ""]
    return "\n".join(lines)


def _dataset_license(name):
    if not name:
        return None
    try:
        import omicsdata as od
        return od.info(name).get("license")
    except Exception:
        return None


def save(est, path, license: str | None = None, **card) -> str:
    """Write ``est`` as a checkpoint folder at ``path`` (replacing one that is there)."""
    from safetensors.torch import save_file

    est._check_fitted()
    path = Path(path)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_type": est.model_type,
              "zoo_version": __version__, "params": _jsonable(est.get_params(deep=False)),
              "input_dims": est.input_dims_, "n_classes": est.n_classes_, "survival": est.has_survival_}
    state = {k: v.detach().to("cpu").contiguous() for k, v in est.module_.state_dict().items()}
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        (tmp / SCHEMA).write_text(json.dumps(_jsonable(est.schema_)))
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt", "model_type": str(est.model_type)})
        (tmp / CARD).write_text(_card(est, license, card))
    return str(path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptStoreError(f"{path.parent}: not a zoo checkpoint (no {path.name})") from None
    except json.JSONDecodeError as e:
        raise CorruptStoreError(f"{path}: not valid JSON ({e})") from None


def load_dir(path, expected_cls=None, device: str | None = None):
    """Build the estimator saved in checkpoint folder ``path`` (no code from it runs)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .data import Preprocessor
    from .registry import get_model_class

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
    est.schema_ = _read_json(path / SCHEMA)
    try:
        est.preprocessor_ = Preprocessor.from_json(est.schema_["modalities"])
    except (KeyError, TypeError, AttributeError) as e:
        raise SchemaMismatchError(f"{path / SCHEMA}: field 'modalities' is malformed ({e})") from None
    try:
        state = load_file(str(path / WEIGHTS))
    except FileNotFoundError:
        raise CorruptStoreError(f"{path}: not a zoo checkpoint (no {WEIGHTS})") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptStoreError(f"{path / WEIGHTS}: cannot read safetensors ({e})") from None
    module = est.build_module()
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise SchemaMismatchError(f"{path / WEIGHTS}: tensors do not fit {cls.__name__} built from "
                                  f"{path / CONFIG}: {str(e).splitlines()[0]}") from None
    est.module_ = module.to(est.device_).eval()
    est.metrics_ = {}
    est.checkpoint_path_ = str(path)
    return est


def load_any(name_or_path, revision: str | None = None, expected_cls=None, **kw):
    """A checkpoint folder, a catalog model name, or a Hub repo id (``owner/name``)."""
    p = Path(os.fspath(name_or_path)).expanduser()
    if p.is_dir():
        return load_dir(p, expected_cls=expected_cls, device=kw.get("device"))
    from . import hub

    s = str(name_or_path)
    if s in hub.model_entries():
        return hub.load(s, revision=revision, expected_cls=expected_cls, **kw)
    if s.count("/") == 1 and not s.startswith((".", "/")):
        folder = hub.snapshot_checkpoint(s, revision=revision)
        return load_dir(folder, expected_cls=expected_cls, device=kw.get("device"))
    raise SchemaMismatchError(f"{s}: not a checkpoint folder, a catalog model name or a Hub repo id (owner/name)")
