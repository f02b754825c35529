"""omicsdata.sources.hf against the Hub look-alike server (tests/hubserver.py)."""
from __future__ import annotations

import hashlib

import pytest

from omicsdata.errors import ChecksumError, DownloadError
from omicsdata.sources import hf

DS = "omics/toy-ds"
MODEL = "omics/toy-model"


@pytest.fixture
def repos(hub_server):
    hub_server.add_file("dataset", DS, "README.md", b"# toy\n")
    hub_server.add_file("dataset", DS, "data/train.csv", b"a,b\n1,2\n")
    hub_server.add_file("dataset", DS, "data/test.csv", b"a,b\n3,4\n")
    hub_server.add_file("dataset", DS, "meta/info.json", b'{"n": 2}')
    hub_server.add_file("model", MODEL, "config.json", b'{"d": 8}')
    hub_server.add_file("model", MODEL, "weights/model.bin", bytes(range(256)) * 40)
    hub_server.requests.clear()
    return hub_server


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_download_dataset_and_model_files_at_pinned_revision(repos):
    ds_sha = repos.commit_sha("dataset", DS)
    p = hf.download_file(DS, "data/train.csv", repo_type="dataset", revision=ds_sha, sha256=_sha(b"a,b\n1,2\n"))
    assert p.read_bytes() == b"a,b\n1,2\n"
    assert ds_sha in str(p)  # lives in the snapshot of that commit

    m_sha = repos.commit_sha("model", MODEL)
    w = hf.download_file(MODEL, "weights/model.bin", repo_type="model", revision=m_sha)
    assert w.read_bytes() == bytes(range(256)) * 40
    assert ("GET", f"/{MODEL}/resolve/{m_sha}/weights/model.bin") in repos.requests
    assert ("GET", f"/datasets/{DS}/resolve/{ds_sha}/data/train.csv") in repos.requests

    # second call at a pinned sha is served from cache without any request
    n = len(repos.requests)
    assert hf.download_file(DS, "data/train.csv", revision=ds_sha) == p
    assert len(repos.requests) == n


