"""Kernels release the GIL; concurrent fits and predictions give the sequential results."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.testing import assert_array_equal

from fastbp import BackpropClassifier, BackpropRegressor


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
