"""Compile fastbp's kernels ahead of the first fit: ``fastbp.warmup()``.

numba compiles a kernel the first time it runs and caches the machine code on disk,
so only the first process on a machine pays for it. Call ``warmup()`` where that
first moment is expensive: once after installing, in a container image build, or on
every Dask worker before a search (``client.run(fastbp.warmup)``). From the shell::

    python -m fastbp --warmup          # the common paths, both dtypes
    python -m fastbp --warmup --all    # and the rarely used options

Warm one cache directory from one process at a time: numba's cache index is not
safe against two processes writing it at once (entries can be lost, or an index
entry can point at the other process's file). Workers that share a network cache
directory should therefore be warmed one after the other, or each be given its own
``NUMBA_CACHE_DIR`` on local disk.
"""

import time
import warnings

import numpy as np


def warmup(dtypes=("float64", "float32"), *, everything=False):
    """Compile (or load from the cache) the kernels for the given dtypes.

    The common paths are always prepared: training on dense input without dropout
    or gradient clipping, with 'identity', 'relu', 'leaky_relu' or 'logistic' hidden
    layers, the squared error or the cross-entropy, and sgd, adam or adamw; and
    prediction. Everything else (sparse input, dropout, the other activations and
    losses, clipping, L-BFGS on data above its exact-arithmetic budget) is compiled
    the first time a fit uses it, or here with ``everything=True``.

    Parameters
    ----------
    dtypes : iterable of str or numpy dtype, default=("float64", "float32")
        The data types to prepare; fastbp trains float32 input in float32 and
        everything else in float64.
    everything : bool, default=False
        Also compile the kernels of the rarely used options.

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
    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning

    from fastbp import _kernels
    from fastbp._network import NetworkLayout, read_only
    from fastbp._optimizers import FullBatchObjective
    from fastbp.estimators import BackpropClassifier, BackpropRegressor

    rng = np.random.RandomState(0)
    seconds = {}
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        X = rng.normal(size=(16, 3)).astype(dtype)
        y = np.arange(16) % 2
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = BackpropClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(X, y)
            model.predict(X)
            # A process that fitted predicts through the common-path kernel; later
            # processes use the prediction kernel (quicker to call): prepare it too.
            network = model._fitted_network()
            out = np.empty((X.shape[0], network.n_outputs), dtype=dtype)
            _kernels.predict_forward(read_only(X), None, *network.predict_arguments, out)
            if everything:
                # One full epoch kernel serves sparse input, dropout, clipping and
                # every activation and loss; sparse prediction uses the full
                # prediction kernel.
                rare = BackpropClassifier(
                    hidden_layer_sizes=(2,), activation="tanh", dropout=0.1, max_iter=1
                )
                rare.fit(sp.csr_matrix(X), y).predict(sp.csr_matrix(X))
                # a loss outside the common path: dense prediction without it
                robust = BackpropRegressor(hidden_layer_sizes=(2,), loss="huber", max_iter=1)
                robust.fit(X, X[:, 0]).predict(X)
                layout = NetworkLayout([3, 2, 1])
                for activation in ("relu", "tanh"):  # chunked L-BFGS, both paths
                    objective = FullBatchObjective(
                        layout, X, y.reshape(-1, 1), None, activation, "binary_log_loss",
                        1e-4, chunk_rows=8,
                    )  # fmt: skip
                    objective(layout.initialize(rng, activation, dtype))
        seconds[dtype.name] = time.perf_counter() - start
    return seconds


def kernels_are_cached(dtype):
    """True when numba's cache holds the common-path kernel for ``dtype``
    (so a fit will load, not compile, it). A cheap look at the cache index."""
    from fastbp._common_path import common_epochs
    from fastbp._kernel_cache import cached_signatures

    name = np.dtype(dtype).name
    position = _position(common_epochs, "params")
    return any(
        str(getattr(signature[position], "dtype", "")) == name
        for signature in cached_signatures(common_epochs)
    )


def _position(dispatcher, argument):
    import inspect

    return list(inspect.signature(dispatcher.py_func).parameters).index(argument)
