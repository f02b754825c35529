"""Named preprocessing recipes (the SeNMo recipe) and the builder-option spec that selects them."""
from __future__ import annotations

from ..errors import SchemaMismatchError
from .core import (
    _STEPS,
    CorrelationPrune,
    DropNearConstant,
    Impute,
    Log1p,
    MissingFilter,
    Pipeline,
    Standardize,
    Step,
    VarianceFilter,
)


def senmo_pipeline(modality: str) -> Pipeline:
    """The SeNMo-style recipe for one modality (thresholds in the module docstring)."""
    if modality == "mutation":
        return Pipeline([VarianceFilter(min_frac_nonzero=0.01), DropNearConstant(1e-3), Standardize()])
    steps: list[Step] = [MissingFilter(0.1), Impute()]
    if modality in ("rna", "mirna"):
        steps += [Log1p(), DropNearConstant(1e-3), VarianceFilter(threshold=0.2, top_k=5000)]
    elif modality == "methylation":
        steps += [DropNearConstant(1e-3), VarianceFilter(threshold=0.001, top_k=5000)]
    else:
        steps += [DropNearConstant(1e-3)]
    steps += [CorrelationPrune(0.9), Standardize()]
    return Pipeline(steps)


def pipelines_from_spec(spec, modalities: list[str]) -> dict[str, Pipeline]:
    """``"senmo"`` -> the recipe for every modality; a dict maps modality -> ``"senmo"``,
    a :class:`Pipeline`, or a list of ``{"name": step, **config}``."""
    out = {}
    if spec == "senmo":
        return {m: senmo_pipeline(m) for m in modalities}
    if not isinstance(spec, dict):
        raise SchemaMismatchError(f"preprocess spec must be 'senmo' or a dict modality -> steps, got {spec!r}")
    for m, s in spec.items():
        if m not in modalities:
            raise SchemaMismatchError(f"preprocess spec names modality '{m}', not in {modalities}")
        if s == "senmo":
            out[m] = senmo_pipeline(m)
        elif isinstance(s, Pipeline):
            out[m] = s
        else:
            steps = []
            for d in s:
                d = dict(d)
                name = d.pop("name")
                if name not in _STEPS:
                    raise SchemaMismatchError(f"unknown transform step '{name}' (known: {', '.join(_STEPS)})")
                steps.append(_STEPS[name](**d))
            out[m] = Pipeline(steps)
    return out
