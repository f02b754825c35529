"""The SeNMo authors' published weights -> a zoo checkpoint, locally (converter ``senmo-upstream``),
and their published configuration (model ``senmo-authors``).

Published layout (repository ``lab-rasool/SeNMo``, ``SeNMo_Training.py``;
weights in the hub repository ``Lab-Rasool/SeNMo``): one file per fold,
``Checkpoint_pancancer_combined_omic_fold{k}_for_test.pt`` (k = 1..10), saved as
``torch.save({'split', 'opt', 'epoch', 'data', 'model_state_dict',
'optimizer_state_dict', 'metrics'}, ..., pickle_protocol=4)``. The state dict
(keys possibly prefixed ``module.``) is a flat ``encoder`` Sequential of
``[Linear, ELU, AlphaDropout]`` x 7 (``encoder.0.weight``, ``encoder.3.weight``,
..., ``encoder.18.weight``), ``classifier.0.*`` and the Parameters
``output_range`` / ``output_shift``. The file is read by
:func:`zoo.models.senmo_safeload.load_checkpoint` (narrow allow-list; nothing
that can run code is unpickled).

The risk is the raw classifier output unless ``act_type: Sigmoid`` is asked
for (their published runs use ``--act_type None``; ``generate_embeddings.py``
uses the raw output). Inputs are the authors' 80,697 features in the order of
their ``combine_features.py``: clinical (4), dnamut (17,301), protein (472),
gene (8,794), methylation (52,396), mirna (1,730); a missing modality is zeros.
Feature names: ``senmo_features.json`` (package data) lists what could be
confirmed; the rest are ``<modality>_<i>``.

Their licence forbids sharing derivatives: the converted checkpoint stays in
the local cache and :meth:`zoo.Estimator.push_to_hub` refuses it.
"""
from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import torch

from omicsdata.errors import FormatError, SchemaMismatchError

from ..checkpoint import save
from ..converters import register_converter
from ..losses import cox_ph_loss
from ..preprocess import identity_schema
from ..registry import register_model
from ..tasks import get_task
from .senmo import SeNMo
from .senmo_net import ACT_TYPES, BLOCK, SeNMoNet
from .senmo_safeload import load_checkpoint

_LINEAR = re.compile(r"^encoder\.(\d+)\.(weight|bias)$")
_FOLD = re.compile(r"fold[_-]?(\d+)", re.IGNORECASE)
FEATURES_FILE = Path(__file__).with_name("senmo_features.json")

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fold": {"type": "integer", "minimum": 1, "description": "which fold's file to convert"},
        "activation": {"enum": ["selu", "elu"]},
        "act_type": {"enum": ["None", "Sigmoid"], "description": "risk output: raw (None, default) or bounded"},
        "hidden": {"type": "array", "items": {"type": "integer", "minimum": 1}},
    },
}


# ------------------------------------------------------------------ the authors' configuration
@register_model("senmo-authors")
class SeNMoAuthors(SeNMo):
    """SeNMo with the authors' published hyper-parameters (``SeNMo_Training.py`` / paper).

    ELU, hidden ``1024-512-256-128-48-48-48``, AlphaDropout 0.1058, Adam lr
    5.8e-4 with weight decay 0.006, batch 256, 100 epochs of linear decay, L1
    3e-4 on ALL parameters, Breslow-tie Cox loss averaged over the batch (the
    sum over events divided by the batch size), no presence flags (a missing
    modality is zeros), ``act_type="None"`` (raw risk, ``output_range`` /
    ``output_shift`` kept as in their module). Any parameter can be overridden.
    """

    def __init__(self, hidden=(1024, 512, 256, 128, 48, 48, 48), activation="elu", dropout=0.1058, l1=3e-4,
                 use_masks=False, bounded_risk=False, act_type="None", modalities=None, time_col="os_time",
                 event_col="os_event", label_col=None, batch_size=256, max_epochs=100, patience=100, lr=5.8e-4,
                 weight_decay=0.006, val_fraction=0.15, ties="breslow", cls_weight=1.0, device="auto",
                 use_stream=True, min_overlap=0.5, random_state=0, progress=True):
        super().__init__(hidden=hidden, activation=activation, dropout=dropout, l1=l1, use_masks=use_masks,
                         bounded_risk=bounded_risk, modalities=modalities, time_col=time_col, event_col=event_col,
                         label_col=label_col, batch_size=batch_size, max_epochs=max_epochs, patience=patience, lr=lr,
                         weight_decay=weight_decay, val_fraction=val_fraction, ties=ties, cls_weight=cls_weight,
                         device=device, use_stream=use_stream, min_overlap=min_overlap, random_state=random_state,
                         progress=progress)
        self.act_type = act_type

    def build_module(self):
        return SeNMoNet(list(self.schema_["modalities"]), self.input_dims_, tuple(self.hidden), self.activation,
                        self.dropout, self.n_classes_, self.has_survival_, self.use_masks, self.bounded_risk,
                        act_type=self.act_type)

    def penalty(self, module):
        """L1 on all trainable parameters (their ``--reg_type all``)."""
        if not self.l1:
            return 0.0
        return self.l1 * sum(p.abs().sum() for p in module.parameters() if p.requires_grad)

    def loss(self, outputs: dict, targets: dict):
        """Their Cox loss (Breslow ties) averaged over the batch; other tasks as in :class:`zoo.Estimator`."""
        total = None
        for name in self.schema_["tasks"]:
            if name == "survival":
                ok = targets.get("surv_ok")
                if "risk" not in outputs or ok is None or not bool(ok.any()):
                    continue
                part = cox_ph_loss(outputs["risk"][ok], targets["time"][ok], targets["event"][ok],
                                   ties=self.ties, reduction="sum") / ok.sum()
            else:
                part = get_task(name).loss(self, outputs, targets)
                if part is None:
                    continue
                part = part * (self.cls_weight if self.has_survival_ else 1.0)
            total = part if total is None else total + part
        return total if total is not None else sum(v.sum() for v in outputs.values()) * 0.0


