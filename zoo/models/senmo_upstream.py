"""Convert the SeNMo authors' torch weights into a zoo checkpoint, locally (converter ``senmo-upstream``).

The authors publish one ``.pt`` file per cross-validation fold: a dict with
``model_state_dict`` (keys possibly prefixed ``module.`` by DataParallel)
laid out as ``encoder.<i>.0.{weight,bias}`` (Linear of block ``i``),
``classifier.0.{weight,bias}`` (risk head) and optionally the buffers
``output_range`` / ``output_shift`` (sigmoid-bounded risk). The file is read
with ``torch.load(weights_only=True)``: nothing is unpickled beyond tensors
and plain containers; a file that needs more is refused with a clear error.

Their licence forbids sharing derivatives: the converted checkpoint is
written to the local cache and :meth:`zoo.Estimator.push_to_hub` refuses it.

Catalog options (``convert: {name: senmo-upstream, ...}``): ``fold`` (which
fold's file, default 1), ``activation`` (``elu``/``selu``), ``hidden``
(checked against the weights), ``features_file`` (a repo file listing the
input features in order).
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import torch

from omicsdata.errors import FormatError, SchemaMismatchError

from ..checkpoint import save
from ..converters import register_converter
from ..preprocess import identity_schema
from .senmo import SeNMo

_BLOCK = re.compile(r"^encoder\.(\d+)\.0\.(weight|bias)$")

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fold": {"type": "integer", "minimum": 1, "description": "which fold's file to convert (files[].fold)"},
        "activation": {"enum": ["selu", "elu"]},
        "hidden": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "features_file": {"type": "string", "description": "repo file listing the input features in order "
                                                          "(one per line, optionally modality<TAB>feature)"},
    },
}


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
            raise FormatError(where, f"encoder.{i}.0.weight takes {blocks[i][1]} inputs, "
                                     f"block {i - 1} gives {hidden[i - 1]}")
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


def _feature_names(features, in_dim: int, where) -> dict[str, list[str]]:
    if features is None:
        features = {"omics": [f"f{i}" for i in range(in_dim)]}
    elif isinstance(features, (list, tuple)):
        features = {"omics": list(features)}
    n = sum(len(v) for v in features.values())
    if n != in_dim:
        raise SchemaMismatchError(f"{where}: the first layer takes {in_dim} inputs but {n} feature names were given")
    return features


def _check_keys(state: dict, ours: dict, path) -> None:
    extra = sorted(set(state) - set(ours))
    missing = sorted(set(ours) - set(state))
    if extra or missing:
        raise FormatError(path, f"keys do not map onto SeNMo: unexpected {extra[:5]}, missing {missing[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(ours[k].shape):
            raise FormatError(path, f"tensor '{k}' has shape {tuple(v.shape)}, expected {tuple(ours[k].shape)}")


def convert(path, out_dir, features: dict | list | None = None, activation: str = "elu",
            source: dict | None = None, license: str | None = None, hidden: list[int] | None = None):
    """Convert one authors' ``.pt`` into a zoo checkpoint at ``out_dir``; returns the estimator.

    ``features``: ``{modality: [names]}`` in the authors' input order (or a
    list for one modality ``omics``); default ``f0..fN``. Preprocessing is
    the identity: inputs must be preprocessed as the authors did. ``hidden``,
    when given, must match the layer sizes read from the weights.
    """
    state = load_upstream_state(path)
    arch = infer_architecture(state, str(path))
    if hidden is not None and list(hidden) != arch["hidden"]:
        raise FormatError(path, f"hidden layers are {arch['hidden']}, the catalog entry says {list(hidden)}")
    features = _feature_names(features, arch["in_dim"], path)
    est = SeNMo(hidden=arch["hidden"], activation=activation, use_masks=False, bounded_risk=arch["bounded_risk"],
                label_col=None, progress=False)
    schema = {"modalities": identity_schema(features),
              "tasks": {"survival": {"time_col": "os_time", "event_col": "os_event"}},
              "data": {"dataset": "gdc-pancancer (authors' data)", "dataset_version": None, "split": "authors' fold",
                       "n_train": None, "source": source or {"file": str(path)}, "redistributable": False}}
    est.schema_ = schema  # the module's shapes follow the schema; checked here to name the file on a mismatch
    ours = est.build_module().state_dict()
    _check_keys(state, ours, path)
    est.restore_checkpoint(schema, {k: v.to(ours[k].dtype) for k, v in state.items()})
    save(est, out_dir, license=license or "CC-BY-NC-ND-4.0",
         title="SeNMo (authors' weights, converted locally - do not redistribute)",
         description="Converted from the authors' published weights by the zoo converter 'senmo-upstream'. "
                     "Their licence forbids sharing derivatives: keep this folder local.")
    return est


def _pick_file(source, options: dict, files: list[dict]) -> str:
    fold = int(options.get("fold", 1))
    if not files:
        pts = sorted(p for p in source.list_files() if fnmatch.fnmatch(p, "*.pt") or fnmatch.fnmatch(p, "*.pth"))
        if not pts:
            raise SchemaMismatchError(f"model '{source.name}': source {source.describe()} has no .pt files")
        files = [{"path": p, "fold": i + 1} for i, p in enumerate(pts)]
    pick = [f for f in files if f.get("fold", 1) == fold]
    if not pick:
        raise SchemaMismatchError(f"model '{source.name}': no file for fold {fold} "
                                  f"(folds: {[f.get('fold') for f in files]})")
    return pick[0]["path"]


@register_converter("senmo-upstream", options_schema=OPTIONS_SCHEMA,
                    variant=lambda options: f"fold-{int(options.get('fold', 1))}")
def convert_entry(source, out_dir, options: dict, entry: dict) -> None:
    """Catalog converter: fetch the fold's ``.pt`` (and features file) from ``source``, convert into ``out_dir``."""
    files = [f for f in (entry.get("files") or []) if f["path"] != options.get("features_file")]
    pt_path = _pick_file(source, options, files)
    pt = source.fetch(pt_path)
    features = read_features_file(source.fetch(options["features_file"])) if options.get("features_file") else None
    convert(pt, out_dir, features=features, activation=options.get("activation", "elu"),
            source={**source.describe(), "file": pt_path, "fold": int(options.get("fold", 1))},
            license=entry.get("license"), hidden=options.get("hidden"))
