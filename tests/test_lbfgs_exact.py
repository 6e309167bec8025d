"""L-BFGS within the exact budget: scikit-learn's arithmetic, bit for bit, from
buffers that are allocated once per fit and reused by every evaluation; and the
L-BFGS-B loop that replaces scipy.optimize.minimize's wrappers, checked against
scipy.optimize.minimize itself."""

import inspect
import threading
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_digits, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.neural_network._base import ACTIVATIONS, DERIVATIVES, LOSS_FUNCTIONS
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import safe_sparse_dot
from threadpoolctl import threadpool_limits

from fastbp import BackpropClassifier, BackpropRegressor, _lbfgs
from fastbp._lbfgs import SklearnArithmeticObjective, lbfgsb, scipy_driver_is_known
from fastbp._network import NetworkLayout


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Both libraries at one BLAS thread: where a second core is busy, scipy's setulb
    waits for the second thread at every call (7x the time of a fit)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(params=["compiled", "numpy"])
def steps(request, monkeypatch):
    """The objective's element-wise steps compiled (large batches) or numpy's (small
    ones), whatever the batch size."""
    threshold = 0 if request.param == "compiled" else np.inf
    monkeypatch.setattr(_lbfgs, "COMPILED_STEPS_MIN_VALUES", threshold)
    monkeypatch.setattr(_lbfgs, "NUMPY_STEPS_SMALL_FITS", np.inf)
    return request.param


def _bits(array):
    """The IEEE bit patterns (so that -0.0 and 0.0, or two NaNs, are told apart)."""
    array = np.ascontiguousarray(array)
    return array.view({4: np.uint32, 8: np.uint64}[array.dtype.itemsize])


def assert_bit_identical(ours, theirs):
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(_bits(ours), _bits(theirs))


def assert_bit_identical_but_nan_signs(ours, theirs):
    """Bit for bit, except that a NaN may be another NaN: a sum that meets NaN (or
    inf - inf) carries the sign and payload of whichever operand the adder's machine
    code puts first, which a compiler may swap. Nothing in a fit tells NaNs apart
    (a NaN loss or gradient ends it either way)."""
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    canonical = np.asarray(np.nan, ours.dtype)
    assert_bit_identical(np.where(np.isnan(ours), canonical, ours),
                         np.where(np.isnan(theirs), canonical, theirs))  # fmt: skip


def assert_same_fit(ours, theirs):
    """Same iterates: weights, loss and iteration count, bit for bit."""
    assert ours.n_iter_ == theirs.n_iter_
    assert len(ours.coefs_) == len(theirs.coefs_)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_bit_identical(np.asarray(a), np.asarray(b))
    assert float(ours.loss_) == float(theirs.loss_)
    assert hasattr(ours, "loss_curve_") == hasattr(theirs, "loss_curve_")


# ------------------------------------------------- the objective, one evaluation
def _problem(kind, n_samples=40, n_features=5, seed=0):
    """(X, y for fit, 2-D target as the objective sees it, estimator class, params)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features))
    if kind == "binary":
        y = (X[:, 0] + 0.3 * rng.normal(size=n_samples) > 0).astype(int)
        return X, y, y.reshape(-1, 1).astype(bool), MLPClassifier, {}
    if kind == "multiclass":
        y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
        return X, y, np.eye(3, dtype=bool)[y], MLPClassifier, {}
    if kind == "multilabel":
        y = (X[:, :3] > 0).astype(int)
        return X, y, y.astype(bool), MLPClassifier, {}
    if kind == "squared_error":
        y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.normal(size=n_samples)
        return X, y, y.reshape(-1, 1), MLPRegressor, {}
    assert kind == "poisson"
    y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    return X, y, y.reshape(-1, 1), MLPRegressor, {"loss": "poisson"}


def _sklearn_objective(kind, activation, sample_weight, X, hidden=(6, 4), n_samples=40):
    """scikit-learn's own ``_loss_grad_lbfgs`` (a model set up by a one-iteration
    L-BFGS fit), and the loss name fastbp's objective takes."""
    X_fit, y, target, Estimator, params = _problem(kind, n_samples)
    mlp = Estimator(hidden_layer_sizes=hidden, activation=activation, solver="lbfgs",
                    max_iter=1, alpha=0.3, random_state=0, **params)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X_fit, y)
    n_layers = mlp.n_layers_

    def loss_grad(packed):
        return mlp._loss_grad_lbfgs(
            packed, X, target, sample_weight, [X] + [None] * (n_layers - 1),
            [None] * (n_layers - 1), [None] * (n_layers - 1), [None] * (n_layers - 1),
        )  # fmt: skip

    if Estimator is MLPRegressor:
        loss = params.get("loss", "squared_error")
    else:
        loss = "binary_log_loss" if mlp.out_activation_ == "logistic" else "log_loss"
    return loss_grad, loss, target, mlp


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "squared_error", "poisson"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_objective_equals_sklearns_loss_grad_lbfgs_bit_for_bit_at_every_call(
    activation, kind, weighted, steps
):
    X = _problem(kind)[0]
    sample_weight = np.random.RandomState(1).uniform(0.2, 2.0, len(X)) if weighted else None
    theirs, loss, target, mlp = _sklearn_objective(kind, activation, sample_weight, X)
    layout = NetworkLayout([X.shape[1], 6, 4, target.shape[1]])
    ours = SklearnArithmeticObjective(layout, X, target, sample_weight, activation, loss, 0.3)
    rng = np.random.RandomState(2)
    points = [rng.uniform(-1, 1, layout.n_params) for _ in range(2)]
    # Each evaluation starts from the buffers the previous one left: a step that
    # accumulates instead of overwriting, or views of an old parameter vector, shows
    # at the second and third calls. A fresh array each time, as the fit's is not.
    for packed in (points[0], points[1], points[0].copy()):
        expected_loss, expected_gradient = theirs(packed.copy())
        got_loss, got_gradient = ours(packed.copy())
        assert_bit_identical(np.float64(got_loss), np.float64(expected_loss))
        assert_bit_identical(got_gradient, expected_gradient)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "squared_error"])