# ------------------------------------------------------------------ reading the published files
def load_upstream_state(path, obj: dict | None = None) -> dict[str, torch.Tensor]:
    """The authors' ``model_state_dict`` (``module.`` prefixes stripped), tensors only."""
    obj = load_checkpoint(path) if obj is None else obj
    state = obj.get("model_state_dict", obj)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(path, "expected 'model_state_dict': a dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def infer_architecture(state: dict, where="weights") -> dict:
    """``{"in_dim", "hidden", "regressor"}`` from the flat ``encoder.<3i>.weight`` layout."""
    linears: dict[int, tuple] = {}
    for k, v in state.items():
        m = _LINEAR.match(k)
        if m and m.group(2) == "weight":
            linears[int(m.group(1))] = tuple(v.shape)
    if not linears:
        nested = [k for k in state if re.match(r"^encoder\.\d+\.\d+\.weight$", k)]
        hint = f" (found nested keys like '{nested[0]}': not the authors' flat layout)" if nested else ""
        raise FormatError(where, f"no 'encoder.<i>.weight' Linear layers{hint}; keys: {sorted(state)[:6]}")
    want = [BLOCK * i for i in range(len(linears))]
    if sorted(linears) != want:
        raise FormatError(where, f"encoder Linear layers at {sorted(linears)}, expected every {BLOCK}rd index {want} "
                                 "([Linear, activation, AlphaDropout] per layer)")
    for i in want:
        if f"encoder.{i}.bias" not in state:
            raise FormatError(where, f"missing 'encoder.{i}.bias'")
    if "classifier.0.weight" not in state:
        raise FormatError(where, "missing 'classifier.0.weight' (the risk head)")
    if state["classifier.0.weight"].shape[0] != 1:
        raise FormatError(where, f"risk head has {state['classifier.0.weight'].shape[0]} outputs, expected 1 "
                                 "(a 33-class classifier is not a survival model)")
    hidden = [linears[i][0] for i in want]
    for j in range(1, len(want)):
        if linears[want[j]][1] != hidden[j - 1]:
            raise FormatError(where, f"encoder.{want[j]}.weight takes {linears[want[j]][1]} inputs, "
                                     f"layer {j - 1} gives {hidden[j - 1]}")
    return {"in_dim": linears[0][1], "hidden": hidden, "regressor": "output_range" in state}


def authors_features() -> dict[str, list[str]]:
    """The authors' input schema ``{modality: [names]}`` in order (80,697 features); see ``senmo_features.json``."""
    spec = json.loads(FEATURES_FILE.read_text())
    out = {}
    for mod in spec["modalities"]:
        names = mod.get("features") or [f"{mod['name']}_{i}" for i in range(mod["n"])]
        if len(names) != mod["n"]:
            raise FormatError(FEATURES_FILE, f"modality '{mod['name']}' lists {len(names)} names, n is {mod['n']}")
        out[mod["name"]] = names
    return out


def _feature_names(features, in_dim: int, where) -> dict[str, list[str]]:
    if features is None:
        features = authors_features()
    elif isinstance(features, (list, tuple)):
        features = {"omics": list(features)}
    n = sum(len(v) for v in features.values())
    if n != in_dim:
        raise SchemaMismatchError(f"{where}: the first layer takes {in_dim} inputs but the schema has {n} features "
                                  f"({', '.join(f'{m} {len(v)}' for m, v in features.items())})")
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
            act_type: str | None = None, source: dict | None = None, license: str | None = None,
            hidden: list[int] | None = None):
    """Convert one authors' ``.pt`` into a zoo checkpoint at ``out_dir``; returns the estimator.

    ``features``: ``{modality: [names]}`` in the authors' input order
    (default :func:`authors_features`, 80,697 inputs). ``act_type``:
    ``"None"`` (default: raw risk) or ``"Sigmoid"``. Preprocessing is the
    identity: inputs must be preprocessed as the authors did.
    """
    obj = load_checkpoint(path)
    state = load_upstream_state(path, obj)
    arch = infer_architecture(state, str(path))
    if hidden is not None and list(hidden) != arch["hidden"]:
        raise FormatError(path, f"hidden layers are {arch['hidden']}, the catalog entry says {list(hidden)}")
    act_type = act_type or "None"
    if act_type not in ACT_TYPES[1:]:
        raise SchemaMismatchError(f"act_type must be 'None' or 'Sigmoid', got {act_type!r}")
    if not arch["regressor"]:
        raise FormatError(path, "no 'output_range'/'output_shift': the authors' regressor always carries them")
    features = _feature_names(features, arch["in_dim"], path)
    opt = obj.get("opt")
    est = SeNMoAuthors(hidden=arch["hidden"], activation=activation, act_type=act_type, progress=False)
    upstream = {"file_act_type": getattr(opt, "act_type", None), "epoch": obj.get("epoch"), "split": obj.get("split")}
    schema = {"modalities": {m: dict(v, required=False) for m, v in identity_schema(features).items()},
              "tasks": {"survival": {"time_col": "os_time", "event_col": "os_event"}},
              "data": {"dataset": "gdc-pancancer (authors' data)", "dataset_version": None, "split": "authors' fold",
                       "n_train": None, "source": source or {"file": str(path)}, "redistributable": False,
                       "upstream": {k: v for k, v in upstream.items() if isinstance(v, (str, int, float))}}}
    est.schema_ = schema
    ours = est.build_module().state_dict()
    _check_keys(state, ours, path)
    est.restore_checkpoint(schema, {k: v.to(ours[k].dtype) for k, v in state.items()})
    save(est, out_dir, license=license or "CC-BY-NC-ND-4.0",
         title="SeNMo (authors' weights, converted locally - do not redistribute)",
         description="Converted from the authors' published weights by the zoo converter 'senmo-upstream'. "
                     "Their licence forbids sharing derivatives: keep this folder local.")
    return est


