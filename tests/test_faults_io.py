"""Issue 15, downloads, zoo faults and output hygiene: each fault ends in a clean OmicsDataError
naming the thing, and nothing is lost. Servers are tests/faultserver.py on 127.0.0.1."""
from __future__ import annotations

import ast
import io
import json
import logging
import pickle
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import small_cohort
from faultserver import FaultServer

from omicsdata import progress
from omicsdata.errors import ChecksumError, DownloadError, FormatError, OmicsDataError, SchemaMismatchError
from omicsdata.sources import http
from omicsdata.sources.archive import ArchiveLimitError, safe_extract
from omicsdata.sources.http import DeadlineError, RetryPolicy, SizeLimitError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))


def policy(**kw):
    base = dict(retries=2, backoff=0.01, max_backoff=0.5, timeout=5.0, deadline=30.0)
    base.update(kw)
    return RetryPolicy(**base)


@pytest.fixture
def server():
    with FaultServer(drip_s=0.4, nolength_bytes=4 << 20) as s:
        yield s


# ------------------------------------------------------------------ downloads
def test_slow_drip_fails_at_the_overall_deadline_not_never(server, tmp_path):
    dest = tmp_path / "f.tsv"
    t0 = time.monotonic()
    with pytest.raises(DeadlineError, match="deadline of 1.5 s") as e:
        http.download(f"{server.url}/drip/f.tsv", dest, policy=policy(timeout=5.0, deadline=1.5))
    assert "drip/f.tsv" in str(e.value) and not dest.exists()
    assert time.monotonic() - t0 < len(server.payload) * server.drip_s  # ended long before the body would


def test_body_without_length_is_capped_and_removed(server, tmp_path):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(SizeLimitError, match="OMICSDATA_DOWNLOAD_MAX_BYTES"):
        http.download(f"{server.url}/nolength/f.bin", tmp_path / "f.bin", policy=policy(), max_bytes=1 << 20)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
    assert keep.read_text() == "mine"


def test_cap_comes_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OMICSDATA_DOWNLOAD_MAX_BYTES", str(1 << 20))
    with pytest.raises(SizeLimitError, match=str(1 << 20)):
        http.download(f"{server.url}/nolength/f.bin", tmp_path / "f.bin", policy=policy())
    monkeypatch.setenv("OMICSDATA_DOWNLOAD_MAX_BYTES", "lots")
    with pytest.raises(OmicsDataError, match="OMICSDATA_DOWNLOAD_MAX_BYTES"):
        http.download(f"{server.url}/nolength/f.bin", tmp_path / "f.bin", policy=policy())


def test_body_past_the_expected_size_is_stopped(server, tmp_path):
    with pytest.raises(SizeLimitError, match="expected size"):
        http.download(f"{server.url}/nolength/f.bin", tmp_path / "f.bin", policy=policy(), size=1000)
    assert not list(tmp_path.iterdir())


def test_html_page_with_status_200_is_refused_saying_what_arrived(server, tmp_path):
    with pytest.raises(DownloadError, match="HTML page titled '503 Service Temporarily Unavailable'"):
        http.download(f"{server.url}/html/x.tsv", tmp_path / "x.tsv", policy=policy())
    with pytest.raises(DownloadError, match=r"\.gz data"):
        http.download(f"{server.url}/ok/x.tsv.gz", tmp_path / "x.tsv.gz", policy=policy())
    assert not list(tmp_path.iterdir())


def test_checksum_mismatch_says_what_arrived(server, tmp_path):
    with pytest.raises(ChecksumError, match="what arrived: an HTML page"):
        http.download(f"{server.url}/html/x.txt", tmp_path / "x.txt", md5="0" * 32, sniff_content=False,
                      policy=policy())


