"""Trainer/task split: no training labels in checkpoints, one preprocessing system, the store recipe at predict."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import small_cohort

import zoo
from zoo.preprocess import Preprocessor, identity_schema
from zoo.tasks import get_task, list_tasks

FAST = dict(hidden=(32, 16), max_epochs=3, patience=3, batch_size=32, lr=1e-3, progress=False, random_state=0)


@pytest.fixture(scope="module")
def cohort():
    return small_cohort(150, 3, seed=2, n_genes=60, n_cpgs=40, n_mirnas=20, n_mutation_genes=15, n_proteins=12)


def _lists(obj, out):
    if isinstance(obj, dict):
        for v in obj.values():
            _lists(v, out)
    elif isinstance(obj, list):
        out.append(obj)
        for v in obj:
            _lists(v, out)
    return out


def test_checkpoint_holds_no_per_patient_labels(cohort, tmp_path):
    m = zoo.SeNMo(label_col=None, **FAST).fit(cohort)
    m.save_pretrained(tmp_path / "ckpt")
    schema = json.loads((tmp_path / "ckpt" / "schema.json").read_text())
    s = schema["survival"]
    assert not {"train_time", "train_event"} & set(s)
    n_train = schema["data"]["n_train"]
    times = set(np.asarray(cohort.obs["os_time"], float).tolist())
    for lst in _lists(schema, []):
        if lst and all(isinstance(v, float) for v in lst) and len(lst) >= n_train:
            assert not set(lst) <= times, "a list of training times is in schema.json"
    # the baseline is at unique event times only
    n_events = int(cohort.obs["os_event"][cohort.obs["split"] == "train"].sum())
    assert len(s["baseline_times"]) <= n_events and np.all(np.diff(s["baseline_times"]) > 0)
    loaded = zoo.SeNMo.from_pretrained(tmp_path / "ckpt")
    res = loaded.evaluate(cohort, split="test")
    assert {"c_index", "uno_c", "ibs"} <= set(res)
    assert res == pytest.approx(m.evaluate(cohort, split="test"))


def test_checkpoint_contract_roundtrip(cohort):
    m = zoo.SeNMo(**FAST).fit(cohort)
    schema, tensors = m.checkpoint_state()
    json.dumps(schema)
    assert m.checkpoint_config() == {"input_dims": m.input_dims_, "n_classes": 3, "survival": True}
    fresh = zoo.SeNMo(**m.get_params()).restore_checkpoint(schema, tensors)
    np.testing.assert_allclose(fresh.predict(cohort, split="test"), m.predict(cohort, split="test"), rtol=1e-5)
    from omicsdata.errors import SchemaMismatchError
    with pytest.raises(SchemaMismatchError, match="do not fit"):
        zoo.SeNMo(**dict(m.get_params(), hidden=(8,))).restore_checkpoint(schema, tensors)


def test_identity_schema_and_tasks():
    s = identity_schema({"rna": ["a", "b"]})
    assert s["rna"]["features"] == ["a", "b"] and s["rna"]["transform"] == "identity" and s["rna"]["required"]
    import torch
    pre = Preprocessor.from_json(s)
    x = torch.tensor([[1.5, -2.0]])
    out = pre({"rna": x, "rna_mask": torch.tensor([True]), "index": torch.tensor([0])})
    assert torch.equal(out["rna"], x)
    assert {"survival", "classification"} <= set(list_tasks()) and get_task("survival").name == "survival"


def test_recipe_store_is_reapplied_to_raw_inputs(cohort, tmp_path):
    """Train on a store built with the SeNMo recipe; raw data of the same patients predicts the same."""
    import omicsdata as od
    from omicsdata.transforms import pipelines_from_spec

    mods = ["rna", "protein"]
    raw = cohort
    train = (raw.obs["split"] == "train").to_numpy()
    pipes = pipelines_from_spec({"rna": "senmo", "protein": "senmo"}, list(raw.mod))
    import mudata as md
    md.set_options(pull_on_update=False)
    new_mods, recipe = {}, {}
    for m in raw.mod:
        a = raw.mod[m]
        if m in pipes:
            present = raw.obs[f"has_{m}"].to_numpy()
            pipes[m].fit(a, rows=train & present)
            a = pipes[m].transform(a, present=present)
            recipe[m] = pipes[m].to_dict()
        new_mods[m] = a
    built = md.MuData(new_mods)
    built.obs = raw.obs.copy()
    od.write_store(built, tmp_path / "recipe.zarr", extra={"transforms": recipe})
    od.write_store(raw, tmp_path / "raw.zarr")
    rec_store, raw_store = od.open_store(tmp_path / "recipe.zarr"), od.open_store(tmp_path / "raw.zarr")
    m = zoo.SeNMo(modalities=mods, label_col=None, **FAST).fit(rec_store)
    assert set(m.schema_["preprocessing"]["recipe"]) == set(mods)
    on_recipe = m.predict(rec_store, split="test")
    on_raw = m.predict(raw_store, split="test")
    np.testing.assert_allclose(on_raw, on_recipe, rtol=1e-4, atol=1e-5)
