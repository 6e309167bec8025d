"""The compiled kernels release the GIL, and concurrent fits and predictions give the
sequential results."""

import importlib
import pkgutil
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba.core.registry import CPUDispatcher
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_limits

import fastbp
from fastbp import BackpropClassifier, BackpropRegressor


def _compiled_entry_points():
    """fastbp's compiled functions that Python calls (helpers have no Python entry)."""
    found = {}
    for module_info in pkgutil.iter_modules(fastbp.__path__):
        module = importlib.import_module(f"fastbp.{module_info.name}")
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                if not value.targetoptions.get("no_cpython_wrapper"):
                    found[f"{module.__name__}.{name}"] = value
    return found


def test_every_compiled_entry_point_used_by_fit_and_predict_releases_the_gil(
    small_classification,
):
    X, y = small_classification
    for params in (dict(), dict(activation="tanh"), dict(solver="lbfgs")):  # both kernels
        BackpropClassifier(hidden_layer_sizes=(5,), max_iter=2, **params).fit(X, y).predict(X)
    entry_points = _compiled_entry_points()
    used = {name for name, kernel in entry_points.items() if kernel.signatures}
    assert len(used) >= 2  # at least a training and a prediction kernel ran
    assert {name for name in used if not entry_points[name].targetoptions.get("nogil")} == set()


def test_a_python_thread_runs_while_a_prediction_kernel_runs():
    """While one thread predicts with a large network (one compiled call of about a
    second here), another keeps running Python: it records a tick every 2 ms. A kernel
    that held the GIL would let it tick only in the Python parts at either end (3 ticks
    there, none in the middle, when the kernels were compiled with nogil=False)."""
    rng = np.random.RandomState(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BackpropRegressor(hidden_layer_sizes=(1024, 1024), max_iter=1, random_state=0)
        model.fit(rng.normal(size=(20, 8)), rng.normal(size=20))
    X = rng.normal(size=(2000, 8))
    model.predict(X[:5])  # compiled or loaded before the measured call
    ticks, done = [], threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.002)

    ticker = threading.Thread(target=tick)
    with threadpool_limits(1, user_api="blas"):  # leave the other core to the ticker
        ticker.start()
        try:
            start = time.perf_counter()
            model.predict(X)
            end = time.perf_counter()
        finally:
            done.set()
            ticker.join()
    # the middle of the call, away from the Python parts of predict at either end
    middle = (start + 0.2 * (end - start), end - 0.2 * (end - start))
    during = [t for t in ticks if middle[0] < t < middle[1]]
    assert len(during) >= 5, (len(during), end - start)


def _fit(task):
    Estimator, X, y, seed = task
    return Estimator(hidden_layer_sizes=(16, 8), max_iter=15, random_state=seed).fit(X, y)


def test_parallel_fits_equal_sequential_fits(small_classification, small_regression):
    Xc, yc = small_classification
    Xr, yr = small_regression
    tasks = [
        (BackpropClassifier, Xc, yc, 0),
        (BackpropRegressor, Xr, yr, 1),
        (BackpropClassifier, Xc.astype(np.float32), yc, 2),
        (BackpropRegressor, Xr, yr, 3),
    ]
    sequential = [_fit(task) for task in tasks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(_fit, tasks))
    for a, b in zip(sequential, parallel):
        for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            assert_array_equal(p, q)


def test_many_threads_predict_from_one_model(digits):
    X, y = digits
    clf = _fit((BackpropClassifier, X, y, 0))
    chunks = np.array_split(np.arange(len(X)), 16)
    # The same calls one after the other (not slices of one big prediction: BLAS may
    # round the edge rows of a block differently, so only like calls compare exactly).
    expected = [clf.predict_proba(X[rows]) for rows in chunks * 4]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda rows: clf.predict_proba(X[rows]), chunks * 4))
    for result, sequential in zip(results, expected):
        assert_array_equal(result, sequential)