@pytest.mark.parametrize("value,expect", [("1", 1.0), ("-5", 0.0), ("soon", None), ("99999", 2.0), ("nan", None)])
def test_retry_after_is_honoured_clamped_or_ignored(server, tmp_path, monkeypatch, value, expect):
    waits = []
    monkeypatch.setattr(http, "_sleep", waits.append)
    pol = policy(retries=3, max_backoff=2.0)
    dest = http.download(f"{server.url}/retry/2/{value}/f.tsv", tmp_path / "f.tsv", policy=pol)
    assert dest.read_bytes() == server.payload and len(waits) == 2
    want = [expect] * 2 if expect is not None else [pol.wait(0), pol.wait(1)]
    assert waits == pytest.approx(want)


def test_429_retry_after_http_date(server, tmp_path, monkeypatch):
    from email.utils import formatdate

    waits = []
    monkeypatch.setattr(http, "_sleep", waits.append)
    date = formatdate(time.time() + 1.5, usegmt=True).replace(" ", "%20")
    http.download(f"{server.url}/429/1/{date}/f.tsv", tmp_path / "f.tsv", policy=policy(max_backoff=2.0))
    assert len(waits) == 1 and 0 <= waits[0] <= 2.0


def test_redirect_loop_and_file_redirect_are_refused(server, tmp_path):
    with pytest.raises(DownloadError, match="redirect loop"):
        http.download(f"{server.url}/loop/f.tsv", tmp_path / "f.tsv", policy=policy())
    with pytest.raises(DownloadError, match="file:///etc/passwd"):
        http.download(f"{server.url}/tofile/f.tsv", tmp_path / "f.tsv", policy=policy())
    with pytest.raises(DownloadError, match="redirect"):
        http.request_json("GET", f"{server.url}/loop/x.json", policy=policy())
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ archives and MAF
def _tar(path: Path, members) -> Path:
    import faults_io

    return faults_io._tar(path, members)


def test_tar_member_checked_against_expected_size(tmp_path):
    tgz = _tar(tmp_path / "a.tar.gz", [("id/a.tsv", b"x" * 100), ("MANIFEST.txt", b"id\n")])
    with pytest.raises(ArchiveLimitError, match="'id/a.tsv' is 100 bytes, expected 99"):
        safe_extract(tgz, tmp_path / "x", expected={"id/a.tsv": 99})
    assert not (tmp_path / "x").exists()
    assert len(safe_extract(tgz, tmp_path / "x", expected={"id/a.tsv": 100}, max_member_bytes=1024)) == 2


