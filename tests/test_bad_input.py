"""Every bad input gets a clear error that names the problem, and a failed call
leaves a fitted estimator exactly as it was."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from reference import forward
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from fastbp import BackpropClassifier, BackpropRegressor

rng = np.random.RandomState(0)
X = rng.normal(size=(40, 5))
Y_CLASS = np.arange(40) % 3
Y_REG = X[:, 0] - X[:, 1]


def _with(array, index, value):
    array = array.astype(object if isinstance(value, str) else array.dtype).copy()
    array[index] = value
    return array


# (id, estimator class, X, y, fit keyword arguments, exception, message pattern)
BAD_FITS = [
    (
        "nan-in-X",
        BackpropClassifier,
        _with(X, (3, 2), np.nan),
        Y_CLASS,
        {},
        ValueError,
        "Input X contains NaN",
    ),
    (
        "inf-in-X",
        BackpropRegressor,
        _with(X, (0, 0), np.inf),
        Y_REG,
        {},
        ValueError,
        "Input X contains infinity",
    ),
    (
        "nan-in-y",
        BackpropRegressor,
        X,
        _with(Y_REG, 4, np.nan),
        {},
        ValueError,
        "Input y contains NaN",
    ),
    (
        "inf-in-y",
        BackpropRegressor,
        X,
        _with(Y_REG, 4, np.inf),
        {},
        ValueError,
        "Input y contains infinity",
    ),
    (
        "empty-X",
        BackpropClassifier,
        X[:0],
        Y_CLASS[:0],
        {},
        ValueError,
        "Found array with 0 sample",
    ),
    ("zero-features", BackpropRegressor, X[:, :0], Y_REG, {}, ValueError, "0 feature\\(s\\)"),
    (
        "one-sample-classifier",
        BackpropClassifier,
        X[:1],
        Y_CLASS[:1],
        {},
        ValueError,
        "only one class",
    ),
    ("one-class", BackpropClassifier, X, np.zeros(40), {}, ValueError, "only one class"),
    (
        "string-X",
        BackpropClassifier,
        _with(X, (1, 1), "abc"),
        Y_CLASS,
        {},
        ValueError,
        "could not convert string to float",
    ),
    ("complex-X", BackpropRegressor, X + 1j, Y_REG, {}, ValueError, "Complex data not supported"),
    ("1d-X", BackpropRegressor, X[:, 0], Y_REG, {}, ValueError, "Expected 2D array"),
    (
        "3d-X",
        BackpropClassifier,
        X.reshape(40, 5, 1),
        Y_CLASS,
        {},
        ValueError,
        "Found array with dim 3",
    ),
    (
        "X-y-lengths",
        BackpropClassifier,
        X,
        Y_CLASS[:30],
        {},
        ValueError,
        "inconsistent numbers of samples",
    ),
    (
        "sample-weight-length",
        BackpropRegressor,
        X,
        Y_REG,
        {"sample_weight": np.ones(30)},
        ValueError,
        "sample_weight.shape == \\(30,\\)",
    ),
    (
        "negative-sample-weight",
        BackpropRegressor,
        X,
        Y_REG,
        {"sample_weight": _with(np.ones(40), 3, -1.0)},
        ValueError,
        "Negative values in data passed to `sample_weight`",
    ),
    (
        # X passes its own checks: the fit it would reset must be left alone
        "negative-sample-weight-other-width",
        BackpropClassifier,
        X[:, :3],
        Y_CLASS,
        {"sample_weight": -np.ones(40)},
        ValueError,
        "Negative values in data passed to `sample_weight`",
    ),
    (
        "zero-sample-weights",
        BackpropClassifier,
        X,
        Y_CLASS,
        {"sample_weight": np.zeros(40)},
        ValueError,
        # scikit-learn's check (1.8 on), else fastbp's own
        "Sample weights must (contain at least one non-zero number|sum to a positive value)",
    ),
    (
        "regression-target-for-classifier",
        BackpropClassifier,
        X,
        Y_REG,
        {},
        ValueError,
        "Unknown label type",
    ),
    (
        "string-y-for-regressor",
        BackpropRegressor,
        X,
        np.array(["a"] * 40),
        {},
        ValueError,
        "could not convert string to float",
    ),
]


@pytest.mark.parametrize(
    "Estimator, X_bad, y_bad, fit_params, error, message",
    [case[1:] for case in BAD_FITS],
    ids=[case[0] for case in BAD_FITS],
)
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_bad_fit_input_is_refused_and_leaves_the_model_unchanged(
    Estimator, X_bad, y_bad, fit_params, error, message, solver
):
    y_good = Y_CLASS if Estimator is BackpropClassifier else Y_REG
    est = Estimator(hidden_layer_sizes=(4,), solver=solver, max_iter=3, random_state=0)
    est.fit(X, y_good)
    outputs = est.predict_proba if Estimator is BackpropClassifier else est.predict
    before = outputs(X)
    state = dict(est.__dict__)
    with pytest.raises(error, match=message):
        est.fit(X_bad, y_bad, **fit_params)
    assert est.__dict__.keys() == state.keys()
    assert all(est.__dict__[key] is state[key] for key in state)
    assert_array_equal(outputs(X), before)  # nor changed in place


def test_negative_targets_with_poisson_loss():
    with pytest.raises(ValueError, match="negative which is not allowed for loss='poisson'"):
        BackpropRegressor(loss="poisson").fit(X, Y_REG)


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_predict_errors(Estimator):
    with pytest.raises(NotFittedError):
        Estimator().predict(X)
    y = Y_CLASS if Estimator is BackpropClassifier else Y_REG
    est = Estimator(max_iter=2, random_state=0).fit(X, y)
    methods = [est.predict] + (
        [est.predict_proba, est.predict_log_proba] if Estimator is BackpropClassifier else []
    )
    for method in methods:
        with pytest.raises(
            ValueError, match=f"X has 3 features, but {Estimator.__name__} is expecting 5"
        ):
            method(X[:, :3])
        with pytest.raises(ValueError, match="Input X contains NaN"):
            method(_with(X, (0, 0), np.nan))
        with pytest.raises(ValueError, match="Expected 2D array"):
            method(X[0])
        with pytest.raises(ValueError, match="Found array with 0 sample"):
            method(X[:0])
        assert np.isfinite(method(X[:1]).astype(float)).all()


def test_partial_fit_errors_leave_the_model_unchanged():
    clf = BackpropClassifier(random_state=0).partial_fit(X, Y_CLASS, classes=[0, 1, 2])
    before = clf.predict_proba(X)
    for X_bad, y_bad, message in [
        (X, Y_CLASS + 5, "`y` has classes not in `self.classes_`"),
        (X[:, :2], Y_CLASS, "X has 2 features, but BackpropClassifier is expecting 5"),
        (_with(X, (0, 0), np.inf), Y_CLASS, "Input X contains infinity"),
    ]:
        with pytest.raises(ValueError, match=message):
            clf.partial_fit(X_bad, y_bad)
        assert_array_equal(clf.predict_proba(X), before)
    with pytest.raises(ValueError, match="only one class"):
        BackpropClassifier().partial_fit(X, Y_CLASS * 0, classes=[0])


def test_failed_partial_fit_leaves_an_unfitted_estimator_unfitted():
    clf = BackpropClassifier()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.partial_fit(np.full_like(X, np.nan), Y_CLASS, classes=[0, 1, 2])
    assert not hasattr(clf, "classes_") and not hasattr(clf, "coefs_")


INVALID_PARAMETERS = [
    ("hidden_layer_sizes", "wide"),
    ("hidden_layer_sizes", -3),
    ("activation", "softmax"),
    ("solver", "newton"),
    ("alpha", -1.0),
    ("batch_size", 0),
    ("batch_size", "big"),
    ("learning_rate", "linear"),
    ("learning_rate_init", 0.0),
    ("power_t", -0.5),
    ("max_iter", 0),
    ("shuffle", "yes"),
    ("random_state", "seed"),
    ("tol", -1e-3),
    ("warm_start", 2),
    ("momentum", 1.5),
    ("nesterovs_momentum", "no"),
    ("early_stopping", None),
    ("validation_fraction", 1.0),
    ("beta_1", 1.0),
    ("beta_2", -0.1),
    ("epsilon", 0.0),
    ("n_iter_no_change", 0),
    ("max_fun", 0),
]


@pytest.mark.parametrize("name, value", INVALID_PARAMETERS)
@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_every_invalid_hyperparameter_is_named(Estimator, name, value):
    y = Y_CLASS if Estimator is BackpropClassifier else Y_REG
    with pytest.raises(
        InvalidParameterError, match=f"The '{name}' parameter of {Estimator.__name__}"
    ):
        Estimator(**{name: value}).fit(X, y)


def test_invalid_class_weight_and_loss_are_named():
    with pytest.raises(InvalidParameterError, match="'class_weight' parameter"):
        BackpropClassifier(class_weight="uniform").fit(X, Y_CLASS)
    with pytest.raises(InvalidParameterError, match="'loss' parameter"):
        BackpropRegressor(loss="pinball").fit(X, Y_REG)
    with pytest.raises(InvalidParameterError, match="'quantile' parameter"):
        BackpropRegressor(loss="quantile", quantile=1.0).fit(X, Y_REG)
    with pytest.raises(InvalidParameterError, match="'weight_decay' parameter"):
        BackpropClassifier(solver="adamw", weight_decay=-0.1).fit(X, Y_CLASS)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        BackpropClassifier(hidden_layer_sizes=(5, 0)).fit(X, Y_CLASS)


def test_overflowing_inputs_never_give_nan_predictions():
    clf = BackpropClassifier(max_iter=2, random_state=0).fit(X, Y_CLASS)
    reg = BackpropRegressor(max_iter=2, random_state=0).fit(X, Y_REG)
    huge = np.full((2, 5), 1e308)
    # The trained weights keep every unit finite; the softmax saturates to 0 and 1.
    proba = clf.predict_proba(huge)
    assert_array_equal(proba, forward(clf.coefs_, clf.intercepts_, huge, "relu", "log_loss"))
    assert_array_equal(clf.predict(huge), clf.classes_[proba.argmax(axis=1)])
    # With weights of 1, every unit sums five values of 1e308: overflow to inf.
    for estimator in (clf, reg):
        for coef in estimator.coefs_:
            coef[:] = 1.0
    for method in (reg.predict, clf.predict_proba, clf.predict_log_proba, clf.predict):
        with pytest.raises(ValueError, match="overflowed"):
            method(huge)
