"""demo-pancancer's simulator: seeded, deterministic, realistic ranges, missingness, signal."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from omicsdata import synth


@pytest.fixture(scope="module")
def cohort():
    return synth.simulate_pancancer(synth.CohortSpec(n_patients=600, seed=0))


def dense(X):
    X = X.compute() if hasattr(X, "compute") else X
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def test_defaults():
    spec = synth.CohortSpec()
    assert spec.n_patients == 600 and spec.n_cancer_types == 8 and spec.seed == 0
    big = synth.CohortSpec.full_size(n_patients=100_000)
    assert big.n_patients == 100_000 and big.n_genes == 20_000


def test_deterministic_and_seeded(cohort):
    again = synth.simulate_pancancer(synth.CohortSpec(n_patients=600, seed=0))
    other = synth.simulate_pancancer(synth.CohortSpec(n_patients=600, seed=1))
    for m in synth.MODALITIES:
        np.testing.assert_array_equal(dense(cohort[m].X), dense(again[m].X))
        assert not np.array_equal(dense(cohort[m].X), dense(other[m].X))
    assert cohort.obs.equals(again.obs)
    assert not np.array_equal(cohort.obs["os_time"].to_numpy(), other.obs["os_time"].to_numpy())


def test_lazy_equals_eager_and_blocks_are_independent():
    spec = synth.CohortSpec(n_patients=300, block_rows=64, seed=4)
    eager = synth.simulate_pancancer(spec)
    lazy = synth.simulate_pancancer(spec, lazy=True)
    for m in ("rna", "methylation", "protein"):
        assert hasattr(lazy[m].X, "dask")
        np.testing.assert_array_equal(lazy[m].X.compute(), eager[m].X)
        # any row block is reproducible on its own
        np.testing.assert_array_equal(lazy[m].X[128:192].compute(), eager[m].X[128:192])
    np.testing.assert_array_equal(dense(lazy["mutation"].X), dense(eager["mutation"].X))


def test_ranges(cohort):
    rna, meth, mir = dense(cohort["rna"].X), dense(cohort["methylation"].X), dense(cohort["mirna"].X)
    prot, mut = dense(cohort["protein"].X), cohort["mutation"].X
    for counts in (rna, mir):
        assert counts.min() >= 0 and np.array_equal(counts, np.round(counts))
        present = counts[counts.sum(1) > 0]
        assert present.var(0).mean() > present.mean(0).mean()  # over-dispersed (NB-like), not Poisson
    assert meth.min() >= 0 and meth.max() <= 1
    has = cohort.obs["has_methylation"].to_numpy()
    assert 0.05 < meth[has].mean() < 0.95 and meth[has].std() > 0.1
    assert sp.issparse(mut) and set(np.unique(mut.data)) <= {1.0}
    assert mut.nnz / np.prod(mut.shape) < 0.1  # sparse
    assert np.isfinite(prot).all() and prot.min() < 0 < prot.max()
    for m in synth.MODALITIES:
        assert cohort[m].X.dtype == np.float32 and cohort[m].n_obs == 600
    assert list(cohort.obs["cancer_type"].cat.categories) == list(synth.CANCER_TYPES[:8])
    assert cohort.obs["cancer_type"].nunique() == 8


def test_missing_modalities_are_zero_rows(cohort):
    for m in synth.MODALITIES:
        has = cohort.obs[f"has_{m}"].to_numpy()
        X = dense(cohort[m].X)
        assert (X[~has] == 0).all()
        if m != "mutation":  # a present patient can have no mutation at all
            assert (np.abs(X[has]).sum(1) > 0).all()
    assert cohort.obs["has_rna"].all()
    missing = {m: 1 - cohort.obs[f"has_{m}"].mean() for m in synth.MODALITIES}
    assert 0.2 < missing["protein"] < 0.4 and 0.02 < missing["methylation"] < 0.15
    assert missing["protein"] == max(missing.values())


def test_survival_from_known_cox_model(cohort):
    from lifelines.utils import concordance_index

    obs = cohort.obs
    assert (obs["os_time"] >= 1).all()
    assert set(np.unique(obs["os_event"])) == {0, 1}
    assert 0.2 < obs["os_event"].mean() < 0.9  # censoring happens, deaths too
    # oracle C-index of the true log-hazard (higher risk -> shorter survival)
    c = concordance_index(obs["os_time"], -obs["true_risk"], obs["os_event"])
    assert c > 0.7, c
    # the driver mutation (TP53-like, first mutation column) is part of the model
    tp53 = dense(cohort["mutation"].X)[:, 0] > 0
    assert obs["true_risk"][tp53].mean() > obs["true_risk"][~tp53].mean()
    # a random score is at chance
    rng = np.random.default_rng(0)
    assert abs(concordance_index(obs["os_time"], rng.normal(size=len(obs)), obs["os_event"]) - 0.5) < 0.06


def test_cancer_type_is_predictable_from_rna_on_held_out(cohort):
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.log1p(dense(cohort["rna"].X))
    y = cohort.obs["cancer_type"].astype(str).to_numpy()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    clf = make_pipeline(StandardScaler(), NearestCentroid()).fit(Xtr, ytr)
    acc = (clf.predict(Xte) == yte).mean()
    majority = max(np.mean(yte == k) for k in np.unique(yte))
    assert acc > 0.8 and acc > majority + 0.4, (acc, majority)


def test_scales_lazily_without_materialising():
    m = synth.simulate_pancancer(synth.CohortSpec(n_patients=20_000, n_mutation_genes=50, seed=2), lazy=True)
    assert m["rna"].shape == (20_000, 2000) and hasattr(m["rna"].X, "dask")
    assert m["rna"].X.numblocks[0] == -(-20_000 // 2048)
    np.testing.assert_array_equal(m["rna"].X[-5:].compute().shape, (5, 2000))
