"""Round trips (issue 18, must-haves 1-2): every object kind writes with ``od.write_store`` and reopens equal.

The matrix is parametrised: ``pytest -v tests/test_roundtrip.py -k matrix`` prints one line per
(object kind, element) with PASSED when the reopened element equals the original. The toolkit's own
bookkeeping (``uns["omicsdata"]``, ``uns["omicsdata_path"]``, ``obs["has_<modality>"]`` added to
objects that lacked it) is rewritten and left out of the comparison.
"""
from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import omicsdata as od
from omicsdata import storage
from omicsdata.errors import StoreError
from omicsdata.storage.settings import new_mudata

KINDS = ["load-lazy", "load-memory", "load-drop", "anndata", "mudata-user"]
ELEMENTS = ["obs", "var", "obsm", "varm", "layers", "obsp", "uns", "raw", "X"]
BOOKKEEPING = ("omicsdata", "omicsdata_path")


def _dense(X):
    X = X.compute() if hasattr(X, "compute") else X
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def _same(a, b, where: str) -> None:
    """Equal values of any element kind (frames, dense/sparse/dask arrays, nested dicts, scalars)."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, dict) or hasattr(a, "keys"):
        assert sorted(a.keys()) == sorted(b.keys()), f"{where}: keys {sorted(a.keys())} != {sorted(b.keys())}"
        for k in a.keys():
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif sp.issparse(a) or hasattr(a, "compute") or (isinstance(a, np.ndarray) and a.ndim > 0):
        x, y = _dense(a), _dense(b)
        assert x.shape == y.shape, f"{where}: shape {x.shape} != {y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=where)
    elif isinstance(a, (list, tuple)):
        _same(np.asarray(a), np.asarray(b), where)
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


def _user_anndata(n=40, p=12, seed=0):
    """An AnnData with every element scanpy users fill: split, layers, obsp, raw, obsm, varm, uns."""
    rng = np.random.default_rng(seed)
    ids = [f"cell{i}" for i in range(n)]
    genes = [f"g{j}" for j in range(p)]
    counts = rng.poisson(2.0, (n, p)).astype(np.float32)
    a = ad.AnnData(np.log1p(counts),
                   obs=pd.DataFrame({"bulk_labels": pd.Categorical(rng.choice(["T", "B", "NK"], n)),
                                     "n_counts": counts.sum(1), "split": np.where(np.arange(n) % 4 == 0, "test", "train")},
                                    index=ids),
                   var=pd.DataFrame({"gene_symbol": [f"SYM{j}" for j in range(p)], "highly_variable": np.arange(p) % 2 == 0},
                                    index=genes))
    a.raw = ad.AnnData(counts, obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=genes))
    a.layers["counts"] = sp.csr_matrix(counts)
    a.layers["scaled"] = rng.normal(size=(n, p)).astype(np.float32)
    a.obsm["X_pca"] = rng.normal(size=(n, 3)).astype(np.float32)
    a.varm["PCs"] = rng.normal(size=(p, 3))
    a.obsp["connectivities"] = sp.random(n, n, density=0.1, format="csr", random_state=seed)
    a.obsp["distances"] = rng.random((n, n))
    a.uns["pca"] = {"variance_ratio": rng.random(3), "params": {"zero_center": True}}
    a.uns["bulk_labels_colors"] = np.array(["#ff0000", "#00ff00", "#0000ff"], dtype=object)
    return a


def _user_mudata():
    """A MuData as mudata users make it: modalities over overlapping samples, own obs columns, layers, obsp."""
    rng = np.random.default_rng(1)
    rna = _user_anndata(30, 10, seed=1)
    prot_ids = [f"cell{i}" for i in range(10, 45)]  # 20 shared cells, 15 protein only
    prot = ad.AnnData(rng.normal(size=(35, 4)).astype(np.float32),
                      obs=pd.DataFrame({"isotype_ctrl": rng.random(35), "n_proteins": rng.integers(1, 5, 35),
                                        "qc_pass": rng.random(35) > 0.3}, index=prot_ids),
                      var=pd.DataFrame(index=["CD3", "CD4", "CD8", "CD19"]))
    prot.layers["raw_counts"] = rng.poisson(5, (35, 4)).astype(np.float32)
    prot.obsp["knn"] = sp.random(35, 35, density=0.1, format="csr", random_state=2)
    m = md.MuData({"rna": rna, "prot": prot})
    obs = pd.DataFrame({"donor": pd.Categorical(np.where(np.arange(m.n_obs) % 2 == 0, "d1", "d2"))}, index=m.obs_names)
    m.obs = obs
    m.obsm["X_wnn_umap"] = rng.normal(size=(m.n_obs, 2))
    m.uns["study"] = {"name": "toy", "year": 2024}
    return m


@pytest.fixture(scope="module")
def pairs(demo_store, tmp_path_factory):
    """kind -> (original, reopened, modality map): built once per module."""
    out = {}
    root = tmp_path_factory.mktemp("roundtrip")
    for kind in KINDS:
        path = root / f"{kind}.zarr"
        if kind.startswith("load"):
            missing = "drop" if kind == "load-drop" else "zeros"
            orig = od.load(demo_store, lazy=kind != "load-memory", missing=missing)
            od.write_store(orig, path)
            out[kind] = (orig, od.open_store(path, lazy=kind != "load-memory", missing=missing))
        elif kind == "anndata":
            orig = _user_anndata()
            od.write_store(orig, path, modality="rna")
            out[kind] = (orig, od.open_store(path))
        else:
            orig = _user_mudata()
            od.write_store(orig, path)
            out[kind] = (orig, od.open_store(path, missing="drop"))
    return out


def _modalities(orig, back):
    """(where, original AnnData, reopened AnnData) per modality."""
    if isinstance(orig, ad.AnnData):
        return [("mod rna", orig, back.mod["rna"])]
    assert list(back.mod) == list(orig.mod)
    return [(f"mod {m}", orig.mod[m], back.mod[m]) for m in orig.mod]


def _global(orig, back, element):
    """(original, reopened) of a MuData-level element, less bookkeeping; None for an AnnData."""
    if isinstance(orig, ad.AnnData):
        return None
    if element == "uns":
        return ({k: v for k, v in orig.uns.items() if k not in BOOKKEEPING},
                {k: v for k, v in back.uns.items() if k not in BOOKKEEPING})
    return ({k: v for k, v in getattr(orig, element).items() if k not in orig.mod},
            {k: v for k, v in getattr(back, element).items() if k not in back.mod})


@pytest.mark.parametrize("element", ELEMENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_matrix(pairs, kind, element):
    orig, back = pairs[kind]
    if element == "obs":
        gobs = orig.obs
        added = [c for c in back.obs.columns if c not in gobs.columns]
        assert all(c.startswith("has_") for c in added), f"{kind}: obs columns added on write: {added}"
        _same(gobs, back.obs[list(gobs.columns)], f"{kind} obs")
    elif element in ("obsm", "varm", "obsp", "uns"):
        g = _global(orig, back, element)
        if g is not None:
            _same(g[0], g[1], f"{kind} global {element}")
    for where, a, b in _modalities(orig, back):
        if element == "obs":
            _same(a.obs, b.obs, f"{kind} {where} obs")
        elif element == "X":
            _same(a.X, b.X, f"{kind} {where} X")
        elif element == "raw":
            assert (a.raw is None) == (b.raw is None), f"{kind} {where}: raw lost or invented"
            if a.raw is not None:
                _same(a.raw.X, b.raw.X, f"{kind} {where} raw.X")
                _same(a.raw.var, b.raw.var, f"{kind} {where} raw.var")
        elif element == "obsp":
            _same(dict(a.obsp), dict(b.obsp), f"{kind} {where} obsp")
            _same(dict(a.varp), dict(b.varp), f"{kind} {where} varp")
        else:
            _same(getattr(a, element) if element in ("var", "uns") else dict(getattr(a, element)),
                  getattr(b, element) if element in ("var", "uns") else dict(getattr(b, element)),
                  f"{kind} {where} {element}")


def test_anndata_is_one_named_modality_with_its_split(tmp_path):
    a = _user_anndata()
    path = od.write_store(a, tmp_path / "cells.zarr", modality="cells")
    back = od.open_store(path)
    assert list(back.mod) == ["cells"]
    assert [c for c in back.obs.columns if ":" in c] == []  # no "X:bulk_labels"-style prefixes
    man = back.uns["omicsdata"]
    assert man["splits"]["counts"] == {"test": 10, "train": 30}
    st = storage.open(path)
    assert len(st.rows("test")) == 10 and len(st.rows("train")) == 30
    with pytest.raises(StoreError, match="modality="):
        od.write_store(a, tmp_path / "bad.zarr", modality="")


def test_mudata_user_modalities_are_expanded_with_masks(pairs):
    orig, back = pairs["mudata-user"]
    zeros = od.open_store(back.uns["omicsdata_path"])
    assert zeros.mod["prot"].n_obs == zeros.n_obs == orig.n_obs
    has = zeros.obs["has_prot"].to_numpy()
    assert has.sum() == orig.mod["prot"].n_obs and not has.all()
    np.testing.assert_array_equal(_dense(zeros.mod["prot"].X)[~has], 0)
    assert (zeros.mod["prot"].obs.loc[~has, "isotype_ctrl"].isna()).all()


def test_no_global_setting_changes(tmp_path, demo_store):
    """Every call leaves anndata's and mudata's settings as the caller had them (both values tried)."""
    from mudata._core.config import OPTIONS

    for pull, fmt in ((None, 2), (True, 3)):
        with md.set_options(pull_on_update=pull), ad.settings.override(zarr_write_format=fmt):
            m = od.load(demo_store)
            if pull is None:
                od.write_store(m, tmp_path / "a.zarr")
            od.write_store(_user_anndata(), tmp_path / f"b{fmt}.zarr")
            od.open_store(tmp_path / f"b{fmt}.zarr", missing="drop")
            assert storage.open(_user_anndata()).mudata.n_obs == 40
            new_mudata({"x": _user_anndata()})
            assert OPTIONS["pull_on_update"] is pull
            assert ad.settings.zarr_write_format == fmt


def test_missing_drop(demo_store):
    zeros = od.load(demo_store)
    drop = od.load(demo_store, missing="drop")
    assert drop.n_obs == zeros.n_obs and drop.obs.equals(zeros.obs)
    some_absent = False
    for m in zeros.mod:
        has = zeros.obs[f"has_{m}"].to_numpy()
        some_absent |= not has.all()
        a = drop.mod[m]
        assert a.n_obs == has.sum()
        assert list(a.obs_names) == list(zeros.obs_names[has])
        assert hasattr(a.X, "dask")  # still lazy
        np.testing.assert_array_equal(_dense(a.X[:7]), _dense(zeros.mod[m].X)[has][:7])
        st = storage.open(drop)
        np.testing.assert_array_equal(st.presence(m), has)
        rows = np.flatnonzero(~has)[:3]
        if len(rows):
            assert not st.read_rows(m, rows).any()
    assert some_absent  # the demo has missing modalities, so "drop" dropped something
    with pytest.raises(StoreError, match="missing="):
        od.load(demo_store, missing="none")


def test_scverse_fidelity(demo_store):
    m = od.load(demo_store)
    rna = m.mod["rna"]
    assert "gene_symbol" in rna.var and (rna.var["gene_symbol"] != "").all()
    assert "TP53" in set(rna.var["gene_symbol"])
    for name, a in m.mod.items():  # modality obs carries the sample metadata and its own mask
        assert {"cancer_type", "split", f"has_{name}"} <= set(a.obs.columns)
        assert not [c for c in a.obs.columns if c.startswith("has_") and c != f"has_{name}"]
        pd.testing.assert_series_equal(a.obs["cancer_type"], m.obs["cancer_type"])


def test_graph_topology_survives_a_lazy_round_trip(tmp_path):
    """A lazy open leaves ``uns["graph"]`` on disk; writing that object back still stores the topology."""
    from omicsdata.graph import encode_topology

    a = _user_anndata(20, 6)
    a.uns["graph"] = encode_topology(np.array([[0, 1, 2, 5], [1, 2, 3, 0]]), 6)
    src = od.write_store(a, tmp_path / "g.zarr", modality="expression")
    lazy = od.open_store(src)
    assert "graph" not in lazy.mod["expression"].uns
    back = od.write_store(lazy, tmp_path / "g2.zarr")
    got = storage.open(back).graph_arrays("expression")
    _same(got["edge_index"], a.uns["graph"]["edge_index"], "edge_index")
    _same(got["edge_type"], a.uns["graph"]["edge_type"], "edge_type")
    assert got["n_nodes"] == 6
    eager = od.open_store(back, lazy=False)
    _same(eager.mod["expression"].uns["graph"]["edge_index"], a.uns["graph"]["edge_index"], "eager graph")
