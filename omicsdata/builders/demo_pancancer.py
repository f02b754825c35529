"""Builder of ``demo-pancancer``: the simulated cohort of :mod:`omicsdata.synth`."""
from __future__ import annotations

from . import BuildResult, register
from .. import synth


@register("demo-pancancer")
def build(card, workdir, n_patients: int | None = None, n_cancer_types: int | None = None,
          seed: int | None = None, full_size: bool = False, **spec_kw) -> BuildResult:
    """Options: ``n_patients`` (default 600), ``n_cancer_types`` (8), ``seed`` (0),
    ``full_size`` (GDC-like feature counts, ~20k genes), or any
    :class:`omicsdata.synth.CohortSpec` field."""
    opts = dict(card.get("builder_options", {}))
    opts.update({k: v for k, v in dict(n_patients=n_patients, n_cancer_types=n_cancer_types, seed=seed).items()
                 if v is not None})
    opts.update(spec_kw)
    full = opts.pop("full_size", False) or full_size
    spec = synth.CohortSpec.full_size(**opts) if full else synth.CohortSpec(**opts)
    mdata = synth.simulate_pancancer(spec, lazy=spec.n_patients > 5000)
    report = {"n_patients": spec.n_patients, "simulated": True,
              "present": {m: int(mdata.obs[f"has_{m}"].sum()) for m in synth.MODALITIES},
              "events": int(mdata.obs["os_event"].sum())}
    kinds = {"rna": "gene read counts", "methylation": "CpG beta values", "mirna": "miRNA read counts",
             "mutation": "binary gene mutation calls", "protein": "RPPA protein levels"}
    return BuildResult(mdata=mdata, report=report, feature_kinds=kinds)
