"""omicsdata.transforms: fit on training rows only, JSON state, identical re-application."""
from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from omicsdata.errors import SchemaMismatchError
from omicsdata.transforms import (
    CorrelationPrune,
    DropNearConstant,
    Impute,
    Log1p,
    MissingFilter,
    Pipeline,
    Standardize,
    VarianceFilter,
    senmo_pipeline,
)


def data(n=60, p=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.gamma(2.0, 50.0, (n, p)).astype(np.float32)
    X[:, 3] = 7.0                      # constant
    X[:, 5] = X[:, 4] * 2 + 1          # perfectly correlated with feature 4
    X[rng.random((n, p)) < 0.05] = np.nan
    X[:, 7] = np.where(rng.random(n) < 0.5, np.nan, X[:, 7])  # half missing
    return ad.AnnData(X=X, var=pd.DataFrame(index=[f"g{i}" for i in range(p)]))


def test_fit_uses_training_rows_only():
    a = data()
    train = np.zeros(a.n_obs, bool)
    train[:40] = True
    pipe = Pipeline([Impute(), Log1p(), Standardize()]).fit(a, rows=train)
    Xt = np.log1p(np.where(np.isnan(a.X[:40]), np.nanmean(a.X[:40], axis=0), a.X[:40]))
    np.testing.assert_allclose(pipe.steps[2].mean_, Xt.mean(axis=0), rtol=1e-5)
    out = pipe.transform(a).X
    np.testing.assert_allclose(out[:40].mean(axis=0), 0, atol=1e-5)
    assert np.abs(out[40:].mean(axis=0)).max() > 1e-3  # test rows are not re-centred


def test_filters():
    a = data()
    pipe = Pipeline([MissingFilter(0.2), Impute(), DropNearConstant(1e-3), CorrelationPrune(0.95)]).fit(a)
    assert "g7" not in pipe.features_out and "g3" not in pipe.features_out
    assert ("g4" in pipe.features_out) != ("g5" in pipe.features_out)  # one of the correlated pair kept
    assert len(pipe.features_out) == 12 - 3
    top = Pipeline([Impute(), VarianceFilter(top_k=4)]).fit(a)
    var = np.nanvar(np.where(np.isnan(a.X), np.nanmean(a.X, axis=0), a.X), axis=0)
    assert sorted(top.features_out) == sorted(f"g{i}" for i in np.argsort(-var)[:4])


def test_to_dict_round_trip_and_alignment():
    a = data()
    pipe = senmo_pipeline("rna").fit(a, rows=np.arange(50))
    state = json.loads(json.dumps(pipe.to_dict()))  # JSON-serialisable
    again = Pipeline.from_dict(state)
    np.testing.assert_array_equal(again.transform(a).X, pipe.transform(a).X)
    assert list(again.transform(a).var_names) == pipe.features_out
    # new data with shuffled columns and one fitted feature missing: aligned by name, filled by Impute
    kept = pipe.features_out
    perm = a[:, list(reversed(a.var_names))]
    np.testing.assert_allclose(again.transform(perm).X, pipe.transform(a).X, rtol=1e-6)
    drop = a[:, [v for v in a.var_names if v != kept[0]]]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = again.transform(drop).X
    assert any("missing from the input" in str(x.message) for x in w)
    np.testing.assert_allclose(out[:, 1:], pipe.transform(a).X[:, 1:], rtol=1e-6)
    with pytest.raises(SchemaMismatchError, match="none of the"):
        again.transform(ad.AnnData(X=np.zeros((2, 2), np.float32), var=pd.DataFrame(index=["x", "y"])))
    with pytest.raises(SchemaMismatchError, match="unknown transform step"):
        Pipeline.from_dict({"steps": [{"name": "Nope"}]})


def test_present_rows_stay_zero():
    a = data()
    present = np.ones(a.n_obs, bool)
    present[:5] = False
    pipe = Pipeline([Impute(), Standardize()]).fit(a, rows=present)
    out = pipe.transform(a, present=present).X
    assert (out[:5] == 0).all() and not (out[5:] == 0).all()
