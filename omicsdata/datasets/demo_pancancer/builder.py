"""Builder of ``demo-pancancer``: the simulated cohort of :mod:`omicsdata.synth`.

Two paths, same store:

* **raw** (default up to ``RAW_MAX_PATIENTS`` patients): the cohort is written
  as GDC raw files (STAR counts, SeSAMe betas, miRNA, gzipped MAF, RPPA, plus
  the ``/cases`` JSON) into the build's scratch folder by
  :func:`omicsdata.synth_gdc.write_gdc_raw`, then parsed and assembled by the very
  code ``gdc-pancancer`` uses (:func:`omicsdata.datasets.gdc_pancancer.builder.assemble`),
  so the demo exercises the real parsers;
* **fast** (``raw=False``, the default above ``RAW_MAX_PATIENTS`` or with
  ``full_size=True``): matrices straight from the simulator's arrays, lazily
  for big cohorts (the 10k-100k-patient stores used by the benchmarks).

Both give identical matrices and obs (``patient_id``, ``cancer_type``, ``age``,
``sex``, ``stage``, ``os_time``, ``os_event``, ``true_risk``, ``has_<modality>``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ... import synth, synth_gdc
from ...builders import BuildResult, register
from ...errors import BuildError

RAW_MAX_PATIENTS = 5000
KINDS = {"rna": "gene read counts", "methylation": "CpG beta values", "mirna": "miRNA read counts",
         "mutation": "binary gene mutation calls", "protein": "RPPA protein levels"}


def _via_gdc_raw(spec: synth.CohortSpec, workdir) -> tuple:
    """Simulate, write GDC raw files, parse them back with the gdc-pancancer code."""
    import anndata as ad

    from ...formats.clinical import stage_number
    from ...storage.settings import new_mudata
    from ..gdc_pancancer.builder import assemble

    sim = synth.simulate_pancancer(spec)
    raw = synth_gdc.write_gdc_raw(workdir / "gdc-raw", spec, mdata=sim)
    parsed, rep, _ = assemble(raw["index"], raw["cases"], synth.MODALITIES,
                              mutation_genes=synth.feature_names(spec, "mutation"))
    ids = np.array([raw["id_map"][b] for b in parsed.obs_names])
    if len(ids) != sim.n_obs:
        raise BuildError(f"demo-pancancer: {sim.n_obs} simulated patients but {len(ids)} came back from the raw files")
    pos = pd.Index(ids).get_indexer(sim.obs_names)  # back to the simulator's row order
    mods = {}
    for m in synth.MODALITIES:
        a = parsed.mod[m]
        X = a.X[pos]
        mods[m] = ad.AnnData(X=X, obs=pd.DataFrame(index=sim.obs_names), var=a.var.copy())  # rna: gene_symbol
    po = parsed.obs.iloc[pos]
    obs = pd.DataFrame({
        "patient_id": np.asarray(sim.obs_names, dtype=object),
        "cancer_type": pd.Categorical(po["cancer_type"].astype(str).to_numpy(),
                                      categories=list(synth.CANCER_TYPES[: spec.n_cancer_types])),
        "age": np.round(po["age"].to_numpy(np.float32)).astype(np.float32),
        "sex": pd.Categorical(po["sex"].astype(str).to_numpy()),
        "stage": np.array([stage_number(s) for s in po["stage"].astype(object)], dtype=np.int8),
        "os_time": po["os_time"].to_numpy(np.float32),
        "os_event": po["os_event"].to_numpy(np.int8),
        "true_risk": sim.obs["true_risk"].to_numpy(np.float32),
        **{f"has_{m}": po[f"has_{m}"].to_numpy(bool) for m in synth.MODALITIES},
    }, index=sim.obs_names)
    mdata = new_mudata(mods, obs)
    return mdata, {"raw_files": len(raw["index"]), "parsed_with": "gdc-pancancer assemble",
                   "duplicate_aliquots": rep["dropped"]["duplicate_aliquots"]["patients"]}


def _check_options(opts: dict) -> None:
    """Sizes must be positive integers (``seed`` a non-negative one); unknown names are refused by name."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(synth.CohortSpec)} | {"full_size"}
    unknown = sorted(set(opts) - fields)
    if unknown:
        raise BuildError(f"dataset 'demo-pancancer': bad builder option(s) {unknown}: unknown; known: {sorted(fields)}")
    for k, v in opts.items():
        if k == "full_size":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise BuildError(f"dataset 'demo-pancancer': builder option '{k}' must be an integer, got {v!r}")
        low = 0 if k == "seed" else 1
        if int(v) < low:
            raise BuildError(f"dataset 'demo-pancancer': builder option '{k}' must be >= {low}, got {v}")
    if opts.get("n_cancer_types") is not None and int(opts["n_cancer_types"]) > len(synth.CANCER_TYPES):
        raise BuildError(f"dataset 'demo-pancancer': builder option 'n_cancer_types' must be <= {len(synth.CANCER_TYPES)}, "
                         f"got {opts['n_cancer_types']}")


@register("demo-pancancer")
def build(card, workdir, n_patients: int | None = None, n_cancer_types: int | None = None,
          seed: int | None = None, full_size: bool = False, raw: bool | None = None, **spec_kw) -> BuildResult:
    """Options: ``n_patients`` (default 600), ``n_cancer_types`` (8), ``seed`` (0),
    ``full_size`` (GDC-like feature counts, ~20k genes), ``raw`` (write + parse GDC
    raw files; default when ``n_patients <= 5000`` and not ``full_size``), or any
    :class:`omicsdata.synth.CohortSpec` field."""
    from pathlib import Path

    opts = dict(card.get("builder_options", {}))
    opts.update({k: v for k, v in dict(n_patients=n_patients, n_cancer_types=n_cancer_types, seed=seed).items()
                 if v is not None})
    opts.update(spec_kw)
    _check_options(opts)
    full = opts.pop("full_size", False) or full_size
    spec = synth.CohortSpec.full_size(**opts) if full else synth.CohortSpec(**opts)
    if raw is None:
        raw = spec.n_patients <= RAW_MAX_PATIENTS and not full
    if raw:
        mdata, extra_rep = _via_gdc_raw(spec, Path(workdir))
    else:
        mdata = synth.simulate_pancancer(spec, lazy=spec.n_patients > 5000)
        extra_rep = {"parsed_with": "synth arrays (fast path)"}
    report = {"n_patients": spec.n_patients, "simulated": True,
              "present": {m: int(mdata.obs[f"has_{m}"].sum()) for m in synth.MODALITIES},
              "events": int(mdata.obs["os_event"].sum()), **extra_rep}
    return BuildResult(mdata=mdata, report=report, feature_kinds=dict(KINDS))
