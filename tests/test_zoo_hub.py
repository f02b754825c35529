"""zoo.load / from_pretrained(repo_id) / push_to_hub against the Hub look-alike; SeNMo upstream conversion."""
from __future__ import annotations

import hashlib
import io
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


def _upstream_pt(in_dim=12, hidden=(10, 6, 4), prefix="module.", bounded=True, seed=0) -> tuple[bytes, dict]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    d = in_dim
    for i, h in enumerate(hidden):
        state[f"{prefix}encoder.{i}.0.weight"] = torch.randn(h, d, generator=g) / d ** 0.5
        state[f"{prefix}encoder.{i}.0.bias"] = torch.randn(h, generator=g) * 0.1
        d = h
    state[f"{prefix}classifier.0.weight"] = torch.randn(1, d, generator=g)
    state[f"{prefix}classifier.0.bias"] = torch.zeros(1)
    if bounded:
        state[f"{prefix}output_range"] = torch.tensor([6.0])
        state[f"{prefix}output_shift"] = torch.tensor([-3.0])
    buf = io.BytesIO()
    torch.save({"model_state_dict": state, "epoch": 7, "optimizer_state_dict": {}}, buf)
    return buf.getvalue(), {k[len(prefix):]: v for k, v in state.items()}


def _reference_forward(state, x, n_blocks):
    h = x
    for i in range(n_blocks):
        h = torch.nn.functional.elu(h @ state[f"encoder.{i}.0.weight"].T + state[f"encoder.{i}.0.bias"])
    r = h @ state["classifier.0.weight"].T + state["classifier.0.bias"]
    return (torch.sigmoid(r) * 6 - 3).squeeze(1)


def test_senmo_pancancer_entry_converts_authors_weights_locally(hub_server):
    blob1, _ = _upstream_pt(seed=1)
    blob2, state2 = _upstream_pt(seed=2)
    hub_server.add_file("model", "Lab-Rasool/SeNMo", "README.md", b"# SeNMo\n")
    hub_server.add_file("model", "Lab-Rasool/SeNMo", "checkpoints/fold_1.pt", blob2)
    hub_server.add_file("model", "Lab-Rasool/SeNMo", "checkpoints/fold_2.pt", blob1)
    with pytest.warns(UserWarning, match="not pinned"):
        m = zoo.load("senmo-pancancer")  # the shipped catalog entry, fold 1
    assert m.activation == "elu" and m.bounded_risk
    assert m.schema_["data"]["source"]["file"] == "checkpoints/fold_1.pt"
    x = torch.randn(5, 12)
    ad_ = ad.AnnData(X=x.numpy(), var=pd.DataFrame(index=[f"f{i}" for i in range(12)]),
                     obs=pd.DataFrame(index=[f"s{i}" for i in range(5)]))
    mdata = md.MuData({"omics": ad_})
    np.testing.assert_allclose(m.predict(mdata), _reference_forward(state2, x, 3).numpy(), rtol=1e-5, atol=1e-6)
    # converted once, kept in the local cache, and never re-hosted
    n_before = len(hub_server.requested())
    zoo.load("senmo-pancancer")
    assert not [r for r in hub_server.requested()[n_before:] if r[1].endswith(".pt")]
    with pytest.raises(SchemaMismatchError, match="licence"):
        m.push_to_hub("me/rehost")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_converter_refuses_arbitrary_pickles(tmp_path):
    from zoo.models.senmo_upstream import convert

    p = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {"encoder.0.0.weight": torch.zeros(2, 2)}, "obj": Evil()}, p)
    with pytest.raises(FormatError, match="weights_only"):
        convert(p, tmp_path / "out")
    blob, _ = _upstream_pt(prefix="", bounded=False)
    good = tmp_path / "plain.pt"
    good.write_bytes(blob)
    est = convert(good, tmp_path / "out", features={"rna": [f"g{i}" for i in range(12)]})
    assert not est.bounded_risk and list(est.schema_["modalities"]) == ["rna"]
    with pytest.raises(SchemaMismatchError, match="12 inputs"):
        convert(good, tmp_path / "out2", features=["a", "b"])
