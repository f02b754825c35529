"""A simulated pan-cancer cohort: seeded, deterministic, scalable.

``demo-pancancer`` is built from this. It mimics the shape of GDC TCGA data
(SeNMo's training set) so every part of the toolkit can be exercised without
a download:

* ``rna``: negative-binomial (gamma-Poisson) read counts per gene;
* ``methylation``: beta values in [0, 1] (logistic of a latent, plus noise);
* ``mirna``: negative-binomial counts;
* ``mutation``: sparse binary gene-level calls (CSR);
* ``protein``: RPPA-like Gaussian levels;
* clinical ``obs``: age, sex, stage, cancer type, ``os_time`` (days),
  ``os_event`` (1 = death observed) and ``true_risk``.

Each patient has a cancer type and a low-dimensional latent state. Both drive
the omics (so cancer type leaves a real signature and risk is recoverable
from the molecules), and the log-hazard of a known Cox model::

    true_risk = type_effect[type] + z @ gamma + 0.02 (age - 60) + 0.25 (stage - 2)
               + 0.5 * (TP53-like driver mutated)

Survival times are Weibull with that proportional hazard; censoring is an
independent exponential plus administrative end of follow-up. ``true_risk``
is kept so a model can be scored against the best reachable C-index.

Matrices are produced block by block from per-block seeds, so a 100k-patient
cohort streams to a store without ever being in memory (``lazy=True``
returns dask arrays) and any block is reproducible on its own.
"""
from __future__ import annotations

import dataclasses

import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .storage.layout import SYMBOL_COLUMN

MODALITIES = ("rna", "methylation", "mirna", "mutation", "protein")
CANCER_TYPES = ("TCGA-BRCA", "TCGA-LUAD", "TCGA-KIRC", "TCGA-GBM", "TCGA-COAD",
                "TCGA-OV", "TCGA-SKCM", "TCGA-PRAD", "TCGA-LIHC", "TCGA-STAD",
                "TCGA-HNSC", "TCGA-UCEC")
# fraction of patients lacking each modality (as in TCGA, protein is the sparsest)
MISSING_RATE = {"rna": 0.0, "methylation": 0.08, "mirna": 0.05, "mutation": 0.06, "protein": 0.3}


@dataclasses.dataclass(frozen=True)
class CohortSpec:
    n_patients: int = 600
    n_cancer_types: int = 8
    n_genes: int = 2000
    n_cpgs: int = 1500
    n_mirnas: int = 300
    n_mutation_genes: int = 400
    n_proteins: int = 150
    n_latent: int = 6
    block_rows: int = 2048
    seed: int = 0

    @classmethod
    def full_size(cls, n_patients: int = 10_000, **kw) -> "CohortSpec":
        """Feature counts close to GDC's after SeNMo-style filtering."""
        base = dict(n_genes=20_000, n_cpgs=20_000, n_mirnas=1_800, n_mutation_genes=18_000,
                    n_proteins=480)
        base.update(kw)
        return cls(n_patients=n_patients, **base)

    def n_features(self, modality: str) -> int:
        return {"rna": self.n_genes, "methylation": self.n_cpgs, "mirna": self.n_mirnas,
                "mutation": self.n_mutation_genes, "protein": self.n_proteins}[modality]


def _rng(spec: CohortSpec, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([spec.seed, *key]))


_MOD_ID = {m: i + 1 for i, m in enumerate(MODALITIES)}


def feature_names(spec: CohortSpec, modality: str) -> list[str]:
    n = spec.n_features(modality)
    prefix = {"rna": "ENSG", "methylation": "cg", "mirna": "hsa-mir-", "mutation": "GENE",
              "protein": "PROT"}[modality]
    if modality == "rna":
        return [f"ENSG{i:011d}" for i in range(n)]
    if modality == "methylation":
        return [f"cg{i:08d}" for i in range(n)]
    if modality == "mutation":
        return ["TP53"] + [f"GENE{i}" for i in range(1, n)]
    return [f"{prefix}{i}" for i in range(n)]


