"""Align an input's features, by name, to a model's ``schema.json``.

For every modality of the schema: features present in the input are
gathered into the schema's order; features the input lacks get the schema's
fill value (the training mean: 0 after standardisation) and one warning
reports the counts for all modalities. A modality whose overlap is below
``min_overlap`` (default 50%) or a required modality the input lacks is a
:class:`~omicsdata.errors.SchemaMismatchError`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from omicsdata.errors import SchemaMismatchError

DEFAULT_MIN_OVERLAP = 0.5


class FeatureAlignmentWarning(UserWarning):
    """Some schema features are missing from the input and were filled."""


@dataclass
class Alignment:
    """Gather plan of one modality: input columns ``src`` go to schema columns ``dst``."""

    src: np.ndarray
    dst: np.ndarray
    n_schema: int
    n_input: int
    identity: bool

    def __post_init__(self):
        self._dev: dict = {}

    @property
    def n_missing(self) -> int:
        return self.n_schema - len(self.dst)

    def tensors(self, device):
        key = str(device)
        if key not in self._dev:
            self._dev[key] = (torch.as_tensor(self.src, dtype=torch.long, device=device),
                              torch.as_tensor(self.dst, dtype=torch.long, device=device))
        return self._dev[key]


def align_features(schema_features: list[str], input_features, modality: str = "?",
                   min_overlap: float = DEFAULT_MIN_OVERLAP, where: str = "input") -> Alignment:
    """The :class:`Alignment` of ``input_features`` to ``schema_features`` (by name)."""
    inp = [str(f) for f in input_features]
    n_schema = len(schema_features)
    if inp == list(schema_features):
        idx = np.arange(n_schema)
        return Alignment(idx, idx, n_schema, len(inp), True)
    pos: dict[str, int] = {}
    for i, f in enumerate(inp):
        pos.setdefault(f, i)
    dst = np.array([j for j, f in enumerate(schema_features) if f in pos], dtype=np.int64)
    src = np.array([pos[schema_features[j]] for j in dst], dtype=np.int64)
    frac = len(dst) / max(n_schema, 1)
    if frac < min_overlap:
        example = ", ".join(map(str, schema_features[:3]))
        raise SchemaMismatchError(
            f"{where}: modality '{modality}' shares {len(dst)} of the model's {n_schema} features "
            f"({frac:.0%}, below the {min_overlap:.0%} threshold); the model expects names like {example}. "
            "Check the feature identifiers (e.g. Ensembl ids vs gene symbols) or lower min_overlap.")
    return Alignment(src, dst, n_schema, len(inp), False)


def align_mudata(schema_modalities: dict, mdata, required: list[str] | None = None,
                 min_overlap: float = DEFAULT_MIN_OVERLAP, where: str = "input") -> dict:
    """Alignments for every schema modality present in ``mdata``; warns once about missing features.

    Returns ``{modality: Alignment or None}``; ``None`` marks a modality the
    input lacks (allowed only if not in ``required``; its rows count as absent).
    """
    required = list(schema_modalities) if required is None else list(required)
    out: dict = {}
    missing_msgs = []
    for m, spec in schema_modalities.items():
        if m not in mdata.mod:
            if m in required:
                raise SchemaMismatchError(
                    f"{where}: the model needs modality '{m}' but the input has only {sorted(mdata.mod)}")
            out[m] = None
            missing_msgs.append(f"{m}: whole modality absent ({len(spec['features'])} features, treated as not measured)")
            continue
        al = align_features(spec["features"], mdata.mod[m].var_names, m, min_overlap, where)
        out[m] = al
        if al.n_missing:
            missing_msgs.append(f"{m}: {al.n_missing} of {al.n_schema} features missing")
    if missing_msgs:
        warnings.warn(f"{where}: filled features the model expects with their training mean - "
                      + "; ".join(missing_msgs), FeatureAlignmentWarning, stacklevel=3)
    return out
