"""Multi-output squared-error regression: what the differences page says about the
summed loss and scikit-learn's stopping, checked against scikit-learn itself."""

import warnings

import numpy as np
import pytest
import sklearn.neural_network
from sklearn.datasets import make_regression
from sklearn.preprocessing import StandardScaler

import fastbp


@pytest.fixture(scope="module")
def three_outputs():
    X, y = make_regression(n_samples=300, n_features=10, n_targets=3, noise=5.0,
                           random_state=0)  # fmt: skip
    return StandardScaler().fit_transform(X), y / y.std()


def _fit(Estimator, X, y, **params):
    params = {"hidden_layer_sizes": (20,), "max_iter": 2000, "random_state": 0, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Estimator(**params).fit(X, y)


def _max_weight_difference(a, b):
    return max(
        np.abs(u - v).max() for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_summed_loss_stops_later_than_scikit_learn(three_outputs, solver):
    X, y = three_outputs
    theirs = _fit(sklearn.neural_network.MLPRegressor, X, y, solver=solver)
    ours = _fit(fastbp.MLPRegressor, X, y, solver=solver)
    assert ours.n_iter_ > theirs.n_iter_
    # the reported loss is the sum over outputs: about n_outputs times scikit-learn's mean
    first = _fit(sklearn.neural_network.MLPRegressor, X, y, solver=solver, max_iter=1)
    first_ours = _fit(fastbp.MLPRegressor, X, y, solver=solver, max_iter=1)
    assert first_ours.loss_ == pytest.approx(3 * first.loss_, rel=1e-3)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_tol_times_n_outputs_gives_scikit_learns_stopping(three_outputs, solver):
    X, y = three_outputs
    theirs = _fit(sklearn.neural_network.MLPRegressor, X, y, solver=solver, tol=1e-4)
    ours = _fit(fastbp.MLPRegressor, X, y, solver=solver, tol=3e-4)
    assert ours.n_iter_ == theirs.n_iter_
    assert _max_weight_difference(ours, theirs) < 1e-12


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_early_stopping_is_unaffected_by_the_summed_loss(three_outputs, solver):
    X, y = three_outputs
    theirs = _fit(sklearn.neural_network.MLPRegressor, X, y, solver=solver, early_stopping=True)
    ours = _fit(fastbp.MLPRegressor, X, y, solver=solver, early_stopping=True)
    assert ours.n_iter_ == theirs.n_iter_
    assert _max_weight_difference(ours, theirs) < 1e-12
