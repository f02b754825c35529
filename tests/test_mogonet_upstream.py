"""The MOGONET authors' weights: catalog entry -> http source (through $OMICSDATA_HTTP_MIRROR) ->
torch.load(weights_only=True) -> zoo.MOGONET -> cached zoo checkpoint -> predictions, checked against
a reference forward pass written from the authors' models.py / utils.py."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from httpfiles import FileServer

import omicsdata as od
import zoo
from omicsdata.builders import mogonet_files as mf
from omicsdata.catalog import DATASETS_DIR
from omicsdata.errors import ChecksumError, FormatError
from omicsdata.sources import http
from zoo.catalog import model_entries
from zoo.models import mogonet_upstream as mu
from zoo.pretrained import UnpinnedModelWarning

HIDDEN = [200, 200, 100]  # ROSMAP, as in the authors' train_test.py
N_CLASSES, N_VIEWS, ADJ = 2, 3, 2


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def fabricate_run(folder: Path, in_dims, seed: int = 0, hidden=HIDDEN, n_classes: int = N_CLASSES) -> dict:
    """Plain state dicts with the authors' key names and shapes, saved with torch.save as they do."""
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    states = {}
    for v, p in enumerate(in_dims, 1):
        dims = [p] + list(hidden)
        e = {}
        for i in (1, 2, 3):
            e[f"gc{i}.weight"] = torch.randn(dims[i - 1], dims[i], generator=g) * (2.0 / (dims[i - 1] + dims[i])) ** 0.5
            e[f"gc{i}.bias"] = torch.randn(dims[i], generator=g) * 0.1
        c = {"clf.0.weight": torch.randn(n_classes, hidden[-1], generator=g) * 0.5,
             "clf.0.bias": torch.randn(n_classes, generator=g) * 0.1}
        states[f"E{v}.pth"], states[f"C{v}.pth"] = e, c
    hv = n_classes ** N_VIEWS  # the authors' dim_hvcdn = num_class ** num_view
    states["C.pth"] = {"model.0.weight": torch.randn(hv, hv, generator=g), "model.0.bias": torch.randn(hv, generator=g),
                       "model.2.weight": torch.randn(n_classes, hv, generator=g),
                       "model.2.bias": torch.randn(n_classes, generator=g)}
    for name, sd in states.items():
        torch.save(sd, folder / name)
    return states


# ---------------------------------------------------------------- the authors' computation, written from their code
def ref_cos_dist(x1, x2):
    w1, w2 = x1.norm(p=2, dim=1, keepdim=True), x2.norm(p=2, dim=1, keepdim=True)
    return 1 - torch.mm(x1, x2.t()) / (w1 * w2.t()).clamp(min=1e-8)


def ref_parameter(x_tr, edge_per_node):
    return torch.sort(ref_cos_dist(x_tr, x_tr).reshape(-1)).values[edge_per_node * x_tr.shape[0]].item()


def ref_test_adj(x_all, n_tr, parameter):
    n = x_all.shape[0]
    adj = torch.zeros(n, n)
    d = ref_cos_dist(x_all[:n_tr], x_all[n_tr:])
    adj[:n_tr, n_tr:] = (1 - d) * (d <= parameter).float()
    d = ref_cos_dist(x_all[n_tr:], x_all[:n_tr])
    adj[n_tr:, :n_tr] = (1 - d) * (d <= parameter).float()
    adj_t = adj.transpose(0, 1)
    adj = adj + adj_t * (adj_t > adj).float() - adj * (adj_t > adj).float()
    return F.normalize(adj + torch.eye(n), p=1)


def ref_predict(states, views_tr, views_te, adj_parameter=ADJ, n_classes=N_CLASSES):
    """Softmax of the authors' test_epoch over [train; test], test rows."""
    n_tr = views_tr[0].shape[0]
    logits = []
    for v, (xtr, xte) in enumerate(zip(views_tr, views_te), 1):
        x = torch.cat([torch.as_tensor(xtr), torch.as_tensor(xte)]).float()
        adj = ref_test_adj(x, n_tr, ref_parameter(torch.as_tensor(xtr).float(), adj_parameter)).to_sparse()
        e, c = states[f"E{v}.pth"], states[f"C{v}.pth"]
        h = x
        for i in (1, 2, 3):
            h = F.leaky_relu(torch.sparse.mm(adj, torch.mm(h, e[f"gc{i}.weight"])) + e[f"gc{i}.bias"], 0.25)
        logits.append(h @ c["clf.0.weight"].t() + c["clf.0.bias"])
    s = [torch.sigmoid(lg) for lg in logits]
    C = n_classes
    x = torch.reshape(torch.matmul(s[0].unsqueeze(-1), s[1].unsqueeze(1)), (-1, C ** 2, 1))
    for i in range(2, len(s)):
        x = torch.reshape(torch.matmul(x, s[i].unsqueeze(1)), (-1, C ** (i + 1), 1))
    f = states["C.pth"]
    z = F.leaky_relu(x.reshape(-1, C ** len(s)) @ f["model.0.weight"].t() + f["model.0.bias"], 0.25)
    out = z @ f["model.2.weight"].t() + f["model.2.bias"]
    return F.softmax(out, dim=1)[n_tr:].numpy()


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def site(tmp_path, monkeypatch):
    """The authors' layout (data + models/1) generated under <server>/mirror and the mirror rule set."""
    root = tmp_path / "site" / "mirror"
    # the published ROSMAP sizes: 245 + 106 samples, 200 features per view
    truth = mf.write_synthetic(root, "ROSMAP", n_train=245, n_test=106, n_features=(200, 200, 200), seed=5)
    states = fabricate_run(root / "ROSMAP" / "models" / "1", (200, 200, 200), seed=1)
    entry = model_entries()["mogonet-rosmap"][0]
    upstream = entry["source"]["url"].replace("{revision}", entry["source"]["revision"])
    with FileServer(tmp_path / "site") as srv:
        monkeypatch.setenv(http.MIRROR_ENV, f"{upstream}={srv.url}/mirror")
        yield srv, root, truth, states


