"""Bring-your-own AnnData/MuData: od.import_anndata / import_mudata / `omicsdata import`.

End to end: simulated cells with planted types (omicsdata.synth_cells) ->
a real .h5ad / .h5mu file -> streamed import -> local catalog entry ->
od.load -> the store's rows equal the file's.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import omicsdata as od
from omicsdata.errors import CatalogError, FormatError, OmicsDataError
from omicsdata.importers import source as src_mod
from omicsdata.synth_cells import make_cells

BLOCK = 400_000  # bytes per block: several row blocks on these small files


@pytest.fixture(scope="module")
def cells():
    return make_cells(n_cells=800, n_genes=200, n_types=6, n_donors=6, seed=3)


@pytest.fixture
def h5ad(cells, tmp_path):
    path = tmp_path / "cells.h5ad"
    cells.write_h5ad(path)
    return path


def _spy_reads(monkeypatch):
    seen = []
    orig = src_mod.Matrix.read

    def read(self, start, stop):
        seen.append((start, stop, self.shape[0]))
        return orig(self, start, stop)

    monkeypatch.setattr(src_mod.Matrix, "read", read)
    return seen


def test_import_h5ad_csr_streamed_and_listed(cells, h5ad, monkeypatch):
    seen = _spy_reads(monkeypatch)
    target = od.import_anndata(h5ad, "my-cells", label="cell_type", split_by="donor", block_bytes=BLOCK)
    # streamed: many reads, none of the whole matrix
    assert len(seen) >= 3 and max(b - a for a, b, _ in seen) < cells.n_obs
    assert "my-cells" in od.list_datasets()
    card = od.info("my-cells")
    assert card["builder"] == "anndata-import" and card["splits"]["by"] == "donor"
    m = od.load("my-cells")
    assert str(target) == str(m.uns["omicsdata_path"])
    assert list(m.mod) == ["rna"]
    for col in ("cell_type", "donor", "n_counts", "split"):  # unprefixed obs
        assert col in m.obs.columns
    X = m.mod["rna"].X.compute()
    assert sp.issparse(X) and (abs(X - cells.X)).max() == 0
    assert list(m.mod["rna"].var_names) == list(cells.var_names)
    # no donor in two splits, all three splits present
    per_donor = m.obs.groupby("donor", observed=True)["split"].nunique()
    assert (per_donor == 1).all()
    assert set(m.obs["split"].astype(str)) == {"train", "val", "test"}
    # seeded: the same import gives the same splits; another seed other splits
    od.import_anndata(h5ad, "my-cells-2", label="cell_type", split_by="donor", seed=0, block_bytes=BLOCK)
    od.import_anndata(h5ad, "my-cells-3", label="cell_type", split_by="donor", seed=5, block_bytes=BLOCK)
    s2, s3 = (od.load(n).obs["split"].astype(str).to_numpy() for n in ("my-cells-2", "my-cells-3"))
    assert (s2 == m.obs["split"].astype(str).to_numpy()).all()
    assert (s2 != s3).any()
    # the same name again needs overwrite=True
    with pytest.raises(CatalogError, match="overwrite=True"):
        od.import_anndata(h5ad, "my-cells", label="cell_type")


def test_import_dense_in_memory_and_existing_split(cells):
    a = cells[:400].copy()
    a.X = a.X.toarray()
    a.obs["split"] = np.where(np.arange(a.n_obs) % 4 == 0, "test", "train")
    od.import_anndata(a, "dense-cells", label="cell_type", modality="expr", block_bytes=BLOCK)
    m = od.load("dense-cells")
    assert list(m.mod) == ["expr"] and m.uns["omicsdata"]["modalities"]["expr"]["storage"] == "dense"
    assert np.array_equal(np.asarray(m.mod["expr"].X.compute()), a.X)
    assert (m.obs["split"].astype(str).to_numpy() == a.obs["split"].to_numpy()).all()  # used as is
    assert m.uns["omicsdata"]["extra"]["import"]["splits"]["predefined"] is True


def test_stratified_cell_level_split_keeps_rare_types(cells):
    od.import_anndata(cells, "strat-cells", label="cell_type", block_bytes=BLOCK)
    obs = od.load("strat-cells").obs
    for t in cells.uns["synth"]["rare_types"]:
        assert set(obs.loc[obs["cell_type"] == t, "split"].astype(str)) == {"train", "val", "test"}


def test_scverse_matches_scanpy_fitted_on_train(cells, tmp_path):
    sc = pytest.importorskip("scanpy")
    path = tmp_path / "c.h5ad"
    cells.write_h5ad(path)
    od.import_anndata(path, "sc-cells", label="cell_type", split_by="donor", preprocess="scverse",
                      n_top_genes=60, block_bytes=BLOCK)
    m = od.load("sc-cells")
    rec = m.uns["omicsdata"]["extra"]["import"]["scverse"]["rna"]
    train = (m.obs["split"].astype(str) == "train").to_numpy()
    # scanpy on the train cells, in memory: the same target, genes and values
    ref = cells[train].copy()
    totals = np.asarray(ref.X.sum(axis=1)).ravel()
    assert rec["target_sum"] == pytest.approx(float(np.median(totals)))
    sc.pp.normalize_total(ref, target_sum=rec["target_sum"])
    sc.pp.log1p(ref)
    sc.pp.highly_variable_genes(ref, n_top_genes=60, flavor="seurat")
    genes = list(ref.var_names[ref.var["highly_variable"].to_numpy()])
    assert rec["genes_kept"] == genes == list(m.mod["rna"].var_names)
    full = cells.copy()
    sc.pp.normalize_total(full, target_sum=rec["target_sum"])
    sc.pp.log1p(full)
    want = full[:, genes].X.toarray()
    got = m.mod["rna"].X.compute().toarray()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # fitted on train only: changing test cells changes nothing fitted
    other = cells.copy()
    test = (m.obs["split"].astype(str) == "test").to_numpy()
    X = other.X.tolil()
    X[np.flatnonzero(test), :] = 0
    X[np.flatnonzero(test), 0] = 10_000
    other.X = sp.csr_matrix(X)
    other.obs["split"] = m.obs["split"].astype(str).to_numpy()
    od.import_anndata(other, "sc-cells-b", label="cell_type", preprocess="scverse", n_top_genes=60,
                      block_bytes=BLOCK)
    rec_b = od.load("sc-cells-b").uns["omicsdata"]["extra"]["import"]["scverse"]["rna"]
    assert rec_b["genes_kept"] == rec["genes_kept"] and rec_b["target_sum"] == rec["target_sum"]


def test_mudata_import_aligns_missing_cells(cells, tmp_path):
    import anndata as ad
    import mudata as md

    rna = cells[:300].copy()
    prot = ad.AnnData(X=np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32),
                      obs=pd.DataFrame(index=rna.obs_names[100:]), var=pd.DataFrame(index=[f"p{i}" for i in range(5)]))
    mdata = md.MuData({"rna": rna, "protein": prot})
    mdata.obs = mdata.obs.join(rna.obs[["cell_type", "donor"]])
    path = tmp_path / "c.h5mu"
    mdata.write(path)
    od.import_mudata(path, "mu-cells", label="cell_type", split_by="donor", block_bytes=BLOCK)
    m = od.load("mu-cells")
    assert set(m.mod) == {"rna", "protein"}
    has = m.obs["has_protein"].to_numpy()
    assert has.sum() == 200 and not has[:100].any()
    P = np.asarray(m.mod["protein"].X.compute())
    assert np.array_equal(P[100:], prot.X) and not P[:100].any()


def test_bad_input_names_file_and_field(cells, h5ad, tmp_path):
    with pytest.raises(FormatError, match="cells.h5ad.*obs has no column 'celltype'"):
        od.import_anndata(h5ad, "bad-a", label="celltype")
    with pytest.raises(FormatError, match="split_by='patient'"):
        od.import_anndata(h5ad, "bad-b", split_by="patient")
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(FormatError, match="junk.h5ad.*not a readable .h5ad"):
        od.import_anndata(junk, "bad-c")
    with pytest.raises(FormatError, match="no such .h5ad"):
        od.import_anndata(tmp_path / "missing.h5ad", "bad-d")
    csc = cells[:50].copy()
    csc.X = sp.csc_matrix(csc.X)
    csc.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(FormatError, match="csc.h5ad: X.*'csc'"):
        od.import_anndata(tmp_path / "csc.h5ad", "bad-e")
    with pytest.raises(CatalogError, match="built-in"):
        od.import_anndata(h5ad, "demo-pancancer")
    with pytest.raises(CatalogError, match="dataset name"):
        od.import_anndata(h5ad, "Bad Name")
    with pytest.raises(OmicsDataError, match="preprocess"):
        od.import_anndata(h5ad, "bad-f", preprocess="seurat")
    gaps = cells[:100].copy()
    gaps.obs["donor"] = gaps.obs["donor"].astype(object)
    gaps.obs.iloc[3, gaps.obs.columns.get_loc("donor")] = None
    with pytest.raises(FormatError, match="split_by='donor'.*no group"):
        od.import_anndata(gaps, "bad-g", split_by="donor")
    assert not any(n.startswith("bad-") for n in od.list_datasets())  # nothing half-registered


def test_cli_import_and_reimport_after_cache_clear(h5ad, capsys):
    import shutil

    from omicsdata import paths
    from omicsdata.cli import main

    rc = main(["import", str(h5ad), "--name", "cli-cells", "--label", "cell_type", "--split-by", "donor"])
    assert rc == 0 and "cli-cells" in capsys.readouterr().out
    first = od.load("cli-cells").obs["split"].astype(str).to_numpy()
    shutil.rmtree(paths.store_dir("cli-cells", "1"))  # the cache was cleared: the builder re-imports
    again = od.load("cli-cells")
    assert (again.obs["split"].astype(str).to_numpy() == first).all()
    rc = main(["import", str(h5ad), "--name", "cli-cells", "--label", "nope", "--overwrite"])
    assert rc == 1 and "obs has no column 'nope'" in capsys.readouterr().err


def test_planted_types_are_learnable_and_shuffled_are_not():
    """The simulator's planted types are found by a plain classifier on held-out donors; shuffled are not."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    scores = {}
    for shuffle in (False, True):
        a = make_cells(n_cells=1000, n_genes=150, n_types=5, n_donors=5, seed=1, shuffle_labels=shuffle)
        name = f"learn-{int(shuffle)}"
        od.import_anndata(a, name, label="cell_type", split_by="donor", preprocess="scverse", n_top_genes=100)
        m = od.load(name)
        X = m.mod["rna"].X.compute().toarray()
        y = m.obs["cell_type"].astype(str).to_numpy()
        s = m.obs["split"].astype(str).to_numpy()
        tr, te = s == "train", s == "test"
        clf = LogisticRegression(max_iter=300).fit(X[tr], y[tr])
        scores[shuffle] = f1_score(y[te], clf.predict(X[te]), average="macro")
    chance = 1.0 / 5
    assert scores[False] > 0.8
    assert scores[True] < chance + 0.15
