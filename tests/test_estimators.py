"""Behaviour of the estimators as a scikit-learn user relies on it."""

import inspect
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor

from fastbp import BackpropClassifier, BackpropRegressor, _kernels
from fastbp._optimizers import OPTIMIZERS

SOLVERS = [*OPTIMIZERS, "lbfgs"]


def test_digits_accuracy_with_default_parameters(digits):
    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    clf = BackpropClassifier(random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95


def test_regression_r2_on_par_with_mlpregressor():
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=1200, noise=0.3, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    params = dict(hidden_layer_sizes=(50,), max_iter=300, random_state=0)
    ours = BackpropRegressor(**params).fit(X_train, y_train).score(X_test, y_test)
    theirs = MLPRegressor(**params).fit(X_train, y_train).score(X_test, y_test)
    assert ours > 0.8
    assert ours == pytest.approx(theirs, abs=0.01)


def test_fitted_attributes(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(hidden_layer_sizes=(6, 5), max_iter=4, random_state=0).fit(X, y)
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3
    assert clf.out_activation_ == "softmax"
    assert [c.shape for c in clf.coefs_] == [(8, 6), (6, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(6,), (5,), (3,)]
    assert clf.n_features_in_ == 8 and clf.n_iter_ == 4 and clf.t_ == 4 * len(y)
    assert len(clf.loss_curve_) == 4 and clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert_array_equal(clf.classes_, [0, 1, 2])
    # coefs_ and intercepts_ are views into one flat parameter vector
    assert all(c.base is clf._model.params for c in clf.coefs_ + clf.intercepts_)


def test_predict_proba_rows_sum_to_one_and_log_proba_matches(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(max_iter=5, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert_allclose(proba.sum(axis=1), 1)
    assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_string_labels_and_binary_target(small_classification):
    X, y = small_classification
    labels = np.array(["cat", "dog"])[(y == 1).astype(int)]
    clf = BackpropClassifier(max_iter=20, random_state=0).fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert set(clf.predict(X)) <= {"cat", "dog"}


def test_multilabel_indicator_target(small_classification):
    X, y = small_classification
    Y = np.column_stack([y == 0, y == 1, y == 2, y != 1]).astype(int)
    clf = BackpropClassifier(max_iter=200, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    assert clf.predict(X).shape == Y.shape
    assert clf.score(X, Y) > 0.7


def test_multi_output_regression(small_regression):
    X, y = small_regression
    Y = np.column_stack([y, 2 * y + 1])
    reg = BackpropRegressor(solver="lbfgs", max_iter=300, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == Y.shape
    assert reg.score(X, Y) > 0.9


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_in_float32_out(Estimator, solver, small_classification):
    X, y = small_classification
    X = X.astype(np.float32)
    est = Estimator(solver=solver, max_iter=5, random_state=0).fit(X, y)
    assert all(p.dtype == np.float32 for p in est.coefs_ + est.intercepts_)
    out = est.predict_proba(X) if Estimator is BackpropClassifier else est.predict(X)
    assert out.dtype == np.float32


def test_integer_input_trains_in_float64(small_classification):
    X, y = small_classification
    est = BackpropClassifier(max_iter=3, random_state=0).fit((X * 10).astype(int), y)
    assert est.coefs_[0].dtype == np.float64


def test_read_only_input_is_accepted_and_never_written(small_classification):
    X, y = small_classification
    X = np.asfortranarray(X)  # neither C-contiguous nor writable
    X.flags.writeable = False
    y = y.copy()
    y.flags.writeable = False
    before = X.copy()
    for solver in ("adam", "lbfgs"):
        clf = BackpropClassifier(solver=solver, max_iter=3, random_state=0).fit(X, y)
        clf.predict(X)
    assert_array_equal(X, before)


@pytest.mark.parametrize("solver", SOLVERS)
def test_same_random_state_gives_identical_models(solver, small_classification):
    X, y = small_classification
    a = BackpropClassifier(solver=solver, max_iter=5, random_state=7).fit(X, y)
    b = BackpropClassifier(solver=solver, max_iter=5, random_state=7).fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(p, q)
    c = BackpropClassifier(solver=solver, max_iter=5, random_state=8).fit(X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_partial_fit_equals_one_epoch_of_fit(small_classification):
    X, y = small_classification
    params = dict(max_iter=1, random_state=0, shuffle=False)
    fitted = BackpropClassifier(**params).fit(X, y)
    partial = BackpropClassifier(**params).partial_fit(X, y, classes=np.unique(y))
    for p, q in zip(fitted.coefs_, partial.coefs_):
        assert_allclose(p, q)
    for _ in range(3):
        partial.partial_fit(X, y)
    assert partial.n_iter_ == 1 and partial.t_ == 4 * len(y)
    assert len(partial.loss_curve_) == 4


def test_partial_fit_rules(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(max_iter=3)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a chunk may miss classes
    assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.predict_proba(X).shape == (len(X), 3)
    # classes outside `classes`: test_bad_input.py; lbfgs has none: test_beyond_sklearn.py
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        BackpropRegressor(early_stopping=True).partial_fit(X, y.astype(float))


def test_warm_start_continues_from_previous_weights(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(max_iter=3, random_state=0, warm_start=True).fit(X, y)
    loss_after_first_fit = clf.loss_
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 6
    assert clf.loss_ < loss_after_first_fit
    cold = BackpropClassifier(max_iter=3, random_state=0).fit(X, y)
    cold.fit(X, y)
    assert len(cold.loss_curve_) == 3
    with pytest.raises(ValueError, match="warm_start can only be used"):
        clf.fit(X[y < 2], y[y < 2])


# None: scikit-learn's score (accuracy); the others: fastbp's ``scoring``.
@pytest.mark.parametrize("scoring", [None, "f1_macro", "neg_log_loss", "roc_auc_ovr"])
def test_early_stopping_restores_the_weights_of_the_best_epoch(scoring):
    X, y = make_classification(
        n_samples=400, n_features=10, n_classes=3, n_informative=5, random_state=0
    )
    clf = BackpropClassifier(
        early_stopping=True,
        scoring=scoring,
        n_iter_no_change=4,
        max_iter=100,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(X, y)
    scores = clf.validation_scores_
    assert len(scores) == len(clf.validation_loss_curve_) == clf.n_iter_ < 100
    assert clf.best_validation_score_ == max(scores)
    assert clf.best_loss_ is None
    best_epoch = int(np.argmax(scores)) + 1
    assert best_epoch < clf.n_iter_  # training went on past the best epoch
    # The same fit, stopped at the best epoch, ends on that epoch's weights (the best
    # of its epochs is its last): the weights restored must be those.
    at_best = clone(clf).set_params(max_iter=best_epoch).fit(X, y)
    assert at_best.validation_scores_ == scores[:best_epoch]
    for restored, expected in zip(
        clf.coefs_ + clf.intercepts_, at_best.coefs_ + at_best.intercepts_
    ):
        assert_array_equal(restored, expected)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_every_learning_rate_schedule_trains(learning_rate, small_regression):
    X, y = small_regression
    reg = BackpropRegressor(
        solver="sgd",
        learning_rate=learning_rate,
        learning_rate_init=0.05,
        max_iter=60,
        random_state=0,
    ).fit(X, y)
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]
    if learning_rate == "invscaling":
        expected = 0.05 / (reg.t_ + 1) ** reg.power_t
        assert reg._optimizer.learning_rate == pytest.approx(expected)


def test_adaptive_schedule_divides_the_rate_by_five(small_regression):
    X, y = small_regression
    reg = BackpropRegressor(
        solver="sgd",
        learning_rate="adaptive",
        tol=10.0,
        n_iter_no_change=1,
        max_iter=4,
        random_state=0,
    ).fit(X, y)
    assert reg._optimizer.learning_rate == pytest.approx(0.001 / 5)


def test_training_stops_when_loss_stops_improving(small_classification):
    X, y = small_classification
    clf = BackpropClassifier(tol=1.0, n_iter_no_change=2, max_iter=100).fit(X, y)
    # Epoch 1 sets best_loss_; epochs 2-4 fail to improve by tol; the third failure
    # exceeds n_iter_no_change and stops training, as in scikit-learn.
    assert clf.n_iter_ == 4


def test_verbose_prints_one_line_per_epoch(small_classification, capsys):
    X, y = small_classification
    BackpropClassifier(max_iter=3, verbose=True, random_state=0).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Iteration")]
    assert len(lines) == 3 and lines[0].startswith("Iteration 1, loss = ")


def test_keyboard_interrupt_stops_cleanly_with_a_usable_model(small_classification, monkeypatch):
    X, y = small_classification
    real_epochs = _kernels.run_epochs
    epochs_run = []

    def interrupted_in_the_third_call(*args):
        if len(epochs_run) == 2:
            raise KeyboardInterrupt
        n_run, finite = real_epochs(*args)
        epochs_run.append(n_run)
        return n_run, finite

    monkeypatch.setattr(_kernels, "run_epochs", interrupted_in_the_third_call)
    clf = BackpropClassifier(max_iter=500, random_state=0)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        clf.fit(X, y)
    # every epoch the kernel ran is counted, and nothing else
    assert clf.n_iter_ == sum(epochs_run) == len(clf.loss_curve_)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_several_epochs_per_call_train_exactly_as_one_per_call(small_classification, monkeypatch):
    """Short epochs run many to a compiled call; the convergence rule, the random
    draws and so the weights are those of one epoch per call (as with verbose)."""
    from fastbp import _stochastic

    X, y = small_classification
    cases = [
        (BackpropClassifier, X, y, "adam", {}),
        (BackpropClassifier, X, y, "sgd", {"learning_rate": "adaptive"}),
        # a float32 regressor applies the rule in float32 (its loss's precision)
        (BackpropRegressor, X.astype(np.float32), X[:, 0] - X[:, 1] ** 2, "adam", {}),
    ]
    for estimator, X, y, solver, params in cases:
        fits = []
        for per_call in (1, None):
            if per_call is not None:
                monkeypatch.setattr(_stochastic, "MAX_EPOCHS_PER_CALL", per_call)
            calls = []

            def counted(*args, calls=calls, real=_kernels.run_epochs):
                calls.append(args[6].shape[0])  # epochs in this call
                return real(*args)

            monkeypatch.setattr(_kernels, "run_epochs", counted)
            clf = estimator(solver=solver, max_iter=400, tol=1e-3, random_state=0, **params)
            clf.fit(X, y)
            monkeypatch.undo()
            fits.append((clf, calls))
        (one, one_calls), (several, several_calls) = fits
        assert max(one_calls) == 1 and max(several_calls) > 1
        assert one.n_iter_ == several.n_iter_ < 400  # stopped by the convergence rule
        assert one.loss_curve_ == several.loss_curve_
        assert one._no_improvement_count == several._no_improvement_count
        for a, b in zip(one.coefs_ + one.intercepts_, several.coefs_ + several.intercepts_):
            assert_array_equal(a, b)
        # the random state is left where one epoch per call leaves it
        assert one._random_state.randint(2**31) == several._random_state.randint(2**31)


def test_divergence_raises_and_leaves_a_fitted_model_unchanged(small_regression):
    X, y = small_regression
    reg = BackpropRegressor(solver="sgd", max_iter=5, random_state=0).fit(X, y)
    before = reg.predict(X)
    coefs_before = [c.copy() for c in reg.coefs_]
    reg.set_params(learning_rate_init=1e6, warm_start=True)
    with pytest.raises(ValueError, match=r"diverged .* in epoch \d+\. Try a smaller"):
        reg.fit(X, y * 1e6)
    assert_array_equal(reg.predict(X), before)
    for c, d in zip(reg.coefs_, coefs_before):
        assert_array_equal(c, d)


def test_clone_copies_the_parameters_not_the_fit(small_classification):
    # pickling a fitted model: tests/test_persistence.py
    X, y = small_classification
    clf = BackpropClassifier(max_iter=3, random_state=0).fit(X, y)
    cloned = clone(clf)
    assert cloned.get_params() == clf.get_params()
    assert not hasattr(cloned, "coefs_")


def test_assigned_weights_are_used_for_prediction(small_regression):
    X, y = small_regression
    reg = BackpropRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    reg.coefs_ = [np.zeros_like(c) for c in reg.coefs_]
    reg.intercepts_ = [np.zeros_like(b) for b in reg.intercepts_]
    reg.intercepts_[-1][:] = 3.0
    assert_allclose(reg.predict(X), 3.0)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_divergence_with_early_stopping_keeps_the_best_finite_weights(small_regression):
    X, y = small_regression
    reg = BackpropRegressor(
        solver="sgd", early_stopping=True, max_iter=50, random_state=0, learning_rate_init=0.01
    )
    reg.fit(X, y)
    reg.set_params(warm_start=True, learning_rate_init=1e5, n_iter_no_change=1000)
    with pytest.warns(ConvergenceWarning, match="diverged .* best validation score"):
        reg.fit(X, y * 1e4)
    assert all(np.isfinite(c).all() for c in reg.coefs_ + reg.intercepts_)
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize(
    "y",
    [
        np.array(["b", "a", "b", "c", "a"]),
        np.array([3, 7, 7, 3, 3]),
        np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 0, 0]]),
    ],
    ids=["multiclass", "binary", "multilabel"],
)
def test_label_encoding_equals_label_binarizer(y):
    from sklearn.preprocessing import LabelBinarizer

    clf = BackpropClassifier()
    clf._label_binarizer = LabelBinarizer().fit(y)
    clf.classes_ = clf._label_binarizer.classes_
    assert_array_equal(clf._binarize(y), clf._label_binarizer.transform(y).astype(bool))


@pytest.mark.parametrize(
    "params, category, text",
    [
        ({"max_iter": 2}, ConvergenceWarning, "Maximum iterations (2) reached"),
        ({"max_iter": 2, "batch_size": 10**6}, UserWarning, "batch_size"),
        ({"max_iter": 2, "solver": "lbfgs"}, ConvergenceWarning, "lbfgs failed to converge"),
    ],
)
def test_training_warnings_point_at_the_callers_line(small_classification, params, category,
                                                     text):  # fmt: skip
    X, y = small_classification
    with pytest.warns(category, match=re.escape(text)) as record:
        BackpropClassifier(random_state=0, **params).fit(X, y)
    locations = {(w.filename, w.lineno) for w in record if text in str(w.message)}
    fit_line = inspect.currentframe().f_lineno - 2
    assert locations == {(__file__, fit_line)}


def _parameter_doc(estimator, name):
    """The text of parameter ``name`` in the estimator's numpydoc docstring."""
    import re

    match = re.search(rf"^    {name} : .*?(?=^    \w+ : |\Z)", estimator.__doc__, re.M | re.S)
    assert match, name
    return match.group(0)


def test_docstrings_name_every_option_of_the_tables():
    from fastbp._kernel_codes import ACTIVATION_CODES
    from fastbp._losses import REGRESSION_LOSSES
    from fastbp._optimizers import OPTIMIZERS

    for estimator in (BackpropClassifier, BackpropRegressor):
        activation = _parameter_doc(estimator, "activation")
        solver = _parameter_doc(estimator, "solver")
        assert all(f"'{name}'" in activation for name in ACTIVATION_CODES), activation
        assert all(f"'{name}'" in solver for name in [*OPTIMIZERS, "lbfgs"]), solver
    loss = _parameter_doc(BackpropRegressor, "loss")
    assert all(f"'{name}'" in loss for name in REGRESSION_LOSSES), loss