def gene_symbols(gene_ids) -> list[str]:
    """The simulated symbol of each simulated gene id (``ENSG00000000012`` -> ``GENE12``; gene 0 is ``TP53``),
    matching the mutation modality's gene names, as GDC's ``gene_name`` matches the MAF's ``Hugo_Symbol``."""
    out = []
    for g in gene_ids:
        i = int(str(g)[4:])
        out.append("TP53" if i == 0 else f"GENE{i}")
    return out


def _feature_params(spec: CohortSpec, modality: str) -> dict:
    """Per-feature parameters: baseline, latent loadings, per-type shifts."""
    rng = _rng(spec, 100 + _MOD_ID[modality])
    p = spec.n_features(modality)
    k, t = spec.n_latent, spec.n_cancer_types
    informative = rng.random(p) < 0.25  # a quarter of the features carry signal
    W = rng.normal(0, 0.6, (k, p)) * informative
    type_shift = rng.normal(0, 1.0, (t, p)) * (rng.random((t, p)) < 0.08)
    if modality in ("rna", "mirna"):
        base = rng.normal(2.0 if modality == "rna" else 1.0, 1.6, p)
        disp = rng.uniform(0.1, 0.6, p)
    elif modality == "methylation":
        base = rng.normal(0, 2.0, p)
        disp = np.full(p, 0.05)
    elif modality == "mutation":
        base = np.log(rng.beta(0.6, 60, p))
        base[0] = np.log(0.3)  # TP53-like driver, frequent
        W = W * 0.5
        disp = np.zeros(p)
    else:
        base = rng.normal(0, 0.5, p)
        disp = np.full(p, 0.4)
    return {"base": base, "W": W, "type_shift": type_shift, "disp": disp}


def _patients(spec: CohortSpec) -> dict:
    rng = _rng(spec, 1)
    n, t = spec.n_patients, spec.n_cancer_types
    if t > len(CANCER_TYPES):
        raise ValueError(f"at most {len(CANCER_TYPES)} cancer types")
    props = rng.dirichlet(np.full(t, 4.0))
    ctype = rng.choice(t, size=n, p=props)
    type_center = rng.normal(0, 0.8, (t, spec.n_latent))
    z = type_center[ctype] + rng.normal(0, 1.0, (n, spec.n_latent))
    age = np.clip(rng.normal(61, 12, n), 18, 90).round()
    sex = rng.choice(np.array(["female", "male"]), size=n)
    stage = rng.choice(np.arange(1, 5), size=n, p=[0.25, 0.3, 0.3, 0.15])
    present = {m: rng.random(n) >= MISSING_RATE[m] for m in MODALITIES}
    return {"ctype": ctype, "z": z, "age": age, "sex": sex, "stage": stage, "present": present}


def _block(spec: CohortSpec, modality: str, params: dict, pts: dict, start: int, stop: int):
    """Rows ``start:stop`` of one modality (dense float32, or CSR for mutation)."""
    rng = _rng(spec, 1000 + _MOD_ID[modality], start)
    z = pts["z"][start:stop]
    ct = pts["ctype"][start:stop]
    lin = params["base"] + z @ params["W"] + params["type_shift"][ct]
    present = pts["present"][modality][start:stop]
    if modality in ("rna", "mirna"):
        lib = rng.lognormal(0, 0.25, (stop - start, 1))
        mean = np.exp(np.minimum(lin, 12)) * lib
        shape = 1.0 / params["disp"]
        x = rng.poisson(rng.gamma(shape, mean / shape)).astype(np.float32)
    elif modality == "methylation":
        x = 1 / (1 + np.exp(-(lin + rng.normal(0, 0.3, lin.shape))))
        x = np.clip(x, 0, 1).astype(np.float32)
    elif modality == "mutation":
        prob = np.exp(np.minimum(lin, 0))
        x = (rng.random(lin.shape) < prob).astype(np.float32)
    else:
        x = (lin + rng.normal(0, params["disp"], lin.shape)).astype(np.float32)
    x[~present] = 0
    if modality == "mutation":
        return sp.csr_matrix(x)
    return x


