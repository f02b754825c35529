"""Rows of a remote .npy by HTTP range (omicsdata.datasets.omnicell_tosg.npy_rows + sources.hf.read_range)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from omicsdata.datasets.omnicell_tosg import npy_rows
from omicsdata.datasets.omnicell_tosg.npy_rows import RemoteNpy, open_hub_npy, parse_header, plan_ranges
from omicsdata.errors import DownloadError, FormatError
from omicsdata.sources import hf

REPO = "FuhaiLiAiLab/OmniCellTOSG_Dataset"


def _npy(arr, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2"])
def test_header_parsed_by_numpy_gives_the_data_offset(version, dtype):
    arr = np.arange(7 * 5, dtype=dtype).reshape(7, 5)
    raw = _npy(arr, version)
    lay = parse_header(raw[:npy_rows.header_length(raw[:12], "x.npy")], "x.npy")
    assert lay.shape == (7, 5) and lay.dtype == np.dtype(dtype)
    assert raw[lay.offset:] == arr.tobytes() and lay.nbytes == len(raw)


def test_bad_headers_are_refused_by_name():
    with pytest.raises(FormatError, match="a.npy.*Fortran"):
        parse_header(_npy(np.asfortranarray(np.ones((3, 4), np.float32))), "a.npy")
    with pytest.raises(FormatError, match="b.npy.*2-D.*\\[6\\]"):
        parse_header(_npy(np.ones(6, np.float32)), "b.npy")
    with pytest.raises(FormatError, match="c.npy.*dtype object"):
        parse_header(_npy(np.array([[{"a": 1}]], dtype=object)), "c.npy")
    with pytest.raises(FormatError, match="d.npy.*magic"):
        parse_header(b"PK\x03\x04" + b"\0" * 20, "d.npy")


def test_plan_ranges_joins_adjacent_rows_only():
    assert plan_ranges([1, 2, 3, 7, 9, 10], row_bytes=8) == [(1, 4), (7, 8), (9, 11)]
    assert plan_ranges([1, 2, 3, 7, 9, 10], row_bytes=8, max_gap=1) == [(1, 4), (7, 11)]
    assert plan_ranges(list(range(10)), row_bytes=8, max_bytes=24) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert plan_ranges([], row_bytes=8) == []


def _serve(hub_server, tmp_path, n_shards=1, rows=50, cols=16, lfs=False, seed=0):
    rng = np.random.default_rng(seed)
    arrs = {}
    for k in range(n_shards):
        arr = rng.poisson(1.0, size=(rows, cols)).astype(np.float32)
        name = f"expression_matrix/cellxgene_lung_part_{k}.npy"
        hub_server.add_file("dataset", REPO, name, _npy(arr))
        arrs[name] = arr
    if lfs:
        hub_server.lfs_threshold = 1  # every file is an LFS file: resolve answers 302 to the "CDN"
    return arrs, hub_server.commit_sha("dataset", REPO)


@pytest.mark.parametrize("lfs", [False, True])
def test_rows_by_range_equal_numpy_and_are_cached(hub_server, tmp_path, lfs):
    arrs, commit = _serve(hub_server, tmp_path, lfs=lfs)
    name, arr = next(iter(arrs.items()))
    want = np.array([40, 3, 4, 5, 3, 17, 49, 0])
    npy = open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c")
    got = npy.read_rows(want)
    np.testing.assert_array_equal(got, arr[want])
    uniq = np.unique(want)
    assert npy.stats.bytes_fetched == min(4096, len(_npy(arr))) + len(uniq) * arr.shape[1] * 4
    assert npy.stats.requests == 1 + len(plan_ranges(uniq, arr.shape[1] * 4))
    assert hub_server.bytes_sent() == npy.stats.bytes_fetched  # LFS: the bytes come from /cdn/
    assert npy.source["commit"] == commit and npy.source["size"] == len(_npy(arr))
    if lfs:
        assert any(p.startswith("/cdn/") for _, p in hub_server.requests)
    # a second reader of the same commit asks the server for nothing it already holds
    sent = hub_server.bytes_sent()
    again = open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c")
    np.testing.assert_array_equal(again.read_rows(want[::-1]), arr[want[::-1]])
    assert hub_server.bytes_sent() == sent and again.stats.rows_from_cache == len(uniq)
    # a damaged cached row is noticed (sha256 in its name) and fetched again
    victim = next((tmp_path / "c").rglob("3.*.bin"))
    victim.write_bytes(b"\0" * victim.stat().st_size)
    third = open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c")
    np.testing.assert_array_equal(third.read_rows([3]), arr[[3]])
    assert third.stats.rows_fetched == 1


def test_offline_serves_cached_rows_only(hub_server, tmp_path, monkeypatch):
    arrs, _ = _serve(hub_server, tmp_path)
    name, arr = next(iter(arrs.items()))
    open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c").read_rows([1, 2])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    npy = open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c")
    np.testing.assert_array_equal(npy.read_rows([2, 1]), arr[[2, 1]])
    with pytest.raises(hf.HubOfflineError, match="offline"):
        npy.read_rows([9])
    with pytest.raises(hf.HubOfflineError, match="no earlier read"):
        open_hub_npy(REPO, "expression_matrix/other.npy", revision="main", cache_root=tmp_path / "c")


def test_transient_failures_are_retried_and_bad_answers_refused(hub_server, tmp_path, monkeypatch):
    monkeypatch.setattr(hf, "BACKOFF", 0.0)
    arrs, _ = _serve(hub_server, tmp_path)
    name, arr = next(iter(arrs.items()))
    npy = open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c")
    hub_server.fail_next(name, times=1, status=503)
    hub_server.truncate_next(name, times=1, keep_bytes=3)
    np.testing.assert_array_equal(npy.read_rows([5]), arr[[5]])
    hub_server.fail_next(name, times=hf.RETRIES + 1, status=503)
    with pytest.raises(DownloadError, match=f"{name}.*503"):
        npy.read_rows([6])
    # the file changed size under the same URL: refused, naming the file
    with pytest.raises(DownloadError, match="expected 1"):
        hf.read_range(npy.source["url"], 0, 10, size=1, where=name)
    # a server that ignores Range is not read whole
    class NoRange:
        status_code = 200
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    class Session:
        def stream(self, *a, **k):
            return NoRange()

    monkeypatch.setattr("huggingface_hub.utils.get_session", lambda: Session())
    with pytest.raises(DownloadError, match="HTTP 200.*not 206"):
        hf.read_range(npy.source["url"], 0, 10, where=name)


def test_truncated_file_is_refused(tmp_path):
    arr = np.ones((10, 4), np.float32)
    raw = _npy(arr)[:-16]  # one row short
    with pytest.raises(FormatError, match="t.npy.*the file is"):
        RemoteNpy("t.npy", len(raw), lambda a, b: raw[a:b], tmp_path / "c", {"id": 1})


def test_sampling_2000_cells_from_3_shards_reads_a_fraction(hub_server, tmp_path):
    """The figure: bytes downloaded to sample 2,000 cells of a generated 3-shard set, against the shards' size."""
    rows, cols = 4000, 64
    arrs, _ = _serve(hub_server, tmp_path, n_shards=3, rows=rows, cols=cols, lfs=True)
    total = sum(len(_npy(a)) for a in arrs.values())
    rng = np.random.default_rng(0)
    cells = rng.choice(3 * rows, size=2000, replace=False)
    fetched = 0
    for k, (name, arr) in enumerate(arrs.items()):
        mine = cells[(cells // rows) == k] % rows
        npy = open_hub_npy(REPO, name, revision="main", cache_root=tmp_path / "c")
        np.testing.assert_array_equal(npy.read_rows(mine), arr[mine])
        fetched += npy.stats.bytes_fetched
    assert fetched == hub_server.bytes_sent("/cdn/") == 3 * 4096 + 2000 * cols * 4
    assert fetched < total
    print(f"\n2,000 of {3 * rows:,} cells ({cols} float32 columns): {fetched:,} of {total:,} bytes ({fetched / total:.1%})")
