"""GDC source against the look-alike server: paging, resume, retries, md5, unsafe archives, bad rows."""
from __future__ import annotations

import hashlib

import pytest
from gdcserver import GDCServer

import omicsdata as od
from omicsdata import synth, synth_gdc
from omicsdata.errors import ChecksumError, DownloadError, FormatError, UnsafeArchiveError
from omicsdata.sources import http
from omicsdata.sources.gdc import GDCClient, api_base

FAST = http.RetryPolicy(retries=3, backoff=0.01, timeout=10)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("gdcraw-small")
    return synth_gdc.write_gdc_raw(root, synth.CohortSpec(n_patients=8, n_cancer_types=1, n_genes=300, n_cpgs=200,
                                                       n_mirnas=50, n_mutation_genes=60, n_proteins=20, seed=3))


@pytest.fixture()
def server(raw, monkeypatch):
    with GDCServer(raw["root"], page_cap=3) as srv:
        monkeypatch.setenv("OMICSDATA_GDC_API", srv.url)
        yield srv


def client(**kw):
    return GDCClient(policy=FAST, **kw)


def rna_hits(c):
    return c.files(["TCGA-BRCA"], "Gene Expression Quantification", "STAR - Counts")


def test_api_base_from_env(server):
    assert api_base() == server.url
    assert GDCClient().base == server.url


def test_query_pages_until_total(server, raw):
    c = client()
    hits = rna_hits(c)
    want = [f for f in raw["files"] if f["data_type"] == "Gene Expression Quantification"]
    assert sorted(h["file_id"] for h in hits) == sorted(f["file_id"] for f in want)
    assert len(hits) > 3  # more than one page of 3
    assert [h["file_id"] for h in hits] == sorted(h["file_id"] for h in hits)  # explicit sort
    assert {"file_id", "file_name", "md5sum", "file_size", "associated_entities"} <= set(hits[0])
    assert "local_path" not in hits[0]
    cases = c.cases(["TCGA-BRCA"])
    assert len(cases) == 8 and "demographic" in cases[0] and "diagnoses" in cases[0]


def test_single_download_md5_and_cache(server):
    c = client()
    h = rna_hits(c)[0]
    p = c.download_one(h)
    assert p == c.cache_dir / h["file_id"] / h["file_name"]
    assert hashlib.md5(p.read_bytes()).hexdigest() == h["md5sum"]
    n = len(server.log)
    out = c.download([h])
    assert out[h["file_id"]] == p and len(server.log) == n  # cached: no request


def test_dropped_connection_is_resumed(server):
    c = client()
    h = rna_hits(c)[1]
    server.faults.append({"kind": "drop", "file_id": h["file_id"]})
    p = c.download_one(h)
    assert hashlib.md5(p.read_bytes()).hexdigest() == h["md5sum"]
    gets = [r for m, path, r in server.log if path == f"/data/{h['file_id']}"]
    assert gets[0] is None and gets[1] == f"bytes={h['file_size'] // 2}-"  # second request asked for the rest


def test_interrupted_part_resumes_in_a_later_run(server):
    h = rna_hits(client())[2]
    server.faults.append({"kind": "drop", "file_id": h["file_id"]})
    c0 = GDCClient(policy=http.RetryPolicy(retries=0, backoff=0, timeout=10))
    with pytest.raises(DownloadError, match=h["file_id"]):
        c0.download_one(h)
    dest = c0.local_path(h)
    assert not dest.exists() and http.part_path(dest).stat().st_size == h["file_size"] // 2
    client().download([h])
    assert dest.is_file() and not http.part_path(dest).exists()
    assert server.log[-1][2] == f"bytes={h['file_size'] // 2}-"


def test_500_then_success_is_retried(server):
    c = client()
    h = rna_hits(c)[3]
    server.faults.append({"kind": "status", "path": f"/data/{h['file_id']}", "code": 500})
    server.faults.append({"kind": "status", "path": "/files", "code": 503})
    assert len(rna_hits(c)) > 3
    c.download_one(h)
    assert [p for _, p, _ in server.log].count(f"/data/{h['file_id']}") == 2


