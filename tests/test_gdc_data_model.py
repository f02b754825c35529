"""The GDC's current data model end to end: /cases and /files on the look-alike server -> parsers -> store.

sex_at_birth (gender removed), follow-up only in follow_ups.days_to_follow_up, lower-case vital status,
RPPA portion barcodes ranked by their dash-separated plate field.
"""
from __future__ import annotations

import numpy as np
import pytest
from gdcserver import GDCServer

import omicsdata as od
from omicsdata import synth, synth_gdc
from omicsdata.sources.gdc import CASE_FIELDS


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return synth_gdc.write_gdc_raw(tmp_path_factory.mktemp("gdc-dm"),
                                   synth.CohortSpec(n_patients=24, n_cancer_types=2, seed=3, n_genes=60, n_cpgs=40),
                                   rppa_portions=2)


def test_fixture_is_in_the_current_data_model(raw):
    cases = raw["cases"]
    assert all("sex_at_birth" in c["demographic"] and "gender" not in c["demographic"] for c in cases)
    assert raw["expected"]["follow_ups_only"]  # some alive patients have follow-up nowhere else
    assert any(c["demographic"]["vital_status"] in ("alive", "dead") for c in cases)
    portions = list(raw["expected"]["duplicate_rppa_portions"].values())
    assert len(portions) == 2 and all(len(b.split("-")) == 7 and b.split("-")[4] == "21" for b in portions)


def test_build_keeps_follow_up_only_patients_and_reads_sex_at_birth(raw, monkeypatch):
    with GDCServer(raw["root"], page_cap=9) as srv:
        monkeypatch.setenv("OMICSDATA_GDC_API", srv.url)
        path = od.build("gdc-pancancer", projects=["TCGA-BRCA", "TCGA-LUAD"], progress=False)
        asked = [b for p, b in srv.bodies if p == "/cases"]
    fields = set(asked[0]["fields"].split(","))
    assert {"demographic.sex_at_birth", "follow_ups.days_to_follow_up"} <= fields
    assert "demographic.gender" not in fields and set(CASE_FIELDS) == fields
    m = od.load(path, lazy=False)
    src = raw["mdata"]
    assert m.n_obs == src.n_obs  # nobody dropped: follow_ups-only and lower-case vital status are usable
    assert set(raw["expected"]["follow_ups_only"]) <= set(m.obs_names)
    ids = [raw["id_map"][b] for b in m.obs_names]
    np.testing.assert_array_equal(m.obs["os_time"].to_numpy(), src.obs.loc[ids, "os_time"].to_numpy())
    np.testing.assert_array_equal(m.obs["os_event"].to_numpy(), src.obs.loc[ids, "os_event"].to_numpy())
    assert list(m.obs["sex"].astype(str)) == list(src.obs.loc[ids, "sex"].astype(str))
    # RPPA: of two portions, the later plate's file is kept (the older one carries doubled values)
    dup = list(raw["expected"]["duplicate_rppa_portions"])
    rows = [list(m.obs_names).index(b) for b in dup]
    np.testing.assert_allclose(m.mod["protein"].X[rows], src.mod["protein"][[raw["id_map"][b] for b in dup]].X,
                               rtol=1e-5)
    rep = m.uns["omicsdata"]["extra"]["report"]
    assert rep["dropped"]["duplicate_aliquots"]["patients"]["protein"] == 2
