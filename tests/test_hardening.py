"""Smaller defects found by a hostile trial: each gets a clear error or consistent
state instead of a silent wrong result."""

import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from fastbp import BackpropClassifier, BackpropRegressor, _stochastic, fit_chunks
from fastbp._optimizers import OPTIMIZERS

SKLEARN_DIVERGENCE = (
    "Solver produced non-finite parameter weights. The input data may contain large "
    "values and need to be preprocessed."
)


@pytest.mark.parametrize("solver", [*OPTIMIZERS, "lbfgs"])
def test_divergence_raises_with_sklearns_sentence(solver):
    # scikit-learn's own test_nonfinite_params: features near the float64 maximum.
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    reg = BackpropRegressor(solver=solver)
    with pytest.raises(ValueError, match=re.escape(SKLEARN_DIVERGENCE)) as caught:
        reg.fit(X, y)
    assert "diverged" in str(caught.value)  # followed by where, and what to try
    assert not hasattr(reg, "coefs_")


def test_lbfgs_divergence_leaves_a_fitted_model_unchanged(small_regression):
    X, y = small_regression
    reg = BackpropRegressor(solver="lbfgs", max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    before = reg.predict(X)
    with pytest.raises(ValueError, match=re.escape(SKLEARN_DIVERGENCE)):
        reg.fit(X * np.finfo(np.float64).max, y)
    assert_array_equal(reg.predict(X), before)
    assert np.isfinite(reg.loss_)


def test_failed_warm_refit_keeps_every_curve(small_regression):
    X, y = small_regression
    calls = []

    def scorer(estimator, X, y):  # fails from its third call on
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("the scorer failed")
        return -float(len(calls))

    reg = BackpropRegressor(
        solver="sgd", early_stopping=True, scoring=scorer, max_iter=2, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    curves = {
        name: list(getattr(reg, name))
        for name in ("loss_curve_", "validation_scores_", "validation_loss_curve_")
    }
    assert all(len(curve) == 2 for curve in curves.values())
    reg.set_params(warm_start=True)
    with pytest.raises(RuntimeError, match="the scorer failed"):
        reg.fit(X, y)  # fails after the epoch's loss and validation loss were recorded
    for name, curve in curves.items():
        assert getattr(reg, name) == curve, name


@pytest.mark.parametrize("sizes", [(2.7,), (0.5,), (True,), (3, 2.0)])
def test_non_integer_hidden_layer_sizes_are_refused(sizes, small_classification):
    X, y = small_classification
    with pytest.raises(TypeError, match="hidden_layer_sizes must hold integers"):
        BackpropClassifier(hidden_layer_sizes=sizes).fit(X, y)


def test_integer_like_hidden_layer_sizes_are_accepted(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(hidden_layer_sizes=(np.int64(4), 3), max_iter=2)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert [c.shape[1] for c in clf.coefs_] == [4, 3, 3]


@pytest.mark.parametrize("weight", [-1.0, np.nan, np.inf])
def test_class_weight_must_be_finite_and_non_negative(weight, small_classification):
    X, y = small_classification
    clf = BackpropClassifier(class_weight={0: 1.0, 1: weight, 2: 1.0})
    with pytest.raises(ValueError, match="class_weight must give every class a finite"):
        clf.fit(X, y)


@pytest.mark.parametrize("seed", range(4))
def test_early_stopping_with_a_weightless_split_says_so(seed):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 3))
    # One row carries all the weight: one side of the split has none, whichever
    # side it falls on (scikit-learn divides by zero there).
    weights = np.zeros(100)
    weights[rng.randint(100)] = 1.0
    reg = BackpropRegressor(early_stopping=True, validation_fraction=0.5, random_state=seed)
    with pytest.raises(ValueError, match="at least one non-zero number.*early-stopping split"):
        reg.fit(X, X[:, 0], sample_weight=weights)


def test_scoring_is_validated_at_fit_even_without_early_stopping(small_classification):
    X, y = small_classification
    with pytest.raises(ValueError, match="no_such_scorer"):
        BackpropClassifier(scoring="no_such_scorer").fit(X, y)


# ---------------------------------------------------------------------- Ctrl-C
@pytest.mark.parametrize("epochs_per_call", [1, 1000])
@pytest.mark.parametrize("solver", list(OPTIMIZERS))
def test_ctrl_c_after_an_epoch_keeps_counters_with_the_weights(
    solver, epochs_per_call, small_classification, monkeypatch
):
    X, y = small_classification
    params = dict(solver=solver, random_state=0, hidden_layer_sizes=(6,), tol=0.0)
    monkeypatch.setattr(_stochastic, "MAX_EPOCHS_PER_CALL", epochs_per_call)

    # The interrupt arrives in the bookkeeping of the third epoch the kernel ran
    # (its first Python call after the kernel is epoch_ends), when the kernel may
    # have run later epochs in the same call.
    optimizer_class = OPTIMIZERS[solver]
    original = optimizer_class.epoch_ends
    calls = []

    def interrupted(self, step):
        calls.append(step)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(optimizer_class, "epoch_ends", interrupted)
    clf = BackpropClassifier(**params, max_iter=50)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.setattr(optimizer_class, "epoch_ends", original)
    assert clf.n_iter_ >= 3
    if epochs_per_call == 1:
        assert clf.n_iter_ == 3
    # every epoch in the weights is counted: they are those of a fit of n_iter_ epochs
    with pytest.warns(ConvergenceWarning):
        reference = BackpropClassifier(**params, max_iter=clf.n_iter_).fit(X, y)
    for ours, theirs in zip(clf.coefs_ + clf.intercepts_, reference.coefs_ + reference.intercepts_):
        assert_array_equal(ours, theirs)
    assert clf.n_iter_ == reference.n_iter_
    assert clf.t_ == reference.t_
    assert clf.loss_curve_ == reference.loss_curve_
    assert clf.loss_ == reference.loss_
    assert clf._optimizer.step == reference._optimizer.step  # Adam's t; SGD keeps none


# ---------------------------------------------------------------- fit_chunks
def test_fit_chunks_takes_a_generator_for_one_epoch_and_a_callable_for_more():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)

    def chunks():
        for start in range(0, 200, 50):
            yield X[start : start + 50], y[start : start + 50]

    one = fit_chunks(BackpropClassifier(random_state=0), chunks(), classes=[0, 1])
    assert one.t_ == 200
    many = fit_chunks(BackpropClassifier(random_state=0), chunks, epochs=3, classes=[0, 1])
    assert many.t_ == 600
    # a callable gives the same model as the equivalent list visited in order
    listed = fit_chunks(
        BackpropClassifier(random_state=0), list(chunks()), epochs=3, classes=[0, 1], shuffle=False
    )
    for a, b in zip(many.coefs_, listed.coefs_):
        assert_array_equal(a, b)
    with pytest.raises(ValueError, match="one-pass iterable"):
        fit_chunks(BackpropClassifier(), chunks(), epochs=2, classes=[0, 1])
    with pytest.raises(TypeError, match="chunks must be a sequence"):
        fit_chunks(BackpropClassifier(), 42)
    with pytest.raises(ValueError, match="chunks is empty"):
        fit_chunks(BackpropClassifier(), iter([]), classes=[0, 1])