def _user_catalog(tmp_path, root: Path, monkeypatch, hidden=HIDDEN):
    """$OMICSDATA_CATALOG copies of the built-in dataset card and model entry, pinned to the served files."""
    cat = tmp_path / "catalog"
    (cat / "models").mkdir(parents=True)
    card = yaml.safe_load(DATASETS_DIR.joinpath("mogonet_rosmap", "card.yaml").read_text())
    card["source"]["files"] = {f"ROSMAP/{f}": _sha(root / "ROSMAP" / f) for f in mf.file_names()}
    (cat / "mogonet-rosmap.yaml").write_text(yaml.safe_dump(card))
    entry = dict(model_entries()["mogonet-rosmap"][0])
    entry["files"] = [{"path": f["path"], "sha256": _sha(root / f["path"])} for f in entry["files"]]
    entry["convert"] = dict(entry["convert"], hidden=list(hidden))
    (cat / "models" / "mogonet-rosmap.yaml").write_text(yaml.safe_dump(entry))
    monkeypatch.setenv("OMICSDATA_CATALOG", str(cat))


# ---------------------------------------------------------------- tests
def test_state_dict_mapping_follows_the_contract(tmp_path):
    states = fabricate_run(tmp_path / "run", (7, 5, 3))
    loaded = {f: mu.load_state(tmp_path / "run" / f) for f in mu.module_files(3)}
    mapped = mu.map_states(loaded, 3)
    for v in (1, 2, 3):
        for i in (1, 2, 3):
            for p in ("weight", "bias"):
                assert torch.equal(mapped[f"encoders.{v - 1}.gc{i}.{p}"], states[f"E{v}.pth"][f"gc{i}.{p}"])
        assert torch.equal(mapped[f"heads.{v - 1}.clf.0.weight"], states[f"C{v}.pth"]["clf.0.weight"])
    assert torch.equal(mapped["vcdn.model.2.bias"], states["C.pth"]["model.2.bias"])
    assert len(mapped) == 3 * 6 + 3 * 2 + 4
    # the keys are exactly those of zoo.MOGONET's module
    from zoo.models.mogonet_net import MOGONETNet
    net = MOGONETNet(["a", "b", "c"], {"a": 7, "b": 5, "c": 3}, N_CLASSES, 4, tuple(HIDDEN))
    assert set(mapped) == {k for k in net.state_dict() if not k.startswith("graph.")}


def test_end_to_end_through_the_mirror(site, tmp_path, monkeypatch):
    srv, root, truth, states = site
    _user_catalog(tmp_path, root, monkeypatch)
    mdata = od.load("mogonet-rosmap")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpinnedModelWarning)  # every file pinned: no UnpinnedModelWarning
        m = zoo.load("mogonet-rosmap")
    assert isinstance(m, zoo.MOGONET) and list(m.classes_) == ["Normal Control", "Alzheimer's Disease"]
    asked = set(srv.paths_requested("GET"))
    assert {f"mirror/ROSMAP/models/1/{f}" for f in mu.module_files(3)} <= asked
    proba = m.predict_proba(mdata, split="test")
    views_tr = [truth["views"][v][0] for v in (1, 2, 3)]
    views_te = [truth["views"][v][1] for v in (1, 2, 3)]
    ref = ref_predict(states, views_tr, views_te)
    diff = float(np.abs(proba - ref).max())
    print(f"\nmax |zoo.MOGONET(converted) - authors' reference forward| = {diff:.3e} over {ref.size} probabilities")
    assert ref.std() > 0.01  # the fabricated weights give varied predictions: the comparison means something
    assert diff < 1e-5
    # the checkpoint is cached: a second load downloads nothing
    n = len(srv.requests)
    m2 = zoo.load("mogonet-rosmap")
    assert len(srv.requests) == n
    np.testing.assert_array_equal(m2.predict_proba(mdata, split="test"), proba)
    # our format: safetensors + JSON, holding the training features (no labels)
    folder = zoo.pretrained.download("mogonet-rosmap")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "schema.json"]
    from safetensors.torch import load_file
    t = load_file(str(folder / "model.safetensors"))
    np.testing.assert_allclose(t["graph.x_0"].numpy(), views_tr[0], rtol=1e-6)
    extra = {k for k in t if not k.startswith(("encoders.", "heads.", "vcdn."))}
    assert extra == {"graph.x_0", "graph.x_1", "graph.x_2", "graph.threshold"}  # features, no labels


