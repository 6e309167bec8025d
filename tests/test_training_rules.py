"""Training rules checked against what they say, computed independently of the kernels:
a minibatch whose weights sum to zero teaches nothing, class weights multiply sample
weights, and the convergence count starts again after every improvement."""

import types
import warnings

import numpy as np
import pytest
from numba import njit
from numpy.testing import assert_array_equal
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fastbp import BackpropClassifier, BackpropRegressor
from fastbp._convergence import KERNEL_MARGIN, no_improvement
from fastbp._early_stopping import update_no_improvement_count

# One configuration per kernel: the common path, and the full kernel (tanh takes it).
KERNEL_CONFIGURATIONS = [
    dict(solver="adam", activation="relu"),
    dict(solver="sgd", activation="relu", momentum=0.9),
    dict(solver="adam", activation="tanh"),
]


def _parameters(estimator):
    return estimator.coefs_ + estimator.intercepts_


# ------------------------------------------------------------ zero-weight batches
@pytest.mark.parametrize(
    "params", KERNEL_CONFIGURATIONS, ids=lambda p: "-".join(map(str, p.values()))
)
@pytest.mark.parametrize("Estimator", [BackpropRegressor, BackpropClassifier])
def test_a_batch_of_zero_weights_trains_as_if_its_rows_were_absent(Estimator, params):
    """Unshuffled batches of 10 rows, the third all of weight zero: training takes no
    step for it, so the weights are those of a fit without those 10 rows."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = X[:, 0] - X[:, 1] if Estimator is BackpropRegressor else np.arange(60) % 3
    sample_weight = rng.uniform(0.5, 2.0, 60)
    sample_weight[20:30] = 0.0
    kept = np.r_[0:20, 30:60]
    settings = dict(
        hidden_layer_sizes=(5,), batch_size=10, shuffle=False, max_iter=4, random_state=0,
        learning_rate_init=0.01, **params,
    )  # fmt: skip
    weighted = Estimator(**settings).fit(X, y, sample_weight=sample_weight)
    without = Estimator(**settings).fit(X[kept], y[kept], sample_weight=sample_weight[kept])
    for ours, expected in zip(_parameters(weighted), _parameters(without)):
        assert_array_equal(ours, expected)
    assert np.isfinite(weighted.loss_curve_).all()


# ------------------------------------------------------------------- class weights
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weight_multiplies_the_sample_weight(solver):
    """class_weight with sample_weight fits as sample_weight * class_weight[y] alone."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(90, 4))
    y = np.arange(90) % 3
    sample_weight = rng.uniform(0.5, 2.0, 90)
    class_weight = {0: 3.0, 1: 0.5, 2: 1.0}
    settings = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=8, random_state=0)
    both = BackpropClassifier(class_weight=class_weight, **settings).fit(
        X, y, sample_weight=sample_weight
    )
    multiplied = sample_weight * np.array([class_weight[label] for label in y])
    expected = BackpropClassifier(**settings).fit(X, y, sample_weight=multiplied)
    for ours, reference in zip(_parameters(both), _parameters(expected)):
        assert_array_equal(ours, reference)
    # and the class weights matter here: without them the fit differs
    ignored = BackpropClassifier(**settings).fit(X, y, sample_weight=sample_weight)
    assert not np.array_equal(both.coefs_[0], ignored.coefs_[0])


# ------------------------------------------------------------- convergence count
# A loss sequence that improves, stalls twice, improves, then stalls: with tol=0.01
# the count after each epoch is 0, 0, 1, 2, 0, 1, 2, 3 (it starts again at 0 when
# the loss beats the best by more than tol).
LOSSES = [1.0, 0.8, 0.795, 0.81, 0.6, 0.6, 0.599, 0.7]
COUNTS = [0, 0, 1, 2, 0, 1, 2, 3]
BEST = [1.0, 0.8, 0.795, 0.795, 0.6, 0.6, 0.599, 0.599]


def test_the_convergence_count_starts_again_after_an_improvement():
    estimator = types.SimpleNamespace(
        best_loss_=np.inf, loss_curve_=[], tol=0.01, _no_improvement_count=0
    )
    counts, best = [], []
    for loss in LOSSES:
        estimator.loss_curve_.append(loss)
        update_no_improvement_count(estimator, None, None)
        counts.append(estimator._no_improvement_count)
        best.append(estimator.best_loss_)
    assert counts == COUNTS
    assert best == BEST


@njit
def _kernel_counts(losses, tol):
    counts = np.empty(losses.shape[0], dtype=np.int64)
    best = np.empty(losses.shape[0])
    count, best_loss = 0, np.inf
    for epoch in range(losses.shape[0]):
        count, best_loss = no_improvement(losses[epoch], best_loss, tol, count, KERNEL_MARGIN)
        counts[epoch] = count
        best[epoch] = best_loss
    return counts, best


def test_the_kernels_convergence_count_starts_again_after_an_improvement():
    counts, best = _kernel_counts(np.array(LOSSES), 0.01)
    assert counts.tolist() == COUNTS
    assert best.tolist() == BEST


def _counts_by_the_rule(loss_curve, tol, reset):
    """scikit-learn's rule, written out here; ``reset=False`` is the rule with its
    reset taken away (the count then only grows)."""
    counts, best, count = [], np.inf, 0
    for loss in loss_curve:
        count = count + 1 if loss > best - tol else (0 if reset else count)
        best = min(best, loss)
        counts.append(count)
    return counts


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_n_iter_follows_sklearn_where_the_count_starts_again(kind):
    """A fit whose loss stalls, then improves by more than tol before the count passes
    n_iter_no_change: it stops where scikit-learn's MLP stops, later than it would if
    the count never started again (checked on scikit-learn's own loss curve)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    if kind == "regressor":
        y = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2]
        ours, theirs = BackpropRegressor, MLPRegressor
    else:
        y = (X[:, 0] * X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
        ours, theirs = BackpropClassifier, MLPClassifier
    settings = dict(
        hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.2, momentum=0.9,
        batch_size=30, tol=0.003, n_iter_no_change=3, max_iter=300, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = theirs(**settings).fit(X, y)
        fitted = ours(**settings).fit(X, y)
    curve = reference.loss_curve_
    counts = _counts_by_the_rule(curve, settings["tol"], reset=True)
    never_reset = _counts_by_the_rule(curve, settings["tol"], reset=False)
    # the case is one where the reset matters: without it training stops earlier
    assert counts[-1] > settings["n_iter_no_change"]  # scikit-learn stopped by the rule
    first_stop_without_reset = next(
        i + 1 for i, count in enumerate(never_reset) if count > settings["n_iter_no_change"]
    )
    assert first_stop_without_reset < reference.n_iter_ < settings["max_iter"]
    assert fitted.n_iter_ == reference.n_iter_
    assert fitted.t_ == reference.t_
