"""mogonet-rosmap / mogonet-brca: the authors' file layout served on 127.0.0.1, reached through
$OMICSDATA_HTTP_MIRROR, built into a store and streamed; pins, mirrors and format errors."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from httpfiles import FileServer

import omicsdata as od
from omicsdata.builders import mogonet_files as mf
from omicsdata.catalog import DATASETS_DIR
from omicsdata.errors import CatalogError, ChecksumError, DownloadError, FormatError
from omicsdata.sources import http

ROSMAP_CLASSES = ["Normal Control", "Alzheimer's Disease"]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _card(name: str) -> dict:
    return yaml.safe_load(DATASETS_DIR.joinpath(name.replace("-", "_"), "card.yaml").read_text())


def _user_card_with_pins(tmp_path, name: str, folder: Path, ds: str, monkeypatch) -> dict:
    """A $OMICSDATA_CATALOG copy of the built-in card whose pins are the served files' sha256."""
    card = _card(name)
    card["source"]["files"] = {f"{ds}/{f}": _sha(folder / ds / f) for f in mf.file_names()}
    cat = tmp_path / "catalog"
    cat.mkdir(exist_ok=True)
    (cat / f"{name}.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(cat))
    return card


@pytest.fixture
def rosmap_site(tmp_path, monkeypatch):
    """Generated ROSMAP-layout files served under <server>/mirror/, with the mirror rule set."""
    site = tmp_path / "site"
    truth = mf.write_synthetic(site / "mirror", "ROSMAP", n_train=50, n_test=24, n_features=(12, 10, 8), seed=3)
    with FileServer(site) as srv:
        upstream = _card("mogonet-rosmap")["source"]["location"]
        monkeypatch.setenv(http.MIRROR_ENV, f"{upstream}={srv.url}/mirror")
        yield srv, site / "mirror", truth


def test_rosmap_end_to_end_through_mirror(rosmap_site, tmp_path, monkeypatch):
    srv, folder, truth = rosmap_site
    _user_card_with_pins(tmp_path, "mogonet-rosmap", folder, "ROSMAP", monkeypatch)
    mdata = od.load("mogonet-rosmap")
    # every file came through the mirror, once each
    got = srv.paths_requested("GET")
    assert sorted(got) == sorted(f"mirror/ROSMAP/{f}" for f in mf.file_names())
    assert list(mdata.mod) == ["mrna", "methylation", "mirna"]
    for v, mod in mf.VIEWS.items():
        X = np.asarray(mdata[mod].X)
        tr, te = truth["views"][v]
        np.testing.assert_allclose(X, np.vstack([tr, te]), rtol=1e-6)
        assert list(mdata[mod].var_names) == truth["featnames"][v]
    obs = mdata.obs
    codes = np.concatenate([truth["labels_tr"], truth["labels_te"]])
    np.testing.assert_array_equal(obs["label_code"].to_numpy(), codes)
    assert list(obs["label"].cat.categories) == ROSMAP_CLASSES
    assert [ROSMAP_CLASSES.index(s) for s in obs["label"].astype(str)] == codes.tolist()
    # published split kept; val carved from train only, stratified
    pub = obs["published_split"].astype(str).to_numpy()
    split = obs["split"].astype(str).to_numpy()
    assert (pub == "train").sum() == 50 and (pub == "test").sum() == 24
    assert set(split[pub == "test"]) == {"test"} and set(split[pub == "train"]) == {"train", "val"}
    for k in (0, 1):
        n_k = ((pub == "train") & (codes == k)).sum()
        v_k = ((split == "val") & (codes == k)).sum()
        assert abs(v_k - 0.2 * n_k) <= 1
    rep = mdata.uns["omicsdata"]["extra"]["report"]
    assert rep["unpinned"] == [] and rep["base_url"].endswith("9ed714f5c6f3e5a30178202e5d09d763fce67398")
    # store -> batches
    ds = od.torch.MultiOmicsDataset(mdata, split="test", targets=["label_code"])
    b = ds[0]
    assert b["mrna"].shape[-1] == 12 and b["mirna"].shape[-1] == 8


def test_builtin_pins_refuse_other_bytes_and_keep_nothing(rosmap_site, omicsdata_home):
    # the built-in card pins the real files: generated ones must be refused, naming the file
    with pytest.raises(ChecksumError, match=r"ROSMAP/1_tr\.csv.*via mirror"):
        od.build("mogonet-rosmap")
    leftovers = [p for p in (omicsdata_home / "raw").rglob("1_tr.csv*")]
    assert leftovers == []
    assert not (omicsdata_home / "stores" / "mogonet-rosmap").exists() or \
        not any((omicsdata_home / "stores" / "mogonet-rosmap").iterdir())


def test_val_fraction_and_seed_are_options(rosmap_site, tmp_path, monkeypatch):
    srv, folder, truth = rosmap_site
    _user_card_with_pins(tmp_path, "mogonet-rosmap", folder, "ROSMAP", monkeypatch)
    a = od.load("mogonet-rosmap", val_fraction=0.3, seed=1).obs["split"].astype(str).to_numpy()
    b = od.load("mogonet-rosmap", val_fraction=0.3, seed=2).obs["split"].astype(str).to_numpy()
    assert (a == "val").sum() == (b == "val").sum()
    assert abs((a == "val").sum() - 0.3 * 50) <= 2  # rounded within each of the 2 label strata
    assert (a != b).any()  # a different seed carves a different val
    c = od.load("mogonet-rosmap", val_fraction=0.0).obs["split"].astype(str).to_numpy()
    assert (c == "val").sum() == 0


def test_brca_five_classes_from_a_base_url(tmp_path, monkeypatch):
    site = tmp_path / "site"
    truth = mf.write_synthetic(site, "BRCA", n_train=60, n_test=25, n_features=(15, 15, 7), n_classes=5, seed=1)
    with FileServer(site) as srv:
        mdata = od.load("mogonet-brca", base_url=srv.url)  # no pins for BRCA: hashed into the report
    assert list(mdata.obs["label"].cat.categories) == ["Normal-like", "Basal-like", "HER2-enriched",
                                                       "Luminal A", "Luminal B"]
    split = mdata.obs["split"].astype(str).to_numpy()
    codes = mdata.obs["label_code"].to_numpy()
    assert set(codes[split == "val"]) == set(range(5))  # stratified: every class in val
    rep = mdata.uns["omicsdata"]["extra"]["report"]
    assert len(rep["unpinned"]) == len(mf.file_names())
    assert rep["sha256"]["BRCA/1_tr.csv"] == _sha(site / "BRCA" / "1_tr.csv")
    assert mdata["mirna"].shape == (85, 7)
    np.testing.assert_array_equal(codes[:60], truth["labels_tr"])


def test_local_folder_base_url(tmp_path):
    mf.write_synthetic(tmp_path / "copy", "BRCA", n_train=30, n_test=10, n_classes=5, seed=2)
    mdata = od.load("mogonet-brca", base_url=str(tmp_path / "copy"))
    assert mdata.n_obs == 40


def test_mirror_rules():
    up = "https://files.example.org/repo/abc"
    rules = f"{up}=http://127.0.0.1:1/m,https://files.example.org=http://127.0.0.1:1/all"
    assert http.mirror_url(up + "/ROSMAP/1_tr.csv", rules) == "http://127.0.0.1:1/m/ROSMAP/1_tr.csv"
    assert http.mirror_url("https://files.example.org/other", rules) == "http://127.0.0.1:1/all/other"
    assert http.mirror_url("https://elsewhere.example.org/x", rules) == "https://elsewhere.example.org/x"
    for bad in ("no-equals-sign", "https://a.example.org=", "a.example.org=http://127.0.0.1/x"):
        with pytest.raises(CatalogError, match="OMICSDATA_HTTP_MIRROR"):
            http.mirror_url("https://a.example.org/x", bad)


def test_mirror_applies_to_json_requests_and_resumes(tmp_path, monkeypatch):
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "status.json").write_text('{"ok": true}')
    payload = bytes(range(256)) * 400
    (tmp_path / "api" / "blob.bin").write_bytes(payload)
    with FileServer(tmp_path) as srv:
        monkeypatch.setenv(http.MIRROR_ENV, f"https://api.example.org={srv.url}/api")
        assert http.request_json("GET", "https://api.example.org/status.json") == {"ok": True}
        srv.truncate_next["api/blob.bin"] = 5000  # drop the connection after 5000 bytes once
        srv.fail_next["api/blob.bin"] = 0
        dest = http.download("https://api.example.org/blob.bin", tmp_path / "out" / "blob.bin",
                             sha256=hashlib.sha256(payload).hexdigest(),
                             policy=http.RetryPolicy(retries=3, backoff=0.01))
        assert dest.read_bytes() == payload
        ranges = [r for m, p, r in srv.requests if p == "api/blob.bin"]
        assert ranges[0] is None and ranges[-1] == "bytes=5000-"
        with pytest.raises(DownloadError, match=r"missing\.json \(via mirror .*/api/missing\.json\): HTTP 404"):
            http.request_json("GET", "https://api.example.org/missing.json")


