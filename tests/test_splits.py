"""Splits: by patient, stratified by the primary label, seeded, stored, exposed as obs['split']."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import omicsdata as od
from omicsdata.splits import DEFAULT_FRACTIONS, assign_splits, split_counts
from omicsdata.store import read_manifest


def cohort(n_patients=600, seed=1):
    """Patients with 1-4 samples each and an imbalanced label (label of the patient)."""
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 5, n_patients)
    labels = rng.choice(["a", "b", "c", "d"], n_patients, p=[0.5, 0.25, 0.15, 0.10])
    groups = np.repeat([f"P{i:04d}" for i in range(n_patients)], per)
    return groups, np.repeat(labels, per), labels


def test_no_patient_in_two_splits():
    groups, y, _ = cohort()
    s = assign_splits(groups, y, seed=3)
    frame = pd.DataFrame({"g": groups, "s": s})
    assert (frame.groupby("g")["s"].nunique() == 1).all()
    assert set(s) == {"train", "val", "test"}
    assert pd.Series(groups).value_counts().max() > 1  # several samples per patient really exist


def test_stratified_proportions():
    groups, y, labels = cohort()
    s = assign_splits(groups, y, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    first = pd.DataFrame({"g": groups, "y": y, "s": s}).drop_duplicates("g")
    for label, grp in first.groupby("y"):
        n = len(grp)
        counts = grp["s"].value_counts()
        for name, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
            # largest-remainder rounding: each stratum within one patient of its exact share
            assert abs(counts.get(name, 0) - frac * n) < 1 + 1e-9, (label, name, counts.to_dict(), n)
    # the rare label lands in every split, so the test set is not missing a class
    rare = first[first["y"] == "d"]
    assert set(rare["s"]) == {"train", "val", "test"}


def test_unstratified_default_fractions():
    groups = [f"P{i}" for i in range(1000)]
    counts = split_counts(assign_splits(groups))
    assert counts == {k: int(round(v * 1000)) for k, v in DEFAULT_FRACTIONS.items()}


def test_deterministic_and_seeded():
    groups, y, _ = cohort()
    a = assign_splits(groups, y, seed=7)
    b = assign_splits(list(groups), list(y), seed=7)
    assert (a == b).all()
    c = assign_splits(groups, y, seed=8)
    assert (a != c).mean() > 0.2
    assert split_counts(a) != {} and sum(split_counts(a).values()) == len(groups)


def test_fractions_must_sum_to_one():
    with pytest.raises(od.OmicsDataError, match="sum to 1"):
        assign_splits(["a", "b"], fractions={"train": 0.5, "test": 0.2})
    with pytest.raises(od.OmicsDataError, match="differ in length"):
        assign_splits(["a", "b"], ["x"])


def test_demo_store_splits(demo_store):
    m = od.load(demo_store)
    obs = m.obs
    assert obs["split"].dtype.name == "category"
    assert (obs.groupby("patient_id", observed=True)["split"].nunique() == 1).all()
    man = read_manifest(demo_store)["splits"]
    assert man["by"] == "patient_id" and man["stratify"] == "cancer_type" and man["seed"] == 0
    assert man["counts"] == split_counts(obs["split"])
    # stored split equals a fresh assignment from the catalog's rules (deterministic across machines)
    card = od.info("demo-pancancer")
    again = assign_splits(obs["patient_id"], obs["cancer_type"], card.splits["fractions"], card.splits["seed"])
    assert (obs["split"].astype(str).to_numpy() == again).all()
    # stratified: each cancer type's test share is near 15 %
    share = pd.crosstab(obs["cancer_type"], obs["split"], normalize="index")["test"]
    assert ((share - 0.15).abs() < 0.05).all()


def test_load_twice_same_splits_and_other_seed_differs(tmp_path, monkeypatch):
    import yaml

    from omicsdata.catalog import DATASETS_DIR

    a = od.load("demo-pancancer", n_patients=80, n_cancer_types=3).obs["split"].astype(str)
    b = od.load("demo-pancancer", n_patients=80, n_cancer_types=3).obs["split"].astype(str)
    assert (a == b).all()
    # the same data with the catalog's split seed changed (a user entry overriding it) splits otherwise
    entry = yaml.safe_load((DATASETS_DIR / "demo_pancancer" / "card.yaml").read_text())
    entry["splits"]["seed"] = 1
    entry["version"] = "1.0-seed1"
    (tmp_path / "demo-pancancer.yaml").write_text(yaml.safe_dump(entry))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(tmp_path))
    c = od.load("demo-pancancer", n_patients=80, n_cancer_types=3)
    assert c.uns["omicsdata"]["splits"]["seed"] == 1
    assert list(c.obs_names) == list(a.index)
    assert (c.obs["split"].astype(str) != a).mean() > 0.2
