"""The estimators inside scikit-learn's machinery, with sparse input, pandas and
weights, the way people use them."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
    cross_validate,
)
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropClassifier, BackpropRegressor
from fastbp._optimizers import OPTIMIZERS


# --------------------------------------------------------------------- sparse
def _sparse_problem():
    rng = np.random.RandomState(0)
    X = sp.random(120, 40, density=0.1, format="csr", random_state=rng)
    row_sums = np.asarray(X.sum(axis=1)).ravel()
    y = (row_sums > np.median(row_sums)).astype(int)
    return X, y


@pytest.mark.parametrize("solver", [*OPTIMIZERS, "lbfgs"])
@pytest.mark.parametrize("to_format", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
def test_sparse_input_matches_dense(solver, to_format):
    X, y = _sparse_problem()
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, random_state=0)
    dense = BackpropClassifier(**params).fit(X.toarray(), y)
    sparse = BackpropClassifier(**params).fit(to_format(X), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert_allclose(sparse.predict_proba(to_format(X)), dense.predict_proba(X.toarray()))


def test_sparse_input_is_not_densified(monkeypatch):
    X, y = _sparse_problem()

    def refuse(*args, **kwargs):
        raise AssertionError("the sparse matrix was densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", refuse)
    monkeypatch.setattr(sp.csr_matrix, "todense", refuse)
    clf = BackpropRegressor(max_iter=5, random_state=0).fit(X, y.astype(float))
    assert clf.predict(X).shape == (X.shape[0],)


def test_sparse_float32_and_partial_fit():
    X, y = _sparse_problem()
    X = X.astype(np.float32)
    clf = BackpropClassifier(max_iter=3, random_state=0).partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X.tocsc(), y)
    assert clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32


# --------------------------------------------------------------------- pandas
def test_dataframe_feature_names_and_string_labels(small_classification):
    X, y = small_classification
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = pd.Series(np.array(["red", "green", "blue"])[y])
    clf = BackpropClassifier(max_iter=5, random_state=0).fit(frame, labels)
    assert_array_equal(clf.feature_names_in_, frame.columns)
    assert_array_equal(clf.classes_, ["blue", "green", "red"])
    assert set(clf.predict(frame)) <= {"red", "green", "blue"}

    renamed = frame.rename(columns={"f0": "other"})
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(renamed)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.predict(X)


def test_set_output_pandas_in_a_pipeline(small_regression):
    X, y = small_regression
    frame = pd.DataFrame(X, columns=list("abcdef"))
    pipe = make_pipeline(StandardScaler(), BackpropRegressor(max_iter=5, random_state=0))
    pipe.set_output(transform="pandas")
    pipe.fit(frame, y)
    assert_array_equal(pipe[-1].feature_names_in_, list("abcdef"))
    assert pipe.predict(frame).shape == (len(y),)

    columns = ColumnTransformer([("scaled", StandardScaler(), ["a", "b", "c"])])
    pipe = make_pipeline(columns, BackpropRegressor(max_iter=5, random_state=0))
    pipe.fit(frame, y)
    assert pipe[-1].n_features_in_ == 3


# ------------------------------------------------------------- sample weights
def test_zero_weights_equal_dropping_rows(small_regression):
    X, y = small_regression
    weights = np.ones(len(y))
    weights[::3] = 0
    params = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=50, random_state=0)
    weighted = BackpropRegressor(**params).fit(X, y, sample_weight=weights)
    dropped = BackpropRegressor(**params).fit(X[weights > 0], y[weights > 0])
    assert_allclose(weighted.predict(X), dropped.predict(X), rtol=1e-6, atol=1e-8)


def test_integer_weights_equal_repeated_rows_with_full_batches(small_classification):
    X, y = small_classification
    weights = np.random.RandomState(0).randint(1, 4, len(y))
    # One batch holding every (repeated) row, so that both see the same gradient.
    params = dict(hidden_layer_sizes=(6,), max_iter=20, batch_size=int(weights.sum()))
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        weighted = BackpropClassifier(**params, random_state=0).fit(X, y, sample_weight=weights)
    params["random_state"] = 0
    repeated = BackpropClassifier(**params).fit(np.repeat(X, weights, 0), np.repeat(y, weights))
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-9)


def test_weights_are_normalised_by_their_sum(small_classification):
    X, y = small_classification
    weights = np.random.RandomState(1).uniform(0.5, 2, len(y))
    params = dict(hidden_layer_sizes=(6,), solver="sgd", max_iter=10, random_state=0)
    a = BackpropClassifier(**params).fit(X, y, sample_weight=weights)
    b = BackpropClassifier(**params).fit(X, y, sample_weight=8 * weights)
    assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-6, atol=1e-9)


def test_partial_fit_accepts_sample_weight(small_regression):
    X, y = small_regression
    reg = BackpropRegressor(random_state=0)
    for chunk in np.array_split(np.arange(len(y)), 4):
        reg.partial_fit(X[chunk], y[chunk], sample_weight=np.full(len(chunk), 2.0))
    assert reg.t_ == len(y)


# --------------------------------------------------------------- class_weight
def test_class_weight_balanced_equals_explicit_weights(small_classification):
    X, y = small_classification
    keep = (y != 2) | (np.arange(len(y)) % 4 == 0)  # make class 2 rare
    X, y = X[keep], y[keep]
    counts = np.bincount(y)
    explicit = len(y) / (3 * counts[y])
    params = dict(hidden_layer_sizes=(6,), max_iter=10, random_state=0)
    balanced = BackpropClassifier(class_weight="balanced", **params).fit(X, y)
    weighted = BackpropClassifier(**params).fit(X, y, sample_weight=explicit)
    assert_allclose(balanced.coefs_[0], weighted.coefs_[0], rtol=1e-10)


def test_class_weight_dict_shifts_predictions(small_classification):
    X, y = small_classification
    params = dict(hidden_layer_sizes=(6,), max_iter=100, random_state=0)
    plain = BackpropClassifier(**params).fit(X, y)
    favour_zero = BackpropClassifier(class_weight={0: 20.0, 1: 1.0, 2: 1.0}, **params).fit(X, y)
    assert (favour_zero.predict(X) == 0).sum() > (plain.predict(X) == 0).sum()


def test_class_weight_balanced_is_refused_by_partial_fit(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.set_params(class_weight={0: 2.0, 1: 1.0, 2: 1.0}).partial_fit(X, y, classes=[0, 1, 2])


# ------------------------------------------------------- scikit-learn machinery
def test_pipeline_and_cross_val_score(digits):
    X, y = digits
    pipe = Pipeline(
        [("scale", StandardScaler()), ("mlp", BackpropClassifier(max_iter=100, random_state=0))]
    )
    scores = cross_val_score(pipe, X[:600], y[:600], cv=3)
    assert scores.mean() > 0.85


# Searches with n_jobs=2 (processes and threads) against one job:
# tests/test_scale_out.py::test_grid_search_with_two_jobs_matches_one_job.


def test_randomized_search(small_regression):
    X, y = small_regression
    search = RandomizedSearchCV(
        BackpropRegressor(max_iter=20, random_state=0),
        dict(learning_rate_init=[1e-3, 1e-2, 3e-2], activation=["relu", "tanh"]),
        n_iter=4,
        cv=3,
        random_state=0,
        n_jobs=2,
    ).fit(X, y)
    assert np.isfinite(search.best_score_)


def test_cross_validate_returns_a_clone_fitted_on_each_training_fold(small_classification):
    X, y = small_classification
    estimator = BackpropClassifier(max_iter=10, random_state=0)
    result = cross_validate(estimator, X, y, cv=3, return_estimator=True, return_indices=True)
    assert not hasattr(estimator, "coefs_")  # the estimator passed in stays unfitted
    for fitted, train in zip(result["estimator"], result["indices"]["train"]):
        alone = clone(estimator).fit(X[train], y[train])
        assert_array_equal(fitted.predict_proba(X), alone.predict_proba(X))


def test_calibrated_classifier_calibrates_each_folds_fastbp_model(small_classification):
    """Each fold's member is fastbp's model fitted on the fold's training rows, and
    the calibrated probabilities are its sigmoid-calibrated predict_proba (one map
    per class, normalised), averaged over the folds: recomputed here."""
    X, y = small_classification
    labels = np.array(["c", "a", "b"])[y]  # classes_ sorts them: a, b, c
    model = BackpropClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some folds stop at max_iter
        calibrated = CalibratedClassifierCV(model, cv=3, method="sigmoid").fit(X, labels)
    assert list(calibrated.classes_) == ["a", "b", "c"]
    expected = np.zeros((len(X), 3))
    folds = StratifiedKFold(3).split(X, labels)
    for member, (train, _) in zip(calibrated.calibrated_classifiers_, folds):
        alone = clone(model).fit(X[train], labels[train])
        assert_array_equal(member.estimator.predict_proba(X), alone.predict_proba(X))
        scores = alone.predict_proba(X)
        per_class = np.column_stack(
            [calibrator.predict(scores[:, k]) for k, calibrator in enumerate(member.calibrators)]
        )
        expected += per_class / per_class.sum(axis=1, keepdims=True) / 3
        # each class's calibrated probability rises with fastbp's score for that class
        # (a column of predict_proba that is not its class's would not)
        assert all(calibrator.a_ < 0 for calibrator in member.calibrators)
    assert_allclose(calibrated.predict_proba(X), expected, rtol=1e-12)
    assert not np.allclose(expected, model.fit(X, labels).predict_proba(X), atol=1e-3)


def test_voting_and_stacking(small_classification):
    X, y = small_classification
    members = [
        ("mlp", BackpropClassifier(max_iter=30, random_state=0)),
        ("logistic", LogisticRegression()),
    ]
    voting = VotingClassifier(members, voting="soft").fit(X, y)
    stacking = StackingClassifier(members, final_estimator=LogisticRegression(), cv=3).fit(X, y)
    assert voting.score(X, y) > 0.7 and stacking.score(X, y) > 0.7


def test_multi_output_and_transformed_target_regressors(small_regression):
    X, y = small_regression
    Y = np.column_stack([y, -y])
    multi = MultiOutputRegressor(BackpropRegressor(max_iter=20, random_state=0)).fit(X, Y)
    assert multi.predict(X).shape == Y.shape
    transformed = TransformedTargetRegressor(
        regressor=BackpropRegressor(max_iter=20, random_state=0),
        func=np.expm1,
        inverse_func=np.log1p,
        check_inverse=False,
    ).fit(X, np.log1p(np.abs(y)))
    assert transformed.predict(X).shape == y.shape
