"""Compile fastbp's kernels ahead of the first fit: ``fastbp.warmup()``.

numba compiles a kernel the first time it runs and caches the machine code on disk,
so only the first process on a machine pays for it. Call ``warmup()`` where that
first moment is expensive: once after installing, in a container image build, or on
every Dask worker before a search (``client.run(fastbp.warmup)``). From the shell::

    python -m fastbp --warmup
"""

import time
import warnings

import numpy as np


def warmup(dtypes=("float64", "float32")):
    """Compile (or load from the cache) every kernel for the given dtypes.

    Parameters
    ----------
    dtypes : iterable of str or numpy dtype, default=("float64", "float32")
        The data types to prepare; fastbp trains float32 input in float32 and
        everything else in float64.

    Returns
    -------
    seconds : dict
        Time spent per dtype; about a tenth of a second when the cache was warm.

    Examples
    --------
    >>> import fastbp
    >>> seconds = fastbp.warmup(dtypes=["float64"])
    >>> sorted(seconds)
    ['float64']
    """
    from sklearn.exceptions import ConvergenceWarning

    from fastbp.estimators import BackpropClassifier

    rng = np.random.RandomState(0)
    seconds = {}
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        X = rng.normal(size=(16, 3)).astype(dtype)
        y = np.arange(16) % 2
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # adam and sgd share the epoch kernel; lbfgs has its own; predict its own.
            BackpropClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(X, y).predict(X)
            BackpropClassifier(hidden_layer_sizes=(2,), solver="lbfgs", max_iter=1).fit(X, y)
        seconds[dtype.name] = time.perf_counter() - start
    return seconds
