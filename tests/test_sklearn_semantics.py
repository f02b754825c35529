"""Issue 18 (4): scikit-learn semantics of every zoo estimator.

``fit(X, y)`` with arrays/DataFrames (labels, or survival as scikit-survival's
structured array / an ``(n, 2)`` array), ``split=`` filtering only when asked
(subsets and CV folds use every row; whole stores and catalog names keep the
train/test defaults), ``is_classifier``, ``sklearn.utils.estimator_checks`` and
``cross_val_score`` against a manual fold loop.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import small_cohort
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import KFold, cross_val_score

import zoo
from omicsdata.errors import SchemaMismatchError

pytestmark = pytest.mark.filterwarnings("ignore")


def _classifier(**kw):
    """A small, fast torch classifier: SeNMo with only a label target (one small member)."""
    base = dict(time_col=None, event_col=None, label_col="label", max_epochs=30, batch_size=64, patience=30,
                hidden=(16,), n_ensemble=1, dropout=0.0, lr=0.01, progress=False, device="cpu", use_stream=False)
    return zoo.SeNMo(**dict(base, **kw))


def _coxnet(**kw):
    return zoo.get_model_class("coxnet")(**dict(dict(n_alphas=8, inner_cv=3, max_features_per_modality=None), **kw))


def _planted(n=300, p=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    signal = X[:, 0] + 0.8 * X[:, 1]
    labels = np.where(signal > 0, 7, 3)  # ints that are not 0..k-1: the labels must come back as given
    time = rng.exponential(1.0, n) * np.exp(-signal)
    event = rng.random(n) < 0.75
    y_surv = np.zeros(n, dtype=[("Status", "?"), ("Survival_in_days", "<f8")])  # scikit-survival's layout
    y_surv["Status"], y_surv["Survival_in_days"] = event, time
    return X, labels, y_surv


# ------------------------------------------------------------------ estimator type
def test_estimator_type():
    assert is_classifier(_classifier()) and _classifier()._estimator_type == "classifier"
    assert is_classifier(zoo.get_model_class("mogonet")())  # classification is its only task
    for survival in (zoo.SeNMo(), zoo.DeepSurv(), _coxnet()):  # unset, like scikit-survival's estimators
        assert not is_classifier(survival) and not is_regressor(survival)
        assert survival._estimator_type is None


# ------------------------------------------------------------------ fit(X, y)
def test_classifier_on_arrays_learns_planted_labels_not_shuffled():
    X, labels, _ = _planted()
    tr, te = slice(0, 200), slice(200, None)
    m = _classifier().fit(X[tr], labels[tr])
    assert list(m.classes_) == [3, 7] and m.classes_.dtype.kind == "i"
    assert set(np.unique(m.predict(X[te]))) <= {3, 7}
    assert m.predict_proba(X[te]).shape == (100, 2) and m.n_features_in_ == X.shape[1]
    planted = m.score(X[te], labels[te])
    shuffled = _classifier().fit(X[tr], np.random.default_rng(1).permutation(labels[tr])).score(X[te], labels[te])
    assert planted > shuffled + 0.2
    assert m.evaluate(X[te], y=labels[te])["n"] == 100  # arrays: every row, no split filter


def test_dataframe_features_named_and_aligned_by_name():
    X, labels, _ = _planted()
    df = pd.DataFrame(X, columns=[f"gene{i}" for i in range(X.shape[1])], index=[f"p{i}" for i in range(len(X))])
    m = _classifier(max_epochs=5).fit(df.iloc[:200], pd.Series(labels[:200].astype(str)))
    assert list(m.feature_names_in_) == list(df.columns)
    assert set(m.classes_) == {"3", "7"}
    shuffled_cols = df.iloc[200:, ::-1]
    np.testing.assert_allclose(m.predict_proba(df.iloc[200:]), m.predict_proba(shuffled_cols), rtol=1e-5)
    with pytest.raises(SchemaMismatchError, match="expecting 12 features"):
        m.predict(X[200:, :5])


def test_survival_structured_and_two_column_y():
    X, _, y = _planted()
    tr, te = slice(0, 200), slice(200, None)
    cox = _coxnet().fit(X[tr], y[tr])
    two_col = np.column_stack([y["Survival_in_days"], y["Status"]])
    np.testing.assert_allclose(cox.predict(X[te]), _coxnet().fit(X[tr], two_col[tr]).predict(X[te]))
    planted = cox.score(X[te], y[te])
    rng = np.random.default_rng(2)
    shuffled = _coxnet().fit(X[tr], y[tr][rng.permutation(200)]).score(X[te], y[te])
    assert planted > shuffled + 0.1
    deep = zoo.DeepSurv(max_epochs=20, progress=False, device="cpu", use_stream=False).fit(X[tr], y[tr])
    assert deep.score(X[te], y[te]) > shuffled
    assert deep.evaluate(X[te], y=y[te])["n"] == 100


def test_bad_inputs_name_what_is_wrong():
    X, labels, y = _planted(n=40)
    with pytest.raises(SchemaMismatchError, match="requires y"):
        _classifier().fit(X)
    with pytest.raises(SchemaMismatchError, match="rows but y has"):
        _classifier().fit(X, labels[:10])
    with pytest.raises(SchemaMismatchError, match="time_col/event_col None"):
        _classifier().fit(X, y)
    with pytest.raises(SchemaMismatchError, match="no label_col"):
        _coxnet().fit(X, labels)
    bad = y.copy().astype([("a", "<f8"), ("b", "<f8")])
    with pytest.raises(SchemaMismatchError, match="one bool field"):
        _coxnet().fit(X, bad)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(SchemaMismatchError, match="NaN"):
        _coxnet().fit(Xn, y)


# ------------------------------------------------------------------ split only when asked
def test_subset_uses_every_row_whole_data_keeps_split_defaults():
    mdata = small_cohort(160, 3, seed=0)
    n_train = int((mdata.obs["split"] == "train").sum())
    n_test = int((mdata.obs["split"] == "test").sum())
    est = _coxnet(max_features_per_modality=20)
    est.fit(mdata)  # whole MuData: the "train" split, as before
    assert est.schema_["data"]["n_train"] == n_train and est.schema_["data"]["split"] == "train"
    assert est.evaluate(mdata)["n"] == n_test
    sub = mdata[:100]
    est.fit(sub)  # a subset: every given row
    assert est.schema_["data"]["n_train"] == 100 and est.schema_["data"]["split"] is None
    assert est.evaluate(sub)["n"] == 100
    assert est.evaluate(sub, split="test")["n"] == int((sub.obs["split"] == "test").sum())  # asked: filtered


def test_whole_store_keeps_train_default_and_store_subset_uses_all(demo_store):
    import omicsdata as od

    whole = od.open_store(demo_store)
    n_train = int((whole.obs["split"].astype(str) == "train").sum())
    est = _coxnet(max_features_per_modality=20)
    assert est.fit(demo_store).schema_["data"]["n_train"] == n_train  # store path
    assert est.fit(whole).schema_["data"]["n_train"] == n_train  # whole store MuData
    assert est.fit(whole[:90]).schema_["data"]["n_train"] == 90  # a subset of it
    assert est.evaluate(whole[:90])["n"] == 90


def test_cross_val_score_on_subset_matches_manual_folds():
    mdata = small_cohort(160, 3, seed=1)
    sub = mdata[:120]
    est = _coxnet(max_features_per_modality=20)
    cv = KFold(3, shuffle=True, random_state=0)
    got = cross_val_score(est, sub, cv=cv)
    manual, sizes = [], []
    for tr, te in cv.split(np.arange(sub.n_obs)):
        m = clone(est).fit(sub[tr])
        assert m.schema_["data"]["n_train"] == len(tr)
        manual.append(m.score(sub[te]))
        sizes.append(m.evaluate(sub[te])["n"])
    np.testing.assert_allclose(got, manual)
    assert sizes == [len(te) for _, te in cv.split(np.arange(sub.n_obs))]


def test_cross_val_score_arrays_classifier_matches_manual_folds():
    X, labels, _ = _planted(n=150)
    est = _classifier(max_epochs=5)
    cv = KFold(3, shuffle=True, random_state=0)
    got = cross_val_score(est, X, labels, cv=cv)
    manual = [clone(est).fit(X[tr], labels[tr]).score(X[te], labels[te]) for tr, te in cv.split(X)]
    np.testing.assert_allclose(got, manual)


# ------------------------------------------------------------------ sklearn.utils.estimator_checks
#: checks that pass on a small 10-epoch SeNMo classifier (the rest: see SKIPPED_OR_FAILING)
TORCH_PASSING = {
    "check_classifier_data_not_an_array", "check_classifiers_classes", "check_classifiers_one_label",
    "check_classifiers_one_label_sample_weights", "check_classifiers_regression_target", "check_classifiers_train",
    "check_complex_data", "check_decision_proba_consistency", "check_dict_unchanged",
    "check_do_not_raise_errors_in_init_or_set_params", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimator_cloneable", "check_estimator_repr", "check_estimator_sparse_array",
    "check_estimator_sparse_matrix", "check_estimator_sparse_tag", "check_estimator_tags_renamed",
    "check_estimators_dtypes", "check_estimators_empty_data_messages", "check_estimators_fit_returns_self",
    "check_estimators_nan_inf", "check_estimators_overwrite_params", "check_estimators_partial_fit_n_features",
    "check_estimators_pickle", "check_estimators_unfitted", "check_f_contiguous_array_estimator", "check_fit1d",
    "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_get_params_invariance",
    "check_methods_subset_invariance", "check_mixin_order", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_no_attributes_set_in_init",
    "check_non_transformer_estimators_n_iter", "check_parameters_default_constructible",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
    "check_requires_y_none", "check_set_params", "check_supervised_y_2d", "check_supervised_y_no_nan",
    "check_valid_tag_types",
}
#: the checks that apply to a survival model: scikit-learn's other checks feed class labels or real
#: values as y, which a (time, event) target is not (the model refuses them with a clear error)
SURVIVAL_PASSING = {
    "check_complex_data", "check_do_not_raise_errors_in_init_or_set_params", "check_estimator_cloneable",
    "check_estimator_repr", "check_estimator_tags_renamed", "check_estimators_empty_data_messages",
    "check_estimators_unfitted", "check_fit1d",
    "check_fit2d_1sample", "check_get_params_invariance", "check_mixin_order", "check_no_attributes_set_in_init",
    "check_parameters_default_constructible", "check_requires_y_none", "check_set_params",
    "check_valid_tag_types",
}
#: not required, and why
SKIPPED_OR_NOT_REQUIRED = {
    "check_array_api_input": "skipped by scikit-learn unless SCIPY_ARRAY_API is set",
    "check_methods_sample_order_invariance": "passes here, not required: float32 batched matmuls may differ in the "
                                             "last bits when rows are permuted (rtol 1e-7 asked); failed on a "
                                             "wider SeNMo (hidden=(128, 32), 5 members)",
}


def _results(est):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_estimator(est, on_fail=None)
    status: dict[str, set] = {}
    for r in res:
        status.setdefault(r["check_name"], set()).add(r["status"])
    return {name for name, s in status.items() if s == {"passed"}}, status


@pytest.mark.parametrize("kind", ["torch", "sklearn_base"])
def test_estimator_checks_keep_passing(kind):
    est = _classifier(max_epochs=10, patience=10) if kind == "torch" else _coxnet(n_alphas=5, inner_cv=2)
    expected = TORCH_PASSING if kind == "torch" else SURVIVAL_PASSING
    passed, status = _results(est)
    assert expected - passed == set(), {n: status.get(n) for n in expected - passed}
    assert status.get("check_array_api_input") == {"skipped"}