@pytest.mark.parametrize("hidden", [(5, 1), (1,), (200,)])
def test_objective_with_one_unit_or_many_rows_equals_sklearns(kind, hidden, steps):
    """A layer of one unit (its delta's column sum is numpy's pairwise sum, not a sum
    down the rows) and more than 128 rows (pairwise sums of halves)."""
    X = _problem(kind, n_samples=300)[0]
    theirs, loss, target, _ = _sklearn_objective(kind, "relu", None, X, hidden, 300)
    layout = NetworkLayout([X.shape[1], *hidden, target.shape[1]])
    ours = SklearnArithmeticObjective(layout, X, target, None, "relu", loss, 0.3)
    rng = np.random.RandomState(4)
    for _ in range(2):
        packed = rng.uniform(-1, 1, layout.n_params)
        expected_loss, expected_gradient = theirs(packed.copy())
        got_loss, got_gradient = ours(packed.copy())
        assert_bit_identical(np.float64(got_loss), np.float64(expected_loss))
        assert_bit_identical(got_gradient, expected_gradient)


def test_objective_on_sparse_input_equals_sklearns(steps):
    X = sp.csr_matrix(np.where(_problem("multiclass")[0] > 0.5, 1.0, 0.0))
    theirs, loss, target, _ = _sklearn_objective("multiclass", "relu", None, X)
    layout = NetworkLayout([X.shape[1], 6, 4, target.shape[1]])
    ours = SklearnArithmeticObjective(layout, X, target, None, "relu", loss, 0.3)
    for seed in (0, 1):
        packed = np.random.RandomState(seed).uniform(-1, 1, layout.n_params)
        expected_loss, expected_gradient = theirs(packed.copy())
        got_loss, got_gradient = ours(packed)
        assert got_loss == expected_loss
        assert_bit_identical(got_gradient, expected_gradient)


# --------------------------------------------------------------- whole fits
def _alpha_example_fits():
    from sklearn.datasets import make_circles, make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        n_features=2, n_redundant=0, n_informative=2, random_state=0, n_clusters_per_class=1
    )
    X += 2 * np.random.RandomState(2).uniform(size=X.shape)
    datasets = {
        "moons": make_moons(noise=0.3, random_state=0),
        "circles": make_circles(noise=0.2, factor=0.5, random_state=1),
        "linearly_separable": (X, y),
    }
    for name, (features, target) in datasets.items():
        X_train, _, y_train, _ = train_test_split(features, target, test_size=0.4, random_state=42)
        yield name, StandardScaler().fit_transform(X_train), y_train


def test_the_alpha_gallery_examples_fits_are_bit_identical_to_sklearns():
    """scikit-learn's 'Varying regularization in MLP': 3 datasets x 5 alphas."""
    for _, X, y in _alpha_example_fits():
        for alpha in np.logspace(-1, 1, 5):
            params = dict(solver="lbfgs", alpha=alpha, random_state=1, max_iter=2000,
                          early_stopping=True, hidden_layer_sizes=[10, 10])  # fmt: skip
            theirs = MLPClassifier(**params).fit(X, y)
            ours = BackpropClassifier(**params).fit(X, y)
            assert_same_fit(ours, theirs)