def test_format_errors_name_file_and_line(tmp_path):
    mf.write_synthetic(tmp_path, "ROSMAP", n_train=10, n_test=6, n_features=(4, 4, 4), seed=0)
    f = tmp_path / "ROSMAP" / "2_tr.csv"
    lines = f.read_text().splitlines()
    lines[2] = lines[2].replace(",", ",oops,", 1)
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=r"2_tr\.csv, line 3: 5 values, expected 4"):
        mf.read_folder(tmp_path, "ROSMAP", ROSMAP_CLASSES)
    mf.write_synthetic(tmp_path, "ROSMAP", n_train=10, n_test=6, n_features=(4, 4, 4), seed=0)
    (tmp_path / "ROSMAP" / "labels_te.csv").write_text("0\n1\n0.5\n")
    with pytest.raises(FormatError, match=r"labels_te\.csv, line 3: label 0.5 is not a class code"):
        mf.read_folder(tmp_path, "ROSMAP", ROSMAP_CLASSES)
    mf.write_synthetic(tmp_path, "ROSMAP", n_train=10, n_test=6, n_features=(4, 4, 4), seed=0)
    (tmp_path / "ROSMAP" / "labels_te.csv").write_text("0\n1\n2\n0\n1\n0\n")
    with pytest.raises(FormatError, match=r"labels_te\.csv: class code 2 but the card names 2 classes"):
        mf.read_folder(tmp_path, "ROSMAP", ROSMAP_CLASSES)
    mf.write_synthetic(tmp_path, "ROSMAP", n_train=10, n_test=5, n_features=(4, 4, 4), seed=0)
    (tmp_path / "ROSMAP" / "labels_te.csv").write_text("0\n1\n0\n1\n0\n1\n")
    with pytest.raises(FormatError, match=r"1_te\.csv: 5 rows but labels_te\.csv has 6 labels"):
        mf.read_folder(tmp_path, "ROSMAP", ROSMAP_CLASSES)


def test_remote_store_urls_follow_the_mirror(tmp_path, monkeypatch, omicsdata_home):
    mf.write_synthetic(tmp_path / "copy", "BRCA", n_train=30, n_test=10, n_features=(6, 5, 4), n_classes=5, seed=2)
    store = od.build("mogonet-brca", base_url=str(tmp_path / "copy"))
    with FileServer(Path(store).parent) as srv:
        monkeypatch.setenv(http.MIRROR_ENV, f"https://stores.example.org/omics={srv.url}")
        mdata = od.load(f"https://stores.example.org/omics/{Path(store).name}")
        assert mdata["mirna"].shape == (40, 4)
        np.testing.assert_array_equal(mdata.obs["label_code"].to_numpy()[:30],
                                      np.loadtxt(tmp_path / "copy" / "BRCA" / "labels_tr.csv").astype(int))
        assert any(p.endswith("manifest.json") for p in srv.paths_requested("GET"))
        s = od.storage.open(f"https://stores.example.org/omics/{Path(store).name}")
        assert s.n_obs == 40
