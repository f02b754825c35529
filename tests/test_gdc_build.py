"""End-to-end: od.build("gdc-pancancer") against the GDC look-alike on 127.0.0.1."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gdcserver import GDCServer

import omicsdata as od
from omicsdata import synth, synth_gdc

PROJECTS = ["TCGA-BRCA", "TCGA-LUAD", "TCGA-KIRC"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("gdcraw")
    raw = synth_gdc.write_gdc_raw(root, synth.CohortSpec(n_patients=40, n_cancer_types=3, seed=1),
                              duplicates=3, normals=2, unusable_time=3, na_fraction=0.01, rppa_duplicates=True)
    return raw


@pytest.fixture()
def server(cohort, monkeypatch):
    with GDCServer(cohort["root"], page_cap=7) as srv:  # page cap 7 forces paging
        monkeypatch.setenv("OMICSDATA_GDC_API", srv.url)
        yield srv


def test_build_local_gdc(cohort, server):
    path = od.build("gdc-pancancer", projects=PROJECTS, progress=False)
    m = od.load(path, lazy=False)
    rep = m.uns["omicsdata"]["extra"]["report"]
    print(json.dumps({k: rep[k] for k in ("n_patients", "patients_per_modality", "patients_per_cancer_type",
                                          "events", "censored", "dropped")}, indent=1))
    exp = cohort["expected"]
    src = cohort["mdata"]
    # patients: all 40 minus the 3 without a usable survival time
    assert m.n_obs == 40 - len(exp["unusable_time"]) >= 30
    assert set(exp["unusable_time"]).isdisjoint(m.obs_names)
    assert rep["dropped"]["no_usable_survival_time"]["count"] == 3
    assert set(m.obs["cancer_type"].astype(str)) == set(PROJECTS)
    for col in ("patient_id", "cancer_type", "age", "sex", "race", "stage", "os_time", "os_event", "split"):
        assert col in m.obs
    # clinical values survive the /cases round trip
    ids = [cohort["id_map"][b] for b in m.obs_names]
    np.testing.assert_array_equal(m.obs["os_time"].to_numpy(), src.obs.loc[ids, "os_time"].to_numpy())
    np.testing.assert_array_equal(m.obs["os_event"].to_numpy(), src.obs.loc[ids, "os_event"].to_numpy())
    np.testing.assert_allclose(m.obs["age"].to_numpy(), src.obs.loc[ids, "age"].to_numpy(), atol=2e-3)
    assert (m.obs["os_event"] == 0).sum() > 0 and (m.obs["os_event"] == 1).sum() > 0  # censored and dead
    # missing modalities are real: masks match the simulation, absent rows are zero
    for mod in synth.MODALITIES:
        np.testing.assert_array_equal(m.obs[f"has_{mod}"].to_numpy(), src.obs.loc[ids, f"has_{mod}"].to_numpy())
        assert rep["patients_per_modality"][mod] == int(m.obs[f"has_{mod}"].sum())
    assert m.obs["has_protein"].sum() < m.n_obs
    # RNA: primary-tumour vial A chosen over the duplicate (doubled) aliquot; normals skipped
    np.testing.assert_array_equal(m.mod["rna"].X, src.mod["rna"][ids].X)
    assert list(m.mod["rna"].var["gene_symbol"]) == synth.gene_symbols(m.mod["rna"].var_names)  # GDC gene_name
    assert rep["dropped"]["duplicate_aliquots"]["patients"]["rna"] == 3
    assert rep["dropped"]["files_not_selected_sample_type"]["rna"] == 2
    # methylation NA -> NaN, the rest exact
    meth = m.mod["methylation"].X
    has = m.obs["has_methylation"].to_numpy()
    ref = src.mod["methylation"][ids].X
    assert np.isnan(meth[has]).sum() > 0
    ok = ~np.isnan(meth)
    np.testing.assert_array_equal(meth[ok], ref[ok])
    # protein: the duplicated target is the mean of its two rows
    prot = m.mod["protein"]
    hp = m.obs["has_protein"].to_numpy()
    np.testing.assert_allclose(prot.X[hp, 0], (src.mod["protein"][ids].X[hp, 0] + 1.5) / 2, rtol=1e-6)
    # mutation: non-silent calls only, the silent decoys are filtered
    mut = m.mod["mutation"]
    src_mut = src.mod["mutation"][ids]
    genes = list(mut.var_names)
    ref = src_mut[:, genes].X.toarray()
    np.testing.assert_array_equal(mut.X.toarray(), ref)
    assert src_mut.X.toarray().sum() == ref.sum()  # no mutated gene lost
    # samples table records the chosen files
    assert m.uns["omicsdata"]["tables"]["samples"]["n_rows"] == sum(rep["patients_per_modality"].values())
    # paging happened (cap 7 per page)
    assert sum(1 for meth_, p, _ in server.log if p == "/files") > len(synth.MODALITIES)


def test_rebuild_uses_cache(cohort, server):
    od.build("gdc-pancancer", projects=PROJECTS[:1], modalities=["rna", "mirna"], progress=False)
    n = len(server.log)
    assert any(p.startswith("/data") for _, p, _ in server.log)
    od.build("gdc-pancancer", projects=PROJECTS[:1], modalities=["rna", "mirna"], progress=False, force=True)
    assert not [p for _, p, _ in server.log[n:] if p.startswith("/data")]  # nothing downloaded again


def test_preprocess_fit_on_train(cohort, server):
    from omicsdata.transforms import Pipeline

    path = od.build("gdc-pancancer", projects=PROJECTS, modalities=["rna", "protein"],
                    preprocess_spec="senmo", progress=False)
    m = od.load(path, lazy=False)
    tr = m.uns["omicsdata"]["extra"]["transforms"]
    assert set(tr) == {"rna", "protein"}
    pipe = Pipeline.from_dict(tr["rna"])
    train = ((m.obs["split"] == "train") & m.obs["has_rna"]).to_numpy()
    X = m.mod["rna"].X
    assert list(m.mod["rna"].var_names) == pipe.features_out
    # standardised with training statistics: train rows have mean 0, std 1 per feature
    np.testing.assert_allclose(X[train].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(X[train].std(axis=0), 1, atol=1e-3)
    test = ((m.obs["split"] == "test") & m.obs["has_rna"]).to_numpy()
    assert not np.allclose(X[test].mean(axis=0), 0, atol=1e-4)