@pytest.mark.parametrize(
    "case", ["breast_cancer", "digits", "tanh_multilabel", "weighted_regression", "sparse"]
)
def test_exact_budget_fits_are_bit_identical_to_sklearns(case):
    params = dict(solver="lbfgs", random_state=0, max_iter=60)
    fit_params = {}
    Ours, Theirs = BackpropClassifier, MLPClassifier
    if case == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X)
    elif case == "digits":
        X, y = load_digits(return_X_y=True)
        X, y = X[:600] / 16, y[:600]
        params["hidden_layer_sizes"] = (30,)
    elif case == "tanh_multilabel":
        X, _, y, _, _ = _problem("multilabel", n_samples=120)
        params["activation"] = "tanh"
        y = y.astype(int)
    elif case == "weighted_regression":
        X, y, _, _, _ = _problem("squared_error", n_samples=120)
        fit_params["sample_weight"] = np.random.RandomState(3).uniform(0.1, 3.0, len(y))
        Ours, Theirs = BackpropRegressor, MLPRegressor
        params["activation"] = "logistic"
    else:
        X, y, _, _, _ = _problem("multiclass", n_samples=120)
        X = sp.csr_matrix(np.where(X > 0.3, X, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = Theirs(**params).fit(X, y, **fit_params)
        ours = Ours(**params).fit(X, y, **fit_params)
    assert_same_fit(ours, theirs)


def test_warm_start_twice_follows_sklearn():
    X, y = make_moons(n_samples=80, noise=0.3, random_state=0)
    params = dict(solver="lbfgs", max_iter=15, warm_start=True, random_state=0,
                  hidden_layer_sizes=(8,))  # fmt: skip
    theirs, ours = MLPClassifier(**params), BackpropClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            theirs.fit(X, y)
            ours.fit(X, y)
            assert_same_fit(ours, theirs)


def test_fits_in_two_threads_at_once_give_the_sequential_results():
    """Each fit owns its buffers: two fits that evaluate their objectives at the same
    time (numpy releases the GIL) end where each ends alone."""
    problems = [
        make_moons(n_samples=300, noise=0.3, random_state=0),
        load_digits(return_X_y=True),
    ]
    problems[1] = (problems[1][0][:500] / 16, problems[1][1][:500])
    params = dict(solver="lbfgs", max_iter=40, random_state=0, hidden_layer_sizes=(16,))

    def fit(problem):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return BackpropClassifier(**params).fit(*problem)

    alone = [fit(problem) for problem in problems]
    for _ in range(2):
        results = [None, None]
        barrier = threading.Barrier(2)

        def run(i, results=results, barrier=barrier):
            barrier.wait()
            results[i] = fit(problems[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for together, by_itself in zip(results, alone):
            assert_same_fit(together, by_itself)


# ------------------------------------------------------ float32: no sklearn twin
class _ReferenceObjective:
    """scikit-learn's ``_backprop`` written out with its allocations, in the data's
    dtype (scikit-learn itself switches to float64 after its first unpack, so it is
    no reference for float32): the computation fastbp's buffers must repeat."""

    def __init__(self, layout, X, y, activation, loss, alpha):
        self.layout, self.X, self.y = layout, X, y
        self.activation, self.alpha = activation, alpha
        self.out = {"log_loss": "softmax", "binary_log_loss": "logistic"}[loss]
        self.loss_function = LOSS_FUNCTIONS[loss]

    def __call__(self, params):
        coefs, intercepts = self.layout.views(params)
        n_layers = len(coefs) + 1
        activations = [self.X]
        for i in range(n_layers - 1):
            values = safe_sparse_dot(activations[i], coefs[i])
            values += intercepts[i]
            if i + 1 != n_layers - 1:
                ACTIVATIONS[self.activation](values)
            activations.append(values)
        ACTIVATIONS[self.out](activations[-1])
        loss = self.loss_function(self.y, activations[-1])
        values = 0
        for s in coefs:
            s = s.ravel()
            values += np.dot(s, s)
        n = self.X.shape[0]
        loss += (0.5 * self.alpha) * values / n
        deltas = [None] * (n_layers - 1)
        coef_grads, intercept_grads = [None] * (n_layers - 1), [None] * (n_layers - 1)
        last = n_layers - 2
        deltas[last] = activations[-1] - self.y
        for i in range(last, -1, -1):
            if i < last:
                deltas[i] = safe_sparse_dot(deltas[i + 1], coefs[i + 1].T)
                DERIVATIVES[self.activation](activations[i + 1], deltas[i])
            coef_grads[i] = safe_sparse_dot(activations[i].T, deltas[i])
            coef_grads[i] += self.alpha * coefs[i]
            coef_grads[i] /= n
            intercept_grads[i] = np.sum(deltas[i], axis=0) / n
        return loss, np.hstack([g.ravel() for g in coef_grads + intercept_grads])


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_float32_fit_repeats_the_reference_arithmetic_in_float32(activation):
    X, y = load_digits(return_X_y=True)
    X, y = (X[:300] / 16).astype(np.float32), y[:300]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = BackpropClassifier(solver="lbfgs", activation=activation, max_iter=25,
                                  hidden_layer_sizes=(12,), alpha=0.01, random_state=0)  # fmt: skip
        ours.fit(X, y)
    assert ours.coefs_[0].dtype == np.float32
    layout = NetworkLayout([64, 12, 10])
    params = layout.initialize(np.random.RandomState(0), activation, np.float32)
    objective = _ReferenceObjective(layout, X, np.eye(10, dtype=bool)[y], activation,
                                    "log_loss", 0.01)  # fmt: skip

    def loss_and_gradient(packed):
        params[:] = packed
        loss, gradient = objective(params)
        return loss, gradient.astype(np.float64)

    options = {"maxiter": 25, "maxfun": 15000, "gtol": 1e-4}
    result = scipy.optimize.minimize(loss_and_gradient, params.astype(np.float64),
                                     method="L-BFGS-B", jac=True, options=options)  # fmt: skip
    params[:] = result.x
    assert ours.n_iter_ == result.nit
    assert_bit_identical(
        np.concatenate([c.ravel() for c in ours.coefs_] + list(ours.intercepts_)), params
    )


# ------------------------------------------------------------ the L-BFGS-B loop
needs_known_driver = pytest.mark.skipif(
    not scipy_driver_is_known(), reason="this scipy's L-BFGS-B driver is not the reviewed one"
)


def test_the_installed_scipys_driver_is_the_reviewed_one():
    """Fails when scipy's L-BFGS-B driver (or the wrappers it memoises through)
    changes: then fastbp falls back to scipy.optimize.minimize, slower. Read the new
    scipy code against fastbp._lbfgs.lbfgsb and add its digest to
    KNOWN_SCIPY_DRIVERS (or correct lbfgsb). A scipy version never reviewed (an
    older one, or a release newer than this code) is skipped, not failed: fastbp is
    correct there, through the fallback."""
    version = ".".join(scipy.__version__.split(".")[:2])
    if version not in _lbfgs.KNOWN_SCIPY_DRIVERS:
        pytest.skip(f"scipy {version}'s L-BFGS-B driver was never reviewed (fallback runs)")
    assert scipy_driver_is_known(), _lbfgs._scipy_driver_digest()


def _decorated(cls):
    return cls


@_decorated
class _DecoratedClass:
    def method(self):
        return 1


class _PlainClass:
    """A docstring."""

    value = 2

    def method(self):
        return self.value


def _function_with_a_class():
    class Inner:
        pass

    return Inner


@pytest.mark.parametrize(
    "function",
    [*_lbfgs._scipy_driver_sources(), _PlainClass, _DecoratedClass, _function_with_a_class()],
    ids=lambda function: function.__qualname__,
)
def test_the_driver_digest_reads_each_source_as_inspect_does(function):
    # Classes are found by their statement's line rather than by inspect's parse of
    # the whole module (80-90 ms -> 30 ms for the digest): the same text.
    assert _lbfgs._source(function) == inspect.getsource(function)


def test_an_unreadable_driver_of_an_unreviewed_scipy_is_not_known(monkeypatch):
    # scipy 1.11 lacks a function the digest reads (digest None) and has no reviewed
    # digest (None): the two Nones once compared equal and ran lbfgsb there.
    monkeypatch.setattr(_lbfgs, "_driver_known", None)
    monkeypatch.setattr(_lbfgs, "KNOWN_SCIPY_DRIVERS", {})
    monkeypatch.setattr(_lbfgs, "_scipy_driver_digest", lambda: None)
    assert not scipy_driver_is_known()
    monkeypatch.setattr(_lbfgs, "_driver_known", None)  # asked again after the test


def _objective_of(n_samples=60, seed=0):
    X, y = make_moons(n_samples=n_samples, noise=0.3, random_state=seed)
    target = y.reshape(-1, 1).astype(bool)
    layout = NetworkLayout([2, 10, 10, 1])
    objective = SklearnArithmeticObjective(layout, X, target, None, "relu",
                                           "binary_log_loss", 0.1)  # fmt: skip
    params = layout.initialize(np.random.RandomState(1), "relu", np.float64)
    evaluations = []

    def evaluate(x):
        evaluations.append(x.copy())
        loss, gradient = objective(x)
        return loss, gradient  # a view of the objective's buffer, as the fit passes

    return evaluate, params, evaluations


@needs_known_driver
@pytest.mark.parametrize(
    "options",
    [dict(maxiter=2000, maxfun=15000, gtol=1e-4),  # converges
     dict(maxiter=7, maxfun=15000, gtol=1e-4),  # runs out of iterations
     dict(maxiter=2000, maxfun=9, gtol=1e-4),  # runs out of evaluations
     dict(maxiter=2000, maxfun=15000, gtol=1e-1)],  # stops on the gradient
    ids=["converges", "maxiter", "maxfun", "gtol"],
)  # fmt: skip
def test_lbfgsb_matches_scipy_minimize(options):
    evaluate, x0, ours_seen = _objective_of()
    ours = lbfgsb(evaluate, x0.copy(), **options)
    evaluate, x0, theirs_seen = _objective_of()
    theirs = scipy.optimize.minimize(evaluate, x0.copy(), method="L-BFGS-B", jac=True,
                                     options=options)  # fmt: skip
    assert_bit_identical(ours.x, theirs.x)
    assert ours.fun == theirs.fun
    assert (ours.nit, ours.nfev, ours.status, ours.message) == (
        theirs.nit, theirs.nfev, theirs.status, theirs.message,
    )  # fmt: skip
    # the same points evaluated, in the same order
    assert len(ours_seen) == len(theirs_seen)
    for a, b in zip(ours_seen, theirs_seen):
        assert_bit_identical(a, b)


@needs_known_driver
def test_lbfgsb_stops_when_the_iteration_hook_asks_as_scipy_does_on_stopiteration():
    stop_after = 5
    seen = []

    def iteration_ends(x, loss):
        seen.append((x.copy(), float(loss)))
        return len(seen) == stop_after

    evaluate, x0, _ = _objective_of()
    ours = lbfgsb(evaluate, x0.copy(), maxfun=15000, maxiter=2000, gtol=1e-4,
                  iteration_ends=iteration_ends)  # fmt: skip
    theirs_seen = []

    def callback(intermediate_result):
        theirs_seen.append((intermediate_result.x.copy(), float(intermediate_result.fun)))
        if len(theirs_seen) == stop_after:
            raise StopIteration

    evaluate, x0, _ = _objective_of()
    theirs = scipy.optimize.minimize(evaluate, x0.copy(), method="L-BFGS-B", jac=True,
                                     callback=callback, options=dict(gtol=1e-4))  # fmt: skip
    assert (ours.nit, ours.status, ours.message) == (theirs.nit, theirs.status, theirs.message)
    assert_bit_identical(ours.x, theirs.x)
    assert len(seen) == len(theirs_seen) == stop_after
    for (x, loss), (their_x, their_loss) in zip(seen, theirs_seen):
        assert_bit_identical(x, their_x)
        assert loss == their_loss


def test_an_unknown_scipy_driver_falls_back_to_scipy_minimize(monkeypatch):
    calls = []
    minimize = scipy.optimize.minimize

    def counting_minimize(*args, **kwargs):
        calls.append(kwargs.get("method"))
        return minimize(*args, **kwargs)

    monkeypatch.setattr(_lbfgs, "_driver_known", None)
    monkeypatch.setattr(_lbfgs, "KNOWN_SCIPY_DRIVERS", {})
    monkeypatch.setattr(scipy.optimize, "minimize", counting_minimize)
    X, y = make_moons(n_samples=60, noise=0.3, random_state=0)
    params = dict(solver="lbfgs", max_iter=300, random_state=1, hidden_layer_sizes=(10, 10))
    ours = BackpropClassifier(**params).fit(X, y)
    assert calls == ["L-BFGS-B"]
    monkeypatch.setattr(scipy.optimize, "minimize", minimize)
    assert_same_fit(ours, MLPClassifier(**params).fit(X, y))
    monkeypatch.setattr(_lbfgs, "_driver_known", None)  # asked again after the test


def test_the_fallback_hands_scipy_float64_gradients_of_its_own(monkeypatch):
    # scipy 1.11 passes the gradient to its compiled setulb as it is (float64 only),
    # and its memo keeps the array: a float32 view of the objective's own buffer
    # broke float32 fits there (found by .ci/floors).
    seen = []
    minimize = scipy.optimize.minimize

    def checking_minimize(fun, x0, **kwargs):
        first, second = fun(x0)[1], fun(x0 + 1e-3)[1]
        seen.append((first.dtype, second.dtype, np.shares_memory(first, second)))
        return minimize(fun, x0, **kwargs)

    monkeypatch.setattr(_lbfgs, "_driver_known", False)
    monkeypatch.setattr(scipy.optimize, "minimize", checking_minimize)
    X, y = make_moons(n_samples=60, noise=0.3, random_state=0)
    BackpropClassifier(solver="lbfgs", max_iter=20, random_state=1).fit(X.astype(np.float32), y)
    assert seen == [(np.dtype(np.float64), np.dtype(np.float64), False)]
    monkeypatch.setattr(_lbfgs, "_driver_known", None)  # asked again after the test


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("loss", ["log_loss", "binary_log_loss"])
def test_float32_objective_repeats_the_reference_bit_for_bit(activation, loss, steps):
    X, y = load_digits(return_X_y=True)
    X = (X[:200] / 16).astype(np.float32)
    target = np.eye(10, dtype=bool)[y[:200]]
    if loss == "binary_log_loss":
        target = target[:, :1]
    layout = NetworkLayout([64, 9, 7, target.shape[1]])
    reference = _ReferenceObjective(layout, X, target, activation, loss, 3.0)
    ours = SklearnArithmeticObjective(layout, X, target, None, activation, loss, 3.0)
    rng = np.random.RandomState(0)
    for _ in range(3):
        params = rng.uniform(-1, 1, layout.n_params).astype(np.float32)
        expected_loss, expected_gradient = reference(params)
        got_loss, got_gradient = ours(params.copy())
        assert_bit_identical(np.asarray(got_loss), np.asarray(expected_loss))
        assert_bit_identical(got_gradient, expected_gradient)


# ------------------------------------------- the compiled steps, special values
def _special_values(shape, dtype, seed=0):
    """Normal values salted with the ones whose bits are easy to get wrong."""
    rng = np.random.RandomState(seed)
    values = rng.normal(size=shape).astype(dtype)
    flat = values.reshape(-1)
    specials = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, -1e-300], dtype)
    flat[rng.choice(flat.size, flat.size // 4, replace=False)] = rng.choice(
        specials, flat.size // 4
    )
    return values


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_steps_write_numpys_bits(dtype):
    """Against numpy's own calls (these are what _NumpySteps runs)."""
    from fastbp import _exact_steps as steps

    numpy_steps = _lbfgs._NumpySteps
    with np.errstate(all="ignore"):
        outputs, deltas = _special_values((37, 11), dtype, 0), _special_values((37, 11), dtype, 1)
        intercept = _special_values((11,), dtype, 2)
        for step in ("add_intercept", "add_intercept_relu"):
            expected, got = outputs.copy(), outputs.copy()
            assert getattr(numpy_steps, step)(expected, intercept)
            assert getattr(steps, step)(got, intercept)
            assert_bit_identical(got, expected)

        expected, got = deltas.copy(), deltas.copy()
        expected_sums, got_sums = np.full(11, 7, dtype), np.full(11, 7, dtype)
        assert numpy_steps.relu_derivative_summed(outputs, expected, expected_sums)
        assert steps.relu_derivative_summed(outputs, got, got_sums)
        assert_bit_identical(got, expected)
        assert_bit_identical_but_nan_signs(got_sums, expected_sums)

        for targets in (deltas, outputs > 0):
            targets = targets.astype(dtype)
            expected, got = np.empty_like(deltas), np.empty_like(deltas)
            expected_sums, got_sums = np.empty(11, dtype), np.empty(11, dtype)
            assert numpy_steps.subtract_summed(outputs, targets, expected, expected_sums)
            assert steps.subtract_summed(outputs, targets, got, got_sums)
            assert_bit_identical(got, expected)
            assert_bit_identical_but_nan_signs(got_sums, expected_sums)

        column, row = _special_values((37, 1), dtype, 3), _special_values((1, 11), dtype, 4)
        got = np.empty((37, 11), dtype)
        assert steps.outer_product(column.ravel(), row.ravel(), got)
        assert_bit_identical(got, column @ row)

        expected, got = np.empty((37, 11), dtype), np.empty((37, 11), dtype)
        expected_sums, got_sums = np.empty(11, dtype), np.empty(11, dtype)
        args = (column.ravel(), row.ravel(), outputs)
        assert numpy_steps.outer_relu_derivative_summed(*args, expected, expected_sums)
        assert steps.outer_relu_derivative_summed(*args, got, got_sums)
        assert_bit_identical(got, expected)
        assert_bit_identical_but_nan_signs(got_sums, expected_sums)
        # one column (summed pairwise by numpy): refused, by every summing step
        one = np.ones((37, 1), dtype)
        assert not steps.outer_relu_derivative_summed(column.ravel(), row.ravel()[:1], one,
                                                      one, np.ones(1, dtype))  # fmt: skip
        assert not steps.relu_derivative_summed(one, one, np.ones(1, dtype))
        assert not steps.subtract_summed(one, one, one, np.ones(1, dtype))
        assert (one == 1).all()

        # softmax's first step is only ever seen through exp: compare what exp makes
        values = _special_values((37, 11), dtype, 5)
        values[3] = [0.0, -0.0] * 5 + [-1.0]  # a tie of signed zeros
        scratch = np.empty_like(values)
        assert steps.subtract_row_max(values, scratch)
        assert_bit_identical(np.exp(scratch), np.exp(values - values.max(axis=1)[:, None]))

        expected, got = values.copy(), values.copy()
        expected_sums, got_sums = np.empty(37, dtype), np.empty(37, dtype)
        assert numpy_steps.normalize_rows(expected, expected_sums)
        assert steps.normalize_rows(got, got_sums)
        assert_bit_identical_but_nan_signs(got, expected)
        assert_bit_identical_but_nan_signs(got_sums, expected_sums)


def _sum_cases(dtype):
    """Matrices whose row sums take every branch of numpy's pairwise summation of up
    to 128 values (under 8, 8 to 128 with and without a remainder), and longer rows
    and single columns (which the compiled steps refuse), with values over many
    magnitudes (so that a different order rounds differently) and the signed zeros
    and non-finite values of _special_values."""
    rng = np.random.RandomState(7)
    for n_rows, n_columns in [(1, 1), (1, 5), (5, 1), (569, 1), (37, 7), (9, 8), (4, 17),
                              (1797, 10), (61, 2), (3, 128), (3, 129), (2, 1000)]:  # fmt: skip
        values = rng.normal(size=(n_rows, n_columns)) * 10.0 ** rng.randint(-8, 9, (n_rows, 1))
        yield values.astype(dtype)
        yield _special_values((n_rows, n_columns), dtype, n_rows)
        yield np.full((n_rows, n_columns), -0.0, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_sums_repeat_numpys_order(dtype):
    """np.add.reduce along either axis, and the means over samples: numpy's order of
    additions (sequential down the rows, pairwise along a row), its starting +0.0,
    its dtype; a single column (summed pairwise) and rows over 128 values (pairwise
    sums of halves) refused, writing nothing."""
    from fastbp import _exact_steps as steps

    with np.errstate(all="ignore"):
        for values in _sum_cases(dtype):
            n_rows, n_columns = values.shape
            got = np.full(n_columns, 7, dtype)
            if n_columns == 1:
                assert not steps.column_sums(values, got)
                assert not steps.column_means(values, got)
                assert (got == 7).all()
            else:
                assert steps.column_sums(values, got)
                assert_bit_identical_but_nan_signs(got, np.add.reduce(values, axis=0))
                assert_bit_identical_but_nan_signs(got, np.sum(values, axis=0))
                got = np.empty(n_columns, dtype)
                assert steps.column_means(values, got)
                expected = np.empty(n_columns, dtype)
                assert _lbfgs._NumpySteps.column_means(values, expected)
                assert_bit_identical_but_nan_signs(got, expected)
                if dtype == np.float64:  # the loss buffers are float64 only
                    assert_bit_identical_but_nan_signs(got, values.mean(axis=0))

            got, expected = values.copy(), values.copy()
            got_sums, expected_sums = np.full(n_rows, 7, dtype), np.empty(n_rows, dtype)
            if n_columns > 128:
                assert not steps.normalize_rows(got, got_sums)
                assert_bit_identical(got, values)
                assert (got_sums == 7).all()
                continue
            assert steps.normalize_rows(got, got_sums)
            assert _lbfgs._NumpySteps.normalize_rows(expected, expected_sums)
            assert_bit_identical_but_nan_signs(got_sums, values.sum(axis=1))
            assert_bit_identical_but_nan_signs(got, expected)


@pytest.mark.parametrize("kind", ["binary_log_loss", "log_loss"])
def test_compiled_log_loss_terms_are_scikit_learns(kind):
    """xlogy of clipped probabilities (libm's log, as scipy's), against the numpy
    steps and scikit-learn's loss function."""
    from fastbp import _exact_steps as steps

    rng = np.random.RandomState(3)
    shape = (301, 3) if kind == "binary_log_loss" else (301, 4)
    probabilities = rng.uniform(size=shape) ** 3
    probabilities.ravel()[:8] = [0.0, 1.0, np.nan, 1e-300, 1 - 1e-17, 2e-16, 0.5, -0.0]
    eps = np.finfo(np.float64).eps
    numpy_steps = _lbfgs._NumpySteps
    with np.errstate(all="ignore"):
        for targets in (rng.uniform(size=shape) < 0.4, rng.uniform(size=shape)):
            got, expected = np.empty(shape), np.empty(shape)
            if kind == "binary_log_loss":
                complements = 1 - targets
                args = (targets, complements, probabilities, eps, 1 - eps)
                assert steps.binary_log_loss_terms(*args, got, np.empty(shape))
                assert numpy_steps.binary_log_loss_terms(*args, expected, np.empty(shape))
            else:
                args = (targets, probabilities, eps, 1 - eps)
                assert steps.log_loss_terms(*args, got)
                assert numpy_steps.log_loss_terms(*args, expected)
            assert_bit_identical(got, expected)
            means = np.empty(shape[1])
            assert steps.column_means(got, means)
            loss = -np.add.reduce(means)
            theirs = LOSS_FUNCTIONS[kind](targets, probabilities.copy())
            assert_bit_identical(np.float64(loss), np.float64(theirs))


def test_compiled_steps_refuse_arrays_that_do_not_fit():
    from fastbp import _exact_steps as steps

    a, b = np.zeros((4, 3)), np.ones((4, 3))
    assert not steps.add_intercept(b, np.ones(4))
    assert not steps.add_intercept_relu(b, np.ones(4))
    assert not steps.relu_derivative_summed(np.zeros((4, 2)), b, np.ones(3))
    assert not steps.relu_derivative_summed(a, b, np.ones(2))
    assert not steps.subtract_summed(a, np.zeros((3, 3)), b, np.ones(3))
    assert not steps.subtract_summed(a, a, b, np.ones(4))
    assert not steps.column_sums(b, np.ones(4))
    assert not steps.outer_product(np.ones(3), np.ones(3), b)
    assert not steps.outer_relu_derivative_summed(np.ones(4), np.ones(3), a, b, np.ones(2))
    assert not steps.outer_relu_derivative_summed(np.ones(4), np.ones(2), a, b, np.ones(3))
    assert not steps.subtract_row_max(a, np.ones((3, 3)))
    assert not steps.normalize_rows(b, np.ones(3))
    assert not steps.log_loss_terms(a, np.ones((4, 2)), 0.1, 0.9, b)
    assert not steps.binary_log_loss_terms(a, a, np.ones((4, 2)), 0.1, 0.9, b, b)
    assert not steps.column_means(b, np.ones(2))
    assert (b == 1).all()  # nothing written


def test_a_small_lbfgs_fit_loads_no_compiled_step():
    """numba's first kernel load in a process costs more than a small fit's whole
    objective saves: below the threshold the steps stay numpy's."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from sklearn.datasets import make_moons\n"
        "from fastbp import BackpropClassifier\n"
        "X, y = make_moons(n_samples=60, noise=0.3, random_state=0)\n"
        "BackpropClassifier(solver='lbfgs', hidden_layer_sizes=(10, 10)).fit(X, y)\n"
        "print('fastbp._exact_steps' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_a_processs_later_small_lbfgs_fits_run_the_compiled_steps_to_the_same_bits():
    """Loading the compiled steps pays off over a process's small fits after its
    first: the second fit runs them, and gives the first one's weights bit for bit."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from sklearn.datasets import make_moons\n"
        "from fastbp import BackpropClassifier, _lbfgs\n"
        "X, y = make_moons(n_samples=60, noise=0.3, random_state=0)\n"
        "fit = lambda: BackpropClassifier(solver='lbfgs', hidden_layer_sizes=(10, 10),\n"
        "                                 random_state=0).fit(X, y)\n"
        "first = fit()\n"
        "print('fastbp._exact_steps' in sys.modules)\n"
        "steps = []\n"
        "init = _lbfgs.SklearnArithmeticObjective.__init__\n"
        "def spy(self, *args, **kwargs):\n"
        "    init(self, *args, **kwargs)\n"
        "    steps.append(self.steps.__name__)\n"
        "_lbfgs.SklearnArithmeticObjective.__init__ = spy\n"
        "second = fit()\n"
        "print(steps)\n"
        "params = lambda m: np.concatenate([a.ravel() for a in m.coefs_ + m.intercepts_])\n"
        "print(params(first).tobytes() == params(second).tobytes(),\n"
        "      first.n_iter_ == second.n_iter_, first.loss_ == second.loss_)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    assert lines[-3:] == ["False", "['fastbp._exact_steps']", "True True True"], result.stderr
