"""The storage layer's one entry point: ``storage.open(x)`` -> Store, for every kind of input."""
from __future__ import annotations

import pickle

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import omicsdata as od
from omicsdata import storage
from omicsdata.errors import SchemaMismatchError, StoreError


def _mdata(n=50, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"S{i}" for i in range(n)]
    dense = rng.normal(size=(n, 7)).astype(np.float32)
    csr = sp.random(n, 5, density=0.3, format="csr", dtype=np.float32, random_state=seed)
    m = md.MuData({"a": ad.AnnData(dense, obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=[f"g{j}" for j in range(7)])),
                   "b": ad.AnnData(csr, obs=pd.DataFrame(index=ids), var=pd.DataFrame(index=[f"m{j}" for j in range(5)]))})
    m.obs = pd.DataFrame({"split": np.where(np.arange(n) % 5 == 0, "test", "train"),
                          "has_b": np.arange(n) % 3 != 0}, index=ids)
    return m, dense, csr


def test_layout_spells_paths():
    assert storage.layout.matrix_key("rna") == "mod/rna/X"
    assert storage.layout.graph_key("expression") == "mod/expression/uns/graph"
    assert storage.layout.table_dir("nodes") == "tables/nodes"
    assert storage.layout.presence_column("rna") == "has_rna"
    assert storage.layout.MANIFEST == "manifest.json"


def test_open_path_mudata_subset_and_anndata(tmp_path):
    m, dense, csr = _mdata()
    path = od.write_store(m, tmp_path / "s", dataset="toy")
    rows = [7, 2, 2, 40]
    for x in (path, str(path), od.open_store(path)):
        st = storage.open(x)
        assert st.backed and st.path == str(path) and st.manifest["dataset"] == "toy"
        assert st.modalities == ["a", "b"] and st.n_obs == 50
        assert st.var_names("a") == [f"g{j}" for j in range(7)]
        np.testing.assert_array_equal(st.read_rows("a", rows), dense[rows])
        np.testing.assert_array_equal(st.read_rows("b", rows), csr[rows].toarray())
        np.testing.assert_array_equal(st.presence("b"), np.arange(50) % 3 != 0)
        assert st.presence("a").all()
        np.testing.assert_array_equal(st.rows("test"), np.arange(0, 50, 5))
        assert storage.open(st) is st
        back = pickle.loads(pickle.dumps(st))
        np.testing.assert_array_equal(back.read_rows("a", rows), dense[rows])
    sub = storage.open(od.open_store(path)[10:20])  # a subset: read from memory, rows of the subset
    assert not sub.backed and sub.path == str(path)
    np.testing.assert_array_equal(sub.read_rows("a", [0, 9]), dense[[10, 19]])
    one = storage.open(ad.AnnData(dense))
    assert one.modalities == ["X"] and one.mudata.mod["X"].n_obs == 50
    np.testing.assert_array_equal(one.read_rows("X", [3]), dense[[3]])


def test_open_errors_name_the_problem(tmp_path):
    m, _, _ = _mdata()
    st = storage.open(m)
    with pytest.raises(SchemaMismatchError, match=r"split \['dev'\] not in obs\['split'\]"):
        st.rows("dev")
    with pytest.raises(SchemaMismatchError, match="modality 'c'"):
        st.reader("c")
    with pytest.raises(StoreError, match="not opened from an omicsdata store"):
        st.graph_arrays("a")
    with pytest.raises(StoreError, match="no omicsdata store"):
        storage.open(tmp_path / "nothing")
    with pytest.raises(StoreError, match="cannot open a int"):
        storage.open(3)
