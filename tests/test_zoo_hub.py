"""zoo.load / from_pretrained(repo_id) / push_to_hub against the Hub look-alike; SeNMo upstream conversion."""
from __future__ import annotations

import hashlib
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import small_cohort

import zoo
from omicsdata.errors import ChecksumError, FormatError, OmicsDataError, SchemaMismatchError

FAST = dict(hidden=(16, 8), max_epochs=2, patience=2, batch_size=32, lr=1e-3, progress=False, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    mdata = small_cohort(100, 2, seed=2, n_genes=40, n_cpgs=30, n_mirnas=10, n_mutation_genes=10, n_proteins=8)
    return mdata, zoo.SeNMo(**FAST).fit(mdata)


def _sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def test_push_and_from_pretrained_repo_id(hub_server, fitted):
    mdata, m = fitted
    sha = m.push_to_hub("me/senmo-demo")
    assert len(sha) == 40
    assert hub_server.requested("POST", "commit")  # a real upload through huggingface_hub
    r = zoo.SeNMo.from_pretrained("me/senmo-demo", revision=sha)
    np.testing.assert_allclose(r.predict(mdata, split="test"), m.predict(mdata, split="test"), rtol=1e-5, atol=1e-6)


def _catalog_entry(tmp_path, name, repo, rev, files, **extra):
    d = tmp_path / "cat" / "models"
    d.mkdir(parents=True, exist_ok=True)
    entry = {"name": name, "title": "t", "description": "d", "architecture": "senmo",
             "source": {"kind": "hf", "repo_id": repo, "repo_type": "model", "revision": rev},
             "files": files, "license": "CC0-1.0", "citation": "c", **extra}
    (d / f"{name}.yaml").write_text(yaml.safe_dump(entry))
    return tmp_path / "cat"


def test_zoo_load_verifies_hashes_and_works_offline(hub_server, fitted, tmp_path, monkeypatch):
    mdata, m = fitted
    ck = tmp_path / "ck"
    m.save_pretrained(ck)
    for f in ck.iterdir():
        rev = hub_server.add_file("model", "lab/tiny", f.name, f)
    files = [{"path": f.name, "sha256": _sha(f)} for f in sorted(ck.iterdir())]
    monkeypatch.setenv("OMICSDATA_CATALOG", str(_catalog_entry(tmp_path, "tiny-senmo", "lab/tiny", rev, files)))
    assert "tiny-senmo" in zoo.list_models(pretrained=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pinned: no warning
        loaded = zoo.load("tiny-senmo")
    np.testing.assert_allclose(loaded.predict(mdata, split="test"), m.predict(mdata, split="test"), rtol=1e-5, atol=1e-6)
    # offline: served from the huggingface_hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n_before = len(hub_server.requested())
    again = zoo.load("tiny-senmo")
    assert len(hub_server.requested()) == n_before
    assert again.predict(mdata, split="test").shape == (int((mdata.obs["split"] == "test").sum()),)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # a wrong hash is refused and names the file
    bad = [dict(f, sha256="0" * 64) if f["path"] == "model.safetensors" else f for f in files]
    monkeypatch.setenv("OMICSDATA_CATALOG", str(_catalog_entry(tmp_path, "tiny-senmo", "lab/tiny", rev, bad)))
    with pytest.raises(ChecksumError, match="model.safetensors"):
        zoo.load("tiny-senmo")


def test_unknown_model_name_suggests():
    with pytest.raises(OmicsDataError, match="senmo-pancancer"):
        zoo.load("senmo-pancancr")


AUTHORS_NAME = "Checkpoint_pancancer_combined_omic_fold{}_for_test.pt"


def test_senmo_pancancer_entry_converts_authors_weights_locally(hub_server, tmp_path):
    """The shipped catalog entry against the authors' file names and layout (folds 1, 2, 10)."""
    from senmo_fixture import reference_risk, write_authors_checkpoint

    from zoo.models.senmo_upstream import authors_features

    states = {}
    for k in (10, 2, 1):
        p = tmp_path / AUTHORS_NAME.format(k)
        states[k] = write_authors_checkpoint(p, hidden=(8, 4), seed=k, fold=k)
        hub_server.add_file("model", "Lab-Rasool/SeNMo", AUTHORS_NAME.format(k), p)
    hub_server.add_file("model", "Lab-Rasool/SeNMo", "README.md", b"# SeNMo\n")
    with pytest.warns(UserWarning, match="not pinned"):
        m = zoo.load("senmo-pancancer")  # the shipped catalog entry: fold 1, raw output
    assert m.activation == "elu" and m.act_type == "None" and not m.bounded_risk
    assert m.schema_["data"]["source"]["file"] == AUTHORS_NAME.format(1)
    feats = authors_features()
    x = np.random.default_rng(0).normal(size=(5, 80697)).astype(np.float32)
    mods, at = {}, 0
    for mod, names in feats.items():
        mods[mod] = ad.AnnData(X=x[:, at:at + len(names)], var=pd.DataFrame(index=names),
                               obs=pd.DataFrame(index=[f"s{i}" for i in range(5)]))
        at += len(names)
    got = m.predict(md.MuData(mods))
    np.testing.assert_allclose(got, reference_risk(states[1], torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, reference_risk(states[10], torch.from_numpy(x)).numpy())
    # converted once, kept in the local cache, and never re-hosted
    n_before = len(hub_server.requested())
    zoo.load("senmo-pancancer")
    assert not [r for r in hub_server.requested()[n_before:] if r[1].endswith(".pt")]
    with pytest.raises(SchemaMismatchError, match="licence"):
        m.push_to_hub("me/rehost")


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_converter_refuses_arbitrary_pickles(tmp_path):
    from zoo.models.senmo_upstream import convert

    p = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {"encoder.0.weight": torch.zeros(2, 2)}, "obj": Evil(tmp_path / "ran")}, p,
               pickle_protocol=4)
    with pytest.raises(FormatError, match="allow-list"):
        convert(p, tmp_path / "out")
    assert not (tmp_path / "ran").exists()