def _survival(spec: CohortSpec, pts: dict, tp53: np.ndarray) -> dict:
    rng = _rng(spec, 2)
    t = spec.n_cancer_types
    type_effect = rng.normal(0, 0.6, t)
    gamma = rng.normal(0, 0.45, spec.n_latent)
    risk = (type_effect[pts["ctype"]] + pts["z"] @ gamma + 0.02 * (pts["age"] - 60)
            + 0.25 * (pts["stage"] - 2) + 0.5 * tp53)
    # Weibull(k=1.3) proportional hazards, median survival ~ 4 years at risk 0
    k, lam = 1.3, 1 / (4 * 365.25)
    u = rng.random(spec.n_patients)
    T = (-np.log(u) / (lam ** k * np.exp(risk))) ** (1 / k)
    C = np.minimum(rng.exponential(6 * 365.25, spec.n_patients), rng.uniform(3, 12, spec.n_patients) * 365.25)
    time = np.maximum(np.minimum(T, C), 1).round()
    event = (T <= C).astype(np.int8)
    return {"true_risk": risk.astype(np.float32), "os_time": time.astype(np.float32), "os_event": event}


def simulate_pancancer(spec: CohortSpec | None = None, lazy: bool = False, **kw):
    """Simulate a cohort and return a :class:`mudata.MuData`.

    ``simulate_pancancer(n_patients=600, seed=0)``; pass ``lazy=True`` for
    dask-backed matrices (for big cohorts). All modalities share the patient
    rows in the same order; a patient lacking a modality has a zero row and
    ``obs["has_<modality>"] == False``.
    """
    import anndata as ad

    from .storage.settings import new_mudata

    spec = spec or CohortSpec(**kw)
    pts = _patients(spec)
    n = spec.n_patients
    ids = [f"SIM-{spec.seed:02d}-{i:06d}" for i in range(n)]
    bounds = [(s, min(s + spec.block_rows, n)) for s in range(0, n, spec.block_rows)]
    mods = {}
    tp53 = None
    for m in MODALITIES:
        params = _feature_params(spec, m)
        p = spec.n_features(m)
        if m == "mutation":
            # sparse and small: always materialised (needed for the risk model)
            X = sp.vstack([_block(spec, m, params, pts, s, e) for s, e in bounds], format="csr")
            tp53 = np.asarray(X[:, 0].todense()).ravel()
        elif lazy:
            X = da.concatenate([
                da.from_delayed(dask.delayed(_block)(spec, m, params, pts, s, e), shape=(e - s, p), dtype=np.float32)
                for s, e in bounds])
        else:
            X = np.concatenate([_block(spec, m, params, pts, s, e) for s, e in bounds])
        var = pd.DataFrame(index=feature_names(spec, m))
        if m == "rna":
            var[SYMBOL_COLUMN] = gene_symbols(var.index)
        a = ad.AnnData(X=X, obs=pd.DataFrame(index=ids), var=var)
        mods[m] = a
    surv = _survival(spec, pts, tp53)
    obs = pd.DataFrame({
        "patient_id": ids,
        "cancer_type": pd.Categorical(np.array(CANCER_TYPES)[pts["ctype"]],
                                      categories=list(CANCER_TYPES[: spec.n_cancer_types])),
        "age": pts["age"].astype(np.float32),
        "sex": pd.Categorical(pts["sex"]),
        "stage": pts["stage"].astype(np.int8),
        "os_time": surv["os_time"],
        "os_event": surv["os_event"],
        "true_risk": surv["true_risk"],
        **{f"has_{m}": pts["present"][m] for m in MODALITIES},
    }, index=ids)
    mdata = new_mudata(mods, obs)
    return mdata
