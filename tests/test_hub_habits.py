"""Issue 18 (5): ModelHubMixin keyword arguments, model-index in model cards, one retry layer, offline switches."""
from __future__ import annotations

import logging
import socket

import numpy as np
import pytest
import yaml
from conftest import small_cohort

import zoo
from omicsdata.errors import OmicsDataError
from omicsdata.sources import hf
from omicsdata.sources import http as od_http
from omicsdata.sources.offline import OfflineError

FAST = dict(hidden=(16, 8), max_epochs=2, patience=2, batch_size=32, lr=1e-3, progress=False, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    mdata = small_cohort(100, 2, seed=3, n_genes=30, n_cpgs=20, n_mirnas=8, n_mutation_genes=8, n_proteins=6)
    return mdata, zoo.SeNMo(**FAST).fit(mdata)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def test_model_card_model_index_holds_the_metrics(fitted, tmp_path):
    mdata, m = fitted
    res = m.evaluate(mdata, split="test")
    folder = m.save_pretrained(tmp_path / "ck")
    meta = _front_matter((tmp_path / "ck" / "README.md").read_text())
    assert meta["library_name"] == "omicszoo"
    (idx,) = meta["model-index"]
    assert idx["name"]
    results = [r for r in idx["results"] if r["dataset"]["split"] == "test"]
    assert results and {r["task"]["name"] for r in results} == set(m.schema_["tasks"])
    want = {k: float(v) for k, v in res.items() if k not in ("split", "n") and np.isfinite(float(v))}
    for r in results:
        got = {x["type"]: x["value"] for x in r["metrics"]}
        assert got.keys() == want.keys()
        np.testing.assert_allclose([got[k] for k in want], [want[k] for k in want])
        assert r["dataset"]["name"]
    # huggingface_hub's own reader of the format agrees
    from huggingface_hub.repocard_data import model_index_to_eval_results

    _, evals = model_index_to_eval_results(meta["model-index"])
    test_evals = [e for e in evals if e.dataset_split == "test"]
    assert {e.metric_type for e in test_evals} == set(want)
    assert folder


def test_model_card_without_metrics_has_no_model_index(fitted, tmp_path):
    from zoo.model_card import model_index

    assert model_index("x", ["survival"], None, {}) == []
    assert model_index("x", ["survival"], None, {"test": {"n": 3, "c_index": float("nan")}}) == []


def test_offline_zoo_load_is_one_clear_error_without_retries(monkeypatch, caplog):
    """The shipped entry with the Hub unreachable: one OmicsDataError naming HF_HUB_OFFLINE, no retry loop."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    caplog.set_level(logging.INFO)
    with pytest.raises(OmicsDataError, match="HF_HUB_OFFLINE") as ei:
        zoo.load("senmo-pancancer")
    assert "Lab-Rasool/SeNMo" in str(ei.value) and "cannot be reached" in str(ei.value)
    assert not [r for r in caplog.records if "retry" in r.getMessage().lower()]


def test_unreachable_hub_serves_cached_files(hub_server, fitted, monkeypatch):
    mdata, m = fitted
    sha = m.push_to_hub("me/habits")
    zoo.SeNMo.from_pretrained("me/habits", revision=sha)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    again = zoo.SeNMo.from_pretrained("me/habits", revision=sha)  # from the cache, as with HF_HUB_OFFLINE
    np.testing.assert_allclose(again.predict(mdata, split="test"), m.predict(mdata, split="test"), rtol=1e-6)


def test_from_pretrained_passes_hub_kwargs(hub_server, fitted, tmp_path):
    mdata, m = fitted
    sha = m.push_to_hub("me/kw")
    cache = tmp_path / "mycache"
    n0 = len(hub_server.requested())
    r = zoo.SeNMo.from_pretrained("me/kw", revision=sha, cache_dir=cache, token="hf_user_token")
    assert list(cache.glob("models--me--kw/snapshots/*/model.safetensors"))
    new = hub_server.request_headers[n0:]
    assert new and all(h.get("authorization") == "Bearer hf_user_token" for h in new)
    # local_files_only: no request at all; force_download: the weights are fetched again
    n1 = len(hub_server.requested())
    zoo.SeNMo.from_pretrained("me/kw", revision=sha, cache_dir=cache, local_files_only=True)
    assert len(hub_server.requested()) == n1
    gets = len(hub_server.requested("GET", "model.safetensors"))
    zoo.SeNMo.from_pretrained("me/kw", revision=sha, cache_dir=cache, force_download=True)
    assert len(hub_server.requested("GET", "model.safetensors")) == gets + 1
    with pytest.raises(OmicsDataError, match="not in the local cache"):
        zoo.SeNMo.from_pretrained("me/kw", revision=sha, cache_dir=tmp_path / "empty", local_files_only=True)
    with pytest.raises(TypeError, match="bogus"):
        zoo.SeNMo.from_pretrained("me/kw", revision=sha, bogus=1)
    np.testing.assert_allclose(r.predict(mdata, split="test"), m.predict(mdata, split="test"), rtol=1e-6)


def test_push_to_hub_passes_branch_create_pr_token_private(fitted, monkeypatch):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, **kw):
            calls.append(("init", kw))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", kw))

        def create_branch(self, repo_id, **kw):
            calls.append(("create_branch", kw))

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw))
            return type("Info", (), {"oid": "a" * 40})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    _, m = fitted
    assert m.push_to_hub("me/x", branch="dev", token="hf_t", private=True) == "a" * 40
    kinds = dict(calls)
    assert kinds["init"]["token"] == "hf_t" and kinds["create_repo"]["private"] is True
    assert kinds["create_branch"]["branch"] == "dev"
    assert kinds["upload_folder"]["revision"] == "dev" and kinds["upload_folder"]["create_pr"] is False
    calls.clear()
    m.push_to_hub("me/x", create_pr=True)
    kinds = dict(calls)
    assert "create_branch" not in kinds and kinds["upload_folder"]["create_pr"] is True


def test_omicsdata_offline_hf(hub_server, monkeypatch):
    hub_server.add_file("dataset", "lab/ds", "a.txt", b"alpha")
    hub_server.add_file("dataset", "lab/ds", "b.txt", b"beta")
    p = hf.download_file("lab/ds", "a.txt")
    monkeypatch.setenv("OMICSDATA_OFFLINE", "1")
    n = len(hub_server.requested())
    assert hf.download_file("lab/ds", "a.txt") == p  # cached: still served
    with pytest.raises(OfflineError, match="OMICSDATA_OFFLINE") as ei:
        hf.download_file("lab/ds", "b.txt")
    assert "b.txt" in str(ei.value)
    assert len(hub_server.requested()) == n


def test_omicsdata_offline_http_and_gdc(tmp_path, monkeypatch):
    from httpfiles import FileServer

    from omicsdata.sources.gdc import GDCClient

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "f.csv").write_text("a,b\n1,2\n")
    (tmp_path / "site" / "g.csv").write_text("a,b\n3,4\n")
    with FileServer(tmp_path / "site") as srv:
        got = od_http.download(srv.url + "/f.csv", tmp_path / "raw" / "f.csv")
        monkeypatch.setenv("OMICSDATA_OFFLINE", "yes")
        n = len(srv.requests)
        assert od_http.download(srv.url + "/f.csv", tmp_path / "raw" / "f.csv") == got  # cached
        with pytest.raises(OfflineError, match="OMICSDATA_OFFLINE.*unset"):
            od_http.download(srv.url + "/g.csv", tmp_path / "raw" / "g.csv")
        with pytest.raises(OfflineError, match="OMICSDATA_OFFLINE"):
            od_http.request_json("GET", srv.url + "/f.csv")
        assert len(srv.requests) == n
    monkeypatch.setenv("OMICSDATA_GDC_API", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(OfflineError, match="OMICSDATA_OFFLINE"):
        GDCClient().files(["TCGA-X"], "Gene Expression Quantification")
    monkeypatch.delenv("OMICSDATA_OFFLINE")
    assert not (tmp_path / "raw" / "g.csv").exists()
