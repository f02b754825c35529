"""Convert the SeNMo authors' torch weights into a zoo checkpoint, locally.

The authors publish one ``.pt`` file per cross-validation fold: a dict with
``model_state_dict`` (keys possibly prefixed ``module.`` by DataParallel)
laid out as ``encoder.<i>.0.{weight,bias}`` (Linear of block ``i``),
``classifier.0.{weight,bias}`` (risk head) and optionally the buffers
``output_range`` / ``output_shift`` (sigmoid-bounded risk). The file is read
with ``torch.load(weights_only=True)``: nothing is unpickled beyond tensors
and plain containers; a file that needs more is refused with a clear error.

Their licence forbids sharing derivatives: the converted checkpoint is
written to the local cache and :meth:`zoo.Estimator.push_to_hub` refuses it.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from omicsdata.errors import FormatError, SchemaMismatchError

_BLOCK = re.compile(r"^encoder\.(\d+)\.0\.(weight|bias)$")


def load_upstream_state(path) -> dict[str, torch.Tensor]:
    """The authors' state dict from a ``.pt`` file (``module.`` prefixes stripped), tensors only."""
    path = Path(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except Exception as e:  # pickle.UnpicklingError and friends: weights_only refused the file
        raise FormatError(path, "refused by torch.load(weights_only=True): the file holds objects other than "
                                f"tensors and plain containers, which zoo will not unpickle ({type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FormatError(path, "expected a dict with 'model_state_dict' (or a state dict) of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def infer_architecture(state: dict, where="weights") -> dict:
    """``{"in_dim", "hidden", "bounded_risk"}`` from the authors' key layout."""
    blocks = {}
    for k, v in state.items():
        m = _BLOCK.match(k)
        if m and m.group(2) == "weight":
            blocks[int(m.group(1))] = tuple(v.shape)
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise FormatError(where, f"no contiguous encoder.<i>.0.weight blocks (keys: {sorted(state)[:6]}...)")
    if "classifier.0.weight" not in state:
        raise FormatError(where, "missing 'classifier.0.weight' (the risk head)")
    if state["classifier.0.weight"].shape[0] != 1:
        raise FormatError(where, f"risk head has {state['classifier.0.weight'].shape[0]} outputs, expected 1")
    hidden = [blocks[i][0] for i in range(len(blocks))]
    for i in range(1, len(blocks)):
        if blocks[i][1] != hidden[i - 1]:
            raise FormatError(where, f"encoder.{i}.0.weight takes {blocks[i][1]} inputs, block {i - 1} gives {hidden[i - 1]}")
    return {"in_dim": blocks[0][1], "hidden": hidden, "bounded_risk": "output_range" in state}


def read_features_file(path) -> dict[str, list[str]]:
    """Features in input order: one per line, ``feature`` or ``modality<TAB>feature``."""
    out: dict[str, list[str]] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        mod, _, feat = line.partition("\t") if "\t" in line else ("omics", "", line)
        out.setdefault(mod.strip(), []).append(feat.strip())
    return out


def convert(path, out_dir, features: dict | list | None = None, activation: str = "elu",
            source: dict | None = None, license: str | None = None):
    """Convert one authors' ``.pt`` into a zoo checkpoint at ``out_dir``; returns the estimator.

    ``features``: ``{modality: [names]}`` in the authors' input order (or a
    list for one modality ``omics``); default ``f0..fN``. Preprocessing is
    the identity: inputs must be preprocessed as the authors did.
    """
    from .checkpoint import save
    from .data import Preprocessor
    from .models.senmo import SeNMo

    state = load_upstream_state(path)
    arch = infer_architecture(state, str(path))
    if features is None:
        features = {"omics": [f"f{i}" for i in range(arch["in_dim"])]}
    elif isinstance(features, (list, tuple)):
        features = {"omics": list(features)}
    n = sum(len(v) for v in features.values())
    if n != arch["in_dim"]:
        raise SchemaMismatchError(f"{path}: the first layer takes {arch['in_dim']} inputs but {n} feature names were given")
    est = SeNMo(hidden=arch["hidden"], activation=activation, use_masks=False, bounded_risk=arch["bounded_risk"],
                label_col=None, progress=False)
    mods = {m: {"features": list(f), "transform": "identity", "mean": [0.0] * len(f), "scale": [1.0] * len(f),
                "fill": "train_mean", "required": True} for m, f in features.items()}
    est.schema_ = {"modalities": mods, "tasks": {"survival": {"time_col": "os_time", "event_col": "os_event"}},
                   "data": {"dataset": "gdc-pancancer (authors' data)", "dataset_version": None, "split": "authors' fold",
                            "n_train": None, "source": source or {"file": str(path)}, "redistributable": False}}
    est.preprocessor_ = Preprocessor.from_json(mods)
    module = est.build_module()
    ours = module.state_dict()
    mapped = {k: v for k, v in state.items() if k in ours}
    extra = sorted(set(state) - set(ours))
    missing = sorted(set(ours) - set(mapped))
    if extra or missing:
        raise FormatError(path, f"keys do not map onto SeNMo: unexpected {extra[:5]}, missing {missing[:5]}")
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(ours[k].shape):
            raise FormatError(path, f"tensor '{k}' has shape {tuple(v.shape)}, expected {tuple(ours[k].shape)}")
    module.load_state_dict({k: v.to(ours[k].dtype) for k, v in mapped.items()}, strict=True)
    est.module_ = module.eval()
    est.metrics_ = {}
    save(est, out_dir, license=license or "CC-BY-NC-ND-4.0",
         title="SeNMo (authors' weights, converted locally - do not redistribute)",
         description="Converted from the authors' published weights by zoo.convert_senmo. "
                     "Their licence forbids sharing derivatives: keep this folder local.")
    return est