def test_cache_location_follows_env_at_call_time(repos, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    p = hf.download_file(DS, "README.md")
    assert str(p).startswith(str(tmp_path / "elsewhere"))


def test_snapshot_with_patterns(repos):
    snap = hf.snapshot(DS, repo_type="dataset", allow_patterns=["data/*.csv"])
    got = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
    assert got == ["data/test.csv", "data/train.csv"]
    assert snap.name == repos.commit_sha("dataset", DS)
    assert not repos.requested("GET", "meta/info.json")


def test_list_files(repos):
    assert hf.list_files(DS, repo_type="dataset") == ["README.md", "data/test.csv", "data/train.csv",
                                                       "meta/info.json"]
    assert hf.list_files(MODEL, repo_type="model") == ["config.json", "weights/model.bin"]
    assert hf.resolve_revision(MODEL, repo_type="model") == repos.commit_sha("model", MODEL)


def test_wrong_sha256_raises_and_does_not_leave_file(repos):
    with pytest.raises(ChecksumError, match="data/train.csv"):
        hf.download_file(DS, "data/train.csv", sha256="0" * 64)
    # the bad copy is gone: a new download hits the server again
    repos.requests.clear()
    p = hf.download_file(DS, "data/train.csv", sha256=_sha(b"a,b\n1,2\n"))
    assert p.read_bytes() == b"a,b\n1,2\n"
    assert repos.requested("GET", "data/train.csv")


def test_unknown_file_revision_repo(repos):
    with pytest.raises(hf.HubNotFoundError, match="nope.csv") as ei:
        hf.download_file(DS, "nope.csv")
    assert ei.value.what == "file" and DS in str(ei.value)

    with pytest.raises(DownloadError, match="v9.9") as ei:
        hf.download_file(DS, "data/train.csv", revision="v9.9")
    assert ei.value.what == "revision"

    with pytest.raises(DownloadError, match="omics/missing") as ei:
        hf.download_file("omics/missing", "x.bin", repo_type="model")
    assert ei.value.what == "repo"

    with pytest.raises(DownloadError, match="omics/missing"):
        hf.snapshot("omics/missing", repo_type="dataset")
    with pytest.raises(DownloadError, match="v9.9"):
        hf.snapshot(DS, revision="v9.9")
    with pytest.raises(DownloadError, match="omics/missing"):
        hf.list_files("omics/missing")
    # not-found is never retried
    assert len(repos.requested(contains="omics/missing/resolve")) == 1


def test_server_error_is_not_retried_on_top_of_huggingface_hub(repos):
    # one retry layer only (huggingface_hub's, issue 18): a 500 on the body is reported, then a new call works
    repos.fail_next("data/test.csv", times=1, status=500, method="GET")
    with pytest.raises(DownloadError, match="data/test.csv"):
        hf.download_file(DS, "data/test.csv")
    assert len(repos.requested("GET", "data/test.csv")) == 1
    assert hf.download_file(DS, "data/test.csv").read_bytes() == b"a,b\n3,4\n"


def test_snapshot_repo_info_server_error(repos):
    repos.fail_next(f"/api/datasets/{DS}/revision/main", times=1, status=503)
    with pytest.raises(DownloadError, match="503"):
        hf.snapshot(DS, allow_patterns="meta/*")
    snap = hf.snapshot(DS, allow_patterns="meta/*")
    assert (snap / "meta" / "info.json").read_bytes() == b'{"n": 2}'
    assert len(repos.requested("GET", f"/api/datasets/{DS}/revision/main")) == 2


def test_head_error_then_success(repos):
    repos.fail_next("meta/info.json", times=1, status=503, method="HEAD")
    p = hf.download_file(DS, "meta/info.json")  # huggingface_hub retries the HEAD itself
    assert p.read_bytes() == b'{"n": 2}'


def test_truncated_body_is_resumed(repos):
    repos.truncate_next("weights/model.bin", keep_bytes=100)
    p = hf.download_file(MODEL, "weights/model.bin", repo_type="model",
                         sha256=_sha(bytes(range(256)) * 40))
    assert p.stat().st_size == 10240


def test_persistent_server_error_is_download_error(repos):
    repos.fail_next("data/test.csv", times=100, status=500, method="GET")
    with pytest.raises(DownloadError, match="data/test.csv"):
        hf.download_file(DS, "data/test.csv")
    assert len(repos.requested("GET", "data/test.csv")) == 1


def test_offline_served_from_cache(repos, monkeypatch):
    p = hf.download_file(DS, "data/train.csv")
    snap = hf.snapshot(DS, allow_patterns="data/*")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repos.requests.clear()
    assert hf.download_file(DS, "data/train.csv") == p
    assert hf.snapshot(DS, allow_patterns="data/*") == snap
    assert "data/train.csv" in hf.list_files(DS)
    assert repos.requests == []
    with pytest.raises(hf.HubOfflineError, match="meta/info.json"):
        hf.download_file(DS, "meta/info.json")
    assert repos.requests == []


def test_push_then_download_back(hub_server, tmp_path):
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text('{"layers": 2}')
    (src / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 5000)
    (src / "README.md").write_text("---\nlicense: mit\n---\n# pushed\n")

    sha = hf.upload_folder(src, "me/pushed", repo_type="model", token="hf_fake_token")
    assert sha == hub_server.commit_sha("model", "me/pushed")
    assert hf.list_files("me/pushed", repo_type="model", revision=sha) == [
        "README.md", "config.json", "sub/weights.bin"]
    p = hf.download_file("me/pushed", "sub/weights.bin", repo_type="model", revision=sha,
                         sha256=_sha(b"\x00\x01" * 5000))
    assert p.read_bytes() == b"\x00\x01" * 5000

    # pushing again (one changed file) makes a new commit; unchanged files are skipped
    (src / "config.json").write_text('{"layers": 3}')
    sha2 = hf.upload_folder(src, "me/pushed", repo_type="model", token="hf_fake_token")
    assert sha2 != sha
    assert hub_server.commits[-1]["paths"] == ["config.json"]
    assert hf.download_file("me/pushed", "config.json", repo_type="model",
                            revision=sha2).read_text() == '{"layers": 3}'


def test_raw_huggingface_hub_against_server(repos, tmp_path):
    """Other engineers may call huggingface_hub directly (endpoint= passed explicitly)."""
    import huggingface_hub as hh

    api = hh.HfApi(endpoint=repos.url, token="hf_fake")
    api.create_repo("me/raw", repo_type="dataset")
    with pytest.raises(hh.errors.HfHubHTTPError):
        api.create_repo("me/raw", repo_type="dataset")  # 409
    api.create_repo("me/raw", repo_type="dataset", exist_ok=True)
    info = api.upload_file(path_or_fileobj=b"xyz", path_in_repo="a/b.txt", repo_id="me/raw", repo_type="dataset")
    p = hh.hf_hub_download("me/raw", "a/b.txt", repo_type="dataset", revision=info.oid,
                           endpoint=repos.url, cache_dir=str(tmp_path / "c"))
    assert open(p, "rb").read() == b"xyz"
    tree = list(api.list_repo_tree("me/raw", repo_type="dataset"))
    assert [(type(e).__name__, e.path) for e in tree] == [("RepoFolder", "a")]
    info = api.get_paths_info("me/raw", ["a/b.txt", "a"], repo_type="dataset")
    assert sorted(type(e).__name__ for e in info) == ["RepoFile", "RepoFolder"]


@pytest.fixture
def lfs_server(hub_server):
    hub_server.lfs_threshold = 4096  # files of 4 KiB or more behave as LFS files (redirect to a "CDN")
    return hub_server


def test_lfs_file_download_follows_cdn_redirect(lfs_server):
    big = bytes(range(256)) * 64  # 16 KiB
    lfs_server.add_file("model", MODEL, "weights/big.safetensors", big)
    lfs_server.add_file("model", MODEL, "config.json", b"{}")
    sha = lfs_server.commit_sha("model", MODEL)
    p = hf.download_file(MODEL, "weights/big.safetensors", repo_type="model", revision=sha, sha256=_sha(big))
    assert p.read_bytes() == big
    # the cache blob is named by the sha256 (X-Linked-Etag), and bytes came from the CDN route
    assert p.resolve().name == _sha(big)
    assert lfs_server.requested("GET", f"/cdn/{_sha(big)}")
    snap = hf.snapshot(MODEL, repo_type="model", revision=sha, allow_patterns="*.json")
    assert (snap / "config.json").read_bytes() == b"{}"


def test_lfs_download_resumes_after_truncation(lfs_server):
    big = bytes(range(256)) * 64
    lfs_server.add_file("model", MODEL, "big.bin", big)
    lfs_server.truncate_next("/cdn/", keep_bytes=5000)
    p = hf.download_file(MODEL, "big.bin", repo_type="model", sha256=_sha(big))
    assert p.read_bytes() == big
    gets = [(r, h) for r, h in zip(lfs_server.requests, lfs_server.request_headers)
            if r[0] == "GET" and r[1].startswith("/cdn/")]
    assert len(gets) == 2  # huggingface_hub retried the broken transfer itself
    # (it resumes with Range only for whole 10 MB chunks already written; here it restarts)


@pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")  # inside huggingface_hub's LFS PUT
def test_push_lfs_files_then_download_back(lfs_server, tmp_path):
    src = tmp_path / "ckpt"
    src.mkdir()
    big = b"\x07" * 10000
    (src / "model.safetensors").write_bytes(big)
    (src / "config.json").write_text("{}")
    sha = hf.upload_folder(src, "me/lfs-model", repo_type="model", token="hf_fake_token")
    assert lfs_server.requested("PUT", "/lfs-upload/")
    assert lfs_server.requested("POST", "/me/lfs-model.git/info/lfs/objects/batch")
    p = hf.download_file("me/lfs-model", "model.safetensors", repo_type="model", revision=sha, sha256=_sha(big))
    assert p.read_bytes() == big
    # unchanged LFS file is skipped on a second push
    (src / "config.json").write_text('{"x": 1}')
    n_put = len(lfs_server.requested("PUT"))
    hf.upload_folder(src, "me/lfs-model", repo_type="model", token="hf_fake_token")
    assert len(lfs_server.requested("PUT")) == n_put
    assert lfs_server.commits[-1]["paths"] == ["config.json"]


def test_server_range_and_error_headers(repos):
    """The server answers Range requests and tags errors the way huggingface_hub expects."""
    import httpx2

    base = f"{repos.url}/{MODEL}/resolve/main/weights/model.bin"
    r = httpx2.get(base, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == (bytes(range(256)) * 40)[10:20]
    assert r.headers["content-range"] == "bytes 10-19/10240"
    assert r.headers["x-repo-commit"] == repos.commit_sha("model", MODEL)
    r = httpx2.head(f"{repos.url}/{MODEL}/resolve/main/nope.bin")
    assert r.status_code == 404 and r.headers["x-error-code"] == "EntryNotFound"
    r = httpx2.head(f"{repos.url}/{MODEL}/resolve/v0/config.json")
    assert r.headers["x-error-code"] == "RevisionNotFound"
    r = httpx2.get(f"{repos.url}/api/datasets/omics/missing/revision/main")
    assert r.headers["x-error-code"] == "RepoNotFound"