def test_persistent_500_fails_clearly(server):
    c = client()
    h = rna_hits(c)[4]
    for _ in range(4):
        server.faults.append({"kind": "status", "path": f"/data/{h['file_id']}", "code": 500})
    with pytest.raises(DownloadError, match=f"{h['file_id']}.*4 attempts.*HTTP 500"):
        c.download_one(h)


def test_wrong_md5_is_an_error_and_nothing_is_kept(server):
    c = client()
    h = rna_hits(c)[5]
    server.faults.append({"kind": "corrupt", "file_id": h["file_id"]})
    with pytest.raises(ChecksumError, match=f"{h['file_id']}.*md5"):
        c.download_one(h)
    dest = c.local_path(h)
    assert not dest.exists() and not http.part_path(dest).exists()


def test_batch_tar_download(server):
    c = client(batch_max_files=4)
    hits = c.files(["TCGA-BRCA"], "miRNA Expression Quantification", "BCGSC miRNA Profiling")
    out = c.download(hits)
    assert len(out) == len(hits) and c.stats["batches"] >= 2
    assert sum(1 for m, p, _ in server.log if (m, p) == ("POST", "/data")) == c.stats["batches"]
    for h in hits:
        assert hashlib.md5(out[h["file_id"]].read_bytes()).hexdigest() == h["md5sum"]
    assert not [p for p in c.cache_dir.iterdir() if p.name.startswith(".tmp-")]


def test_batch_wrong_md5(server):
    c = client()
    hits = c.files(["TCGA-BRCA"], "Protein Expression Quantification")
    server.faults.append({"kind": "corrupt", "file_id": hits[1]["file_id"]})
    with pytest.raises(ChecksumError, match=hits[1]["file_id"]):
        c.download(hits)
    assert not c.local_path(hits[1]).exists()


def test_archive_member_with_dotdot_is_rejected(server, tmp_path):
    c = client()
    hits = c.files(["TCGA-BRCA"], "Methylation Beta Value", "SeSAMe Methylation Beta Estimation")
    server.faults.append({"kind": "evil_tar", "member": "../x"})
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./x'"):
        c.download(hits)
    for h in hits:
        assert not c.local_path(h).exists()
    assert not (c.cache_dir / "x").exists() and not (c.cache_dir.parent / "x").exists()
    assert not [p for p in c.cache_dir.iterdir() if p.name.startswith(".tmp-")]


def test_malformed_row_names_file_and_line(raw, tmp_path, monkeypatch):
    import json
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(raw["root"], root)
    files = json.loads((root / "files.json").read_text())
    f = next(x for x in files if x["data_type"] == "Gene Expression Quantification")
    p = root / "files" / f["file_id"] / f["file_name"]
    lines = p.read_text().splitlines(keepends=True)
    lines[20] = lines[20].replace("\tprotein_coding\t", "\tprotein_coding\tnot-a-number\t", 1)
    p.write_text("".join(lines))
    f["md5sum"] = hashlib.md5(p.read_bytes()).hexdigest()
    f["file_size"] = p.stat().st_size
    (root / "files.json").write_text(json.dumps(files))
    with GDCServer(root) as srv:
        monkeypatch.setenv("OMICSDATA_GDC_API", srv.url)
        with pytest.raises(FormatError) as ei:
            od.build("gdc-pancancer", projects=["TCGA-BRCA"], modalities=["rna"], progress=False)
    msg = str(ei.value)
    assert f["file_name"] in msg and "line 21" in msg
    assert not (od.api.store_path("gdc-pancancer")).exists()  # no store left behind


def test_batch_member_size_is_checked_against_file_size_before_extraction(server):
    """Issue 15: a /data batch member whose size is not the API's file_size is refused at its tar header."""
    from omicsdata.sources.archive import ArchiveLimitError

    c = client()
    hits = c.files(["TCGA-BRCA"], "Protein Expression Quantification")
    assert len(hits) > 1
    hits[1] = dict(hits[1], file_size=int(hits[1]["file_size"]) - 1, md5sum=None)
    with pytest.raises(ArchiveLimitError, match=f"{hits[1]['file_id']}/.*expected {hits[1]['file_size']}"):
        c.download(hits)
    for h in hits:
        assert not c.local_path(h).exists()
    assert not [p for p in c.cache_dir.iterdir() if p.name.startswith(".tmp-")]