def test_brca_shapes_five_classes(tmp_path):
    """BRCA's layout (5 classes, hidden 400/400/200, VCDN over 5**3, adj_parameter 10) through the converter."""
    truth = mf.write_synthetic(tmp_path, "BRCA", n_train=70, n_test=30, n_features=(30, 30, 15), n_classes=5, seed=2)
    states = fabricate_run(tmp_path / "BRCA" / "models" / "1", (30, 30, 15), seed=3, hidden=[400, 400, 200],
                           n_classes=5)
    loaded = {f: mu.load_state(tmp_path / "BRCA" / "models" / "1" / f) for f in mu.module_files(3)}
    files = {f: tmp_path / "BRCA" / f for f in mf.file_names()}
    feats = mu.train_features(files, ["mrna", "methylation", "mirna"], "BRCA")
    classes = ["Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B"]
    est = mu.convert(loaded, feats, classes, 10, hidden=[400, 400, 200])
    mdata, _ = mf.assemble(files, classes)
    proba = est.predict_proba(mdata, split="test")
    ref = ref_predict(states, [truth["views"][v][0] for v in (1, 2, 3)], [truth["views"][v][1] for v in (1, 2, 3)],
                      adj_parameter=10, n_classes=5)
    assert ref.std() > 0.01
    assert float(np.abs(proba - ref).max()) < 1e-5


def test_builtin_entry_pins_refuse_other_bytes(site):
    srv, root, truth, states = site
    with pytest.raises(ChecksumError, match=r"ROSMAP/models/1/E1\.pth.*via mirror"):
        zoo.load("mogonet-rosmap")


def test_unpinned_files_warn(site, tmp_path, monkeypatch):
    srv, root, truth, states = site
    _user_catalog(tmp_path, root, monkeypatch)
    entry = yaml.safe_load((tmp_path / "catalog" / "models" / "mogonet-rosmap.yaml").read_text())
    entry["files"] = [{"path": f["path"]} for f in entry["files"]]
    (tmp_path / "catalog" / "models" / "mogonet-rosmap.yaml").write_text(yaml.safe_dump(entry))
    with pytest.warns(zoo.pretrained.UnpinnedModelWarning, match="no sha256"):
        zoo.load("mogonet-rosmap")


class _NotATensor:
    pass


def test_bad_files_are_named(tmp_path):
    fabricate_run(tmp_path / "run", (7, 5, 3))
    torch.save({"gc1.weight": torch.zeros(2, 2), "x": _NotATensor()}, tmp_path / "run" / "evil.pth")
    with pytest.raises(FormatError, match=r"evil\.pth: refused by torch\.load\(weights_only=True\)"):
        mu.load_state(tmp_path / "run" / "evil.pth")
    loaded = {f: mu.load_state(tmp_path / "run" / f) for f in mu.module_files(3)}
    bad = dict(loaded, **{"E2.pth": {("gc9.weight" if k == "gc1.weight" else k): v
                                     for k, v in loaded["E2.pth"].items()}})
    with pytest.raises(FormatError, match=r"E2\.pth: keys do not follow the authors' layout: unexpected \['gc9"):
        mu.map_states(bad, 3)
    bad = dict(loaded, **{"C.pth": dict(loaded["C.pth"], **{"model.0.weight": torch.zeros(8, 9)})})
    with pytest.raises(FormatError, match=r"C\.pth: model\.0\.weight \(8, 9\): expected \(hvcdn, 2\*\*3 = 8\)"):
        mu.map_states(bad, 3)


def test_hidden_mismatch_is_refused(site, tmp_path, monkeypatch):
    srv, root, truth, states = site
    _user_catalog(tmp_path, root, monkeypatch, hidden=[400, 400, 200])
    with pytest.raises(od.errors.SchemaMismatchError, match=r"hidden widths are \[200, 200, 100\].*\[400, 400, 200\]"):
        zoo.load("mogonet-rosmap")


def test_file_url_source_reads_a_local_copy(site, tmp_path, monkeypatch):
    srv, root, truth, states = site
    _user_catalog(tmp_path, root, monkeypatch)
    path = tmp_path / "catalog" / "models" / "mogonet-rosmap.yaml"
    entry = yaml.safe_load(path.read_text())
    entry["source"]["url"] = f"file://{root}"
    path.write_text(yaml.safe_dump(entry))
    n = len(srv.requests)
    with pytest.warns(zoo.pretrained.UnpinnedModelWarning, match="not a commit sha"):  # the URL no longer embeds it
        m = zoo.load("mogonet-rosmap")
    assert len(srv.requests) == n  # nothing went over HTTP
    assert m.schema_["data"]["n_train"] == 245