def test_tar_member_with_an_empty_name_is_refused(tmp_path):
    from omicsdata.errors import UnsafeArchiveError

    tgz = _tar(tmp_path / "e.tar.gz", [("", b"hello")])
    with pytest.raises(UnsafeArchiveError, match="empty name"):
        safe_extract(tgz, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_gzip_bomb_stops_at_the_header_with_bounded_memory(tmp_path):
    tgz = _tar(tmp_path / "bomb.tar.gz", [("id/f.tsv", 96 << 20)])
    assert tgz.stat().st_size < (1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveLimitError, match="'id/f.tsv' would inflate to"):
            safe_extract(tgz, tmp_path / "x", max_member_bytes=8 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (8 << 20) and not (tmp_path / "x").exists()


def test_maf_header_line_is_length_capped(tmp_path):
    import faults_io

    p = faults_io.write_long_line_maf(tmp_path / "x.maf.gz", 24 << 20)
    tracemalloc.start()
    try:
        from omicsdata.formats.maf import read_maf

        with pytest.raises(FormatError, match=r"x\.maf\.gz, line 2: line longer than"):
            read_maf(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (12 << 20)


# ------------------------------------------------------------------ zoo
FAST = dict(hidden=(16, 8), max_epochs=2, patience=2, batch_size=32, progress=False, random_state=0, n_ensemble=1)


@pytest.fixture(scope="module")
def cohort():
    return small_cohort(120, 3, seed=1, n_genes=40, n_cpgs=20, n_mirnas=10, n_mutation_genes=10, n_proteins=10)


@pytest.fixture(scope="module")
def model(cohort):
    import zoo

    return zoo.SeNMo(**FAST).fit(cohort)


def _train_row(c, k=3):
    return int(np.flatnonzero((c.obs["split"] == "train").to_numpy())[k])


def test_nan_in_one_training_cell_names_modality_feature_sample(cohort):
    import zoo
    from zoo.checks import NonFiniteInputError

    c = cohort.copy()
    X = np.asarray(c["rna"].X, dtype=np.float32).copy()
    r = _train_row(c)
    X[r, 2] = np.nan
    c["rna"].X = X
    with pytest.raises(NonFiniteInputError) as e:
        zoo.SeNMo(**FAST).fit(c)
    msg = str(e.value)
    assert "'rna'" in msg and str(c["rna"].var_names[2]) in msg and str(c.obs_names[r]) in msg


def test_nan_at_predict_time_is_an_error(model, cohort):
    from zoo.checks import NonFiniteInputError

    c = cohort.copy()
    X = np.asarray(c["protein"].X, dtype=np.float32).copy()
    X[7, 0] = np.nan
    c["protein"].X = X
    with pytest.raises(NonFiniteInputError, match=f"'protein', feature '{c['protein'].var_names[0]}'"):
        model.predict(c)
    assert np.isfinite(model.predict(cohort)).all()


def test_all_censored_and_bad_times_are_clear_errors(cohort):
    import zoo

    c = cohort.copy()
    c.obs["os_event"] = 0
    with pytest.raises(SchemaMismatchError, match="censored"):
        zoo.SeNMo(**FAST).fit(c)
    c = cohort.copy()
    c.obs["os_time"] = np.nan
    with pytest.raises(SchemaMismatchError, match="os_time"):
        zoo.SeNMo(**FAST).fit(c)
    c = cohort.copy()
    t = c.obs["os_time"].to_numpy(dtype=float)
    t[_train_row(c, 0)] = -np.inf
    c.obs["os_time"] = t
    with pytest.raises(SchemaMismatchError, match="finite"):
        zoo.SeNMo(**FAST).fit(c)


def test_save_pretrained_refuses_a_users_folder_nothing_deleted(model, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"years")
    with pytest.raises(OmicsDataError, match="nothing was deleted"):
        model.save_pretrained(folder)
    assert (folder / "thesis.docx").read_bytes() == b"years" and sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]
    model.save_pretrained(tmp_path / "ck")
    model.save_pretrained(tmp_path / "ck")  # replacing a checkpoint is fine
    (tmp_path / "ck" / "my-notes.txt").write_text("x")
    with pytest.raises(OmicsDataError, match="my-notes.txt"):
        model.save_pretrained(tmp_path / "ck")
    assert (tmp_path / "ck" / "my-notes.txt").is_file()


class _Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('RAN').write_text('x')",))


@pytest.mark.parametrize("damage,needles", [
    ("pickle", ["config.json", "pickle"]),
    ("absurd", ["config.json", "params.hidden"]),
    ("schema", ["schema.json", "features"]),
    ("binary", ["schema.json", "binary"]),
])
def test_bad_checkpoint_files_are_clear_errors(model, tmp_path, monkeypatch, damage, needles):
    import zoo

    monkeypatch.chdir(tmp_path)
    ck = Path(model.save_pretrained(tmp_path / "ck"))
    if damage == "pickle":
        (ck / "config.json").write_bytes(pickle.dumps(_Boom()))
    elif damage == "absurd":
        cfg = json.loads((ck / "config.json").read_text())
        cfg["params"]["hidden"] = [1e12]
        (ck / "config.json").write_text(json.dumps(cfg))
    elif damage == "schema":
        sch = json.loads((ck / "schema.json").read_text())
        del next(iter(sch["modalities"].values()))["features"]
        (ck / "schema.json").write_text(json.dumps(sch))
    else:
        (ck / "schema.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(OmicsDataError) as e:
        zoo.Estimator.from_pretrained(ck)
    assert all(n in str(e.value) for n in needles), str(e.value)
    assert not (tmp_path / "RAN").exists()


@pytest.mark.parametrize("argv,needle", [
    (["fit", "no-such-dataset", "--out", "OUT"], "unknown dataset"),
    (["fit", "demo-pancancer", "--params", "{oops", "--out", "OUT"], "--params: not valid JSON"),
    (["fit", "demo-pancancer", "--params", '{"no_such_param": 1}', "--out", "OUT"], "no_such_param"),
    (["predict", "NOPE", "demo-pancancer"], "not a checkpoint folder"),
    (["frobnicate"], "invalid choice"),
])
def test_zoo_cli_bad_input_exit_1_one_line(capsys, tmp_path, argv, needle):
    from zoo.cli import main

    argv = [a.replace("OUT", str(tmp_path / "o")).replace("NOPE", str(tmp_path / "nope")) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ hygiene
class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_off_when_not_a_terminal_one_line_per_stage(monkeypatch, caplog):
    monkeypatch.delenv("OMICSDATA_PROGRESS", raising=False)
    err = _Stream(False)
    monkeypatch.setattr(sys, "stderr", err)
    with caplog.at_level(logging.INFO, logger="omicsdata.progress"):
        assert sum(progress.bar(range(50), desc="stage A", unit="x")) == sum(range(50))
        b = progress.bar(total=3, desc="stage B")
        for _ in range(3):
            b.update(1)
        b.close()
    assert "\r" not in err.getvalue()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4 and lines[0].startswith("stage A: started") and "done (3 it" in lines[3]


def test_progress_setting_forces_either(monkeypatch, caplog):
    from tqdm.auto import tqdm

    monkeypatch.setattr(sys, "stderr", _Stream(False))
    monkeypatch.setenv("OMICSDATA_PROGRESS", "1")
    b = progress.bar(total=2, desc="x", disable=False)
    assert isinstance(b, tqdm)
    b.close()
    monkeypatch.setattr(sys, "stderr", _Stream(True))
    assert progress.mode() == "bar"
    monkeypatch.setenv("OMICSDATA_PROGRESS", "0")
    with caplog.at_level(logging.INFO, logger="omicsdata.progress"):
        list(progress.bar(range(3), desc="quiet"))
    assert progress.mode() == "off" and not caplog.records
    monkeypatch.setenv("OMICSDATA_PROGRESS", "maybe")
    with pytest.raises(OmicsDataError, match="OMICSDATA_PROGRESS"):
        progress.bar(range(3))


def _library_files():
    for pkg in ("omicsdata", "zoo"):
        for p in sorted((REPO / pkg).rglob("*.py")):
            yield p


def test_every_tqdm_goes_through_the_helper_and_library_code_never_prints():
    tqdm_sites, prints = [], []
    for p in _library_files():
        tree = ast.parse(p.read_text(), str(p))
        rel = p.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and rel != "omicsdata/progress.py":
                mod = getattr(node, "module", None) or ""
                names = [a.name for a in node.names]
                if mod.startswith("tqdm") or any(n.startswith("tqdm") for n in names):
                    tqdm_sites.append(f"{rel}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print" and not rel.endswith("cli.py"):
                prints.append(f"{rel}:{node.lineno}")
    assert not tqdm_sites, f"use omicsdata.progress.bar instead of tqdm at {tqdm_sites}"
    assert not prints, f"library code logs through logging, never print: {prints}"


def test_nan_policy_zero_is_explicit_recorded_and_warns(cohort, tmp_path):
    import zoo

    c = cohort.copy()
    X = np.asarray(c["rna"].X, dtype=np.float32).copy()
    X[_train_row(c), 2] = np.nan
    X[_train_row(c, 5), 4] = np.nan
    c["rna"].X = X
    m = zoo.SeNMo(**FAST)
    m.nan_policy = "zero"
    with pytest.warns(UserWarning, match="nan_policy='zero'"):
        m.fit(c)
    assert m.schema_["modalities"]["rna"]["nan_policy"] == "zero"
    with pytest.warns(UserWarning, match="replaced"):
        risk = m.predict(c)
    assert np.isfinite(risk).all()
    m.save_pretrained(tmp_path / "ck")
    loaded = zoo.Estimator.from_pretrained(tmp_path / "ck")
    with pytest.warns(UserWarning, match="replaced"):
        np.testing.assert_allclose(loaded.predict(c), risk, rtol=1e-5, atol=1e-6)