def fold_of(path: str) -> int | None:
    """The fold number in a file name (``..._fold10_for_test.pt`` -> 10), or ``None``."""
    m = _FOLD.search(Path(path).name)
    return int(m.group(1)) if m else None


def order_folds(paths) -> list[dict]:
    """``[{"path", "fold"}]`` ordered numerically by fold (fold2 before fold10)."""
    out = [{"path": p, "fold": fold_of(p)} for p in paths]
    missing = [f["path"] for f in out if f["fold"] is None]
    if missing:
        raise SchemaMismatchError(f"no fold number in the file name(s) {missing[:3]} (expected '..._fold<k>_...pt')")
    return sorted(out, key=lambda f: (f["fold"], f["path"]))


def _pick_file(source, options: dict, files: list[dict]) -> str:
    fold = int(options.get("fold", 1))
    if files:
        files = sorted(({**f, "fold": f.get("fold", fold_of(f["path"]))} for f in files),
                       key=lambda f: (f["fold"] is None, f["fold"] or 0))
    else:
        pts = [p for p in source.list_files() if fnmatch.fnmatch(p, "*.pt") or fnmatch.fnmatch(p, "*.pth")]
        if not pts:
            raise SchemaMismatchError(f"model '{source.name}': source {source.describe()} has no .pt files")
        files = order_folds(pts)
    pick = [f for f in files if f.get("fold") == fold]
    if len(pick) != 1:
        raise SchemaMismatchError(f"model '{source.name}': {len(pick)} files for fold {fold} "
                                  f"(folds: {[f.get('fold') for f in files]})")
    return pick[0]["path"]


@register_converter("senmo-upstream", options_schema=OPTIONS_SCHEMA,
                    variant=lambda options: f"fold-{int(options.get('fold', 1))}-{options.get('act_type', 'None')}")
def convert_entry(source, out_dir, options: dict, entry: dict) -> None:
    """Catalog converter: fetch the fold's ``.pt`` from ``source`` and convert it into ``out_dir``."""
    pt_path = _pick_file(source, options, list(entry.get("files") or []))
    pt = source.fetch(pt_path)
    convert(pt, out_dir, activation=options.get("activation", "elu"), act_type=options.get("act_type", "None"),
            source={**source.describe(), "file": pt_path, "fold": int(options.get("fold", 1))},
            license=entry.get("license"), hidden=options.get("hidden"))
