"""Same random_state, same model: parity with the installed scikit-learn.

The initial weights, the shuffling and the validation split use the same random
draws as scikit-learn, so in float64 the fitted parameters agree to rounding.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fastbp import BackpropClassifier, BackpropRegressor

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


def _fit_pair(ours, theirs, X, y, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y, **fit_params)
        theirs.fit(X, y, **fit_params)
    return ours, theirs


def _assert_same_parameters(ours, theirs, rtol):
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.shape == reference.shape
        assert_allclose(mine, reference, rtol=rtol, atol=rtol * np.abs(reference).max())


def _both(kind, **params):
    if kind == "classifier":
        return BackpropClassifier(**params), MLPClassifier(**params)
    return BackpropRegressor(**params), MLPRegressor(**params)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_stochastic_solvers_match_sklearn_on_multiclass(solver, activation, small_classification):
    X, y = small_classification
    params = dict(
        hidden_layer_sizes=(12, 7),
        activation=activation,
        solver=solver,
        max_iter=8,
        batch_size=32,
        learning_rate_init=0.01,
        random_state=3,
    )
    ours, theirs = _fit_pair(*_both("classifier", **params), X, y)
    _assert_same_parameters(ours, theirs, rtol=1e-8)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_lbfgs_matches_sklearn(activation, small_classification):
    X, y = small_classification
    params = dict(
        hidden_layer_sizes=(10,), activation=activation, solver="lbfgs", max_iter=30, random_state=1
    )
    ours, theirs = _fit_pair(*_both("classifier", **params), X, y)
    _assert_same_parameters(ours, theirs, rtol=1e-6)
    assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize(
    "sgd_params",
    [
        dict(learning_rate="constant", nesterovs_momentum=False),
        dict(learning_rate="constant", momentum=0.0),
        dict(learning_rate="invscaling", power_t=0.3),
        dict(learning_rate="adaptive", n_iter_no_change=2, tol=0.5),
    ],
    ids=["momentum", "plain", "invscaling", "adaptive"],
)
def test_sgd_schedules_match_sklearn(sgd_params, small_regression):
    X, y = small_regression
    params = dict(
        hidden_layer_sizes=(9,),
        solver="sgd",
        max_iter=15,
        batch_size=20,
        learning_rate_init=0.05,
        random_state=0,
        **sgd_params,
    )
    ours, theirs = _fit_pair(*_both("regressor", **params), X, y)
    _assert_same_parameters(ours, theirs, rtol=1e-8)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_early_stopping_matches_sklearn(kind, small_classification, small_regression):
    X, y = small_classification if kind == "classifier" else small_regression
    if kind == "classifier":
        y = y == 1  # a binary problem, which scikit-learn stratifies
    params = dict(
        hidden_layer_sizes=(8,),
        early_stopping=True,
        max_iter=40,
        n_iter_no_change=3,
        learning_rate_init=0.01,
        random_state=5,
    )
    ours, theirs = _fit_pair(*_both(kind, **params), X, y)
    _assert_same_parameters(ours, theirs, rtol=1e-8)
    assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-10)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("first, then", [(True, False), (False, True)])
def test_partial_fit_keeps_the_momentum_kind_it_started_with(first, then, small_regression):
    """scikit-learn's optimizer is made once, by the first partial_fit, and keeps its
    Nesterov setting: changing ``nesterovs_momentum`` between calls changes nothing
    until a fresh fit. fastbp's kernels read the setting from its optimizer too."""
    X, y = small_regression
    params = dict(hidden_layer_sizes=(6,), solver="sgd", nesterovs_momentum=first,
                  learning_rate_init=0.01, batch_size=16, random_state=0)  # fmt: skip
    ours, theirs = _both("regressor", **params)
    for model in (ours, theirs):
        model.partial_fit(X, y)
        model.set_params(nesterovs_momentum=then)
        model.partial_fit(X, y)
        model.partial_fit(X, y)
    _assert_same_parameters(ours, theirs, rtol=1e-9)
    assert ours._optimizer.nesterov is first


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sample_weight_matches_sklearn(solver, small_regression):
    X, y = small_regression
    sample_weight = np.random.RandomState(0).uniform(0.2, 3.0, len(y))
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=10, random_state=2)
    ours, theirs = _fit_pair(*_both("regressor", **params), X, y, sample_weight=sample_weight)
    _assert_same_parameters(ours, theirs, rtol=1e-8 if solver != "lbfgs" else 1e-6)


def test_binary_and_multilabel_match_sklearn(small_classification):
    X, y = small_classification
    for target in (y == 0, np.column_stack([y == 0, y == 1, y != 2])):
        params = dict(hidden_layer_sizes=(7,), max_iter=6, random_state=4, shuffle=False)
        ours, theirs = _fit_pair(*_both("classifier", **params), X, target)
        _assert_same_parameters(ours, theirs, rtol=1e-8)
        assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)
        assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regression_losses_match_sklearn(loss, small_regression):
    X, y = small_regression
    if loss == "poisson":
        y = np.random.RandomState(0).poisson(np.exp(0.5 * X[:, 0]))
    params = dict(loss=loss, hidden_layer_sizes=(5,), max_iter=7, random_state=0)
    ours, theirs = _fit_pair(*_both("regressor", **params), X, y)
    _assert_same_parameters(ours, theirs, rtol=1e-8)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


def test_multi_output_regression_matches_sklearn(small_regression):
    """Weights match; the reported loss is summed over outputs (scikit-learn
    reports the mean, inconsistently with its gradient)."""
    X, y = small_regression
    Y = np.column_stack([y, -2 * y, X[:, 3]])
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0, alpha=0.0)
    ours, theirs = _fit_pair(*_both("regressor", **params), X, Y)
    _assert_same_parameters(ours, theirs, rtol=1e-8)
    assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-10)
    # With alpha=0, the sum over the 3 outputs is exactly 3 times the mean.
    assert_allclose(ours.loss_curve_, 3 * np.asarray(theirs.loss_curve_), rtol=1e-10)


def test_float32_stays_close_to_sklearn(small_classification):
    X, y = small_classification
    X = X.astype(np.float32)
    params = dict(hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    ours, theirs = _fit_pair(*_both("classifier", **params), X, y)
    assert ours.coefs_[0].dtype == np.float32
    _assert_same_parameters(ours, theirs, rtol=1e-3)


def test_initial_weights_equal_sklearn(small_classification):
    X, y = small_classification
    for activation in ("logistic", "relu"):
        params = dict(
            hidden_layer_sizes=(4, 3),
            activation=activation,
            random_state=11,
            solver="sgd",
            learning_rate_init=1e-300,
            max_iter=1,
            momentum=0.0,
        )
        ours, theirs = _fit_pair(*_both("classifier", **params), X, y)
        for mine, reference in zip(ours.coefs_, theirs.coefs_):
            assert_allclose(mine, reference, rtol=0, atol=0)
