"""Compile fastbp's kernels ahead of the first fit: ``fastbp.warmup()``.

numba compiles a kernel the first time it runs and caches the machine code on disk,
so only the first process on a machine pays for it. Call ``warmup()`` where that
first moment is expensive: once after installing, in a container image build, or on
every Dask worker before a search (``client.run(fastbp.warmup)``). From the shell::

    python -m fastbp --warmup          # the common paths, both dtypes
    python -m fastbp --warmup --all    # and the rarely used options

The command line compiles each dtype in a process of its own, at the same time
(``warmup(n_jobs=-1)``). Processes that write one cache directory take turns on a
lock file there (:func:`fastbp._kernel_cache.cache_directory_lock`): numba's own
cache index is not safe against two writers (entries can be lost, or point at the
other process's file). The lock is POSIX ``flock``: on Windows, and on network file
systems that do not honour it, warm one process at a time, or give each machine or
worker its own ``NUMBA_CACHE_DIR`` on local disk.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np


def warmup(dtypes=("float64", "float32"), *, everything=False, n_jobs=1):
    """Compile (or load from the cache) the kernels for the given dtypes.

    The common paths are always prepared: training on dense input without dropout,
    with 'identity', 'relu', 'leaky_relu' or 'logistic' hidden layers (every loss
    and solver); and prediction. Everything else (sparse input, dropout, the other
    activations, L-BFGS's compiled steps, within its exact-arithmetic budget and
    above it) is compiled
    the first time a fit uses it, or here with ``everything=True``.

    Parameters
    ----------
    dtypes : iterable of str or numpy dtype, default=("float64", "float32")
        The data types to prepare; fastbp trains float32 input in float32 and
        everything else in float64.
    everything : bool, default=False
        Also compile the kernels of the rarely used options.
    n_jobs : int, default=1
        Processes to compile in. With 1, the dtypes compile here, one after the
        other. With more (-1: one per dtype, up to the number of CPUs), each dtype
        compiles in a fresh Python process, at the same time, into numba's disk cache;
        this process then loads the kernels from there when it first needs them.
        Without a writable cache (none, or a read-only one), or without file
        locks (Windows), the dtypes compile here whatever ``n_jobs`` says.

    Returns
    -------
    seconds : dict
        Time spent per dtype (in its own process, without the import, when
        ``n_jobs`` > 1); about a tenth of a second when the cache was warm.

    Examples
    --------
    >>> import fastbp
    >>> seconds = fastbp.warmup(dtypes=["float64"])
    >>> sorted(seconds)
    ['float64']
    """
    dtypes = _checked_dtypes(dtypes)
    processes = _processes(n_jobs, len(dtypes))
    if processes > 1:
        return _warmup_in_processes(dtypes, everything, processes)
    return _warmup_here(dtypes, everything)


def _checked_dtypes(dtypes):
    """The dtypes as numpy dtypes, each float32 or float64 (ValueError otherwise:
    fastbp trains in those two only)."""
    if isinstance(dtypes, (str, np.dtype, type)):
        dtypes = [dtypes]
    checked = []
    for dtype in dtypes:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"warmup: {dtype!r} is not a dtype.") from None
        if dtype not in (np.float32, np.float64):
            raise ValueError(
                f"warmup: fastbp's kernels run in float32 or float64, not {dtype.name} "
                "(other input is converted to float64 before training)."
            )
        checked.append(dtype)
    return checked


def _processes(n_jobs, n_dtypes):
    """How many processes warm ``n_dtypes`` dtypes: more than one only where the
    cache is on disk and its writers can take turns."""
    from fastbp._kernel_cache import CACHE_ENABLED, CACHE_WRITABLE, LOCKS_WORK

    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}.")
    if not (CACHE_ENABLED and CACHE_WRITABLE and LOCKS_WORK):
        return 1  # children could not hand their kernels over through the cache
    wanted = n_dtypes if n_jobs == -1 else int(n_jobs)
    return max(1, min(wanted, n_dtypes, os.cpu_count() or 1))


def _warmup_in_processes(dtypes, everything, processes):
    """Each dtype warmed in a child process, ``processes`` at a time."""
    code = (
        "import json, sys, fastbp; "
        "print(json.dumps(fastbp.warmup(sys.argv[1:2], everything=sys.argv[2] == '1')))"
    )
    pending = list(dtypes)
    running = []
    seconds = {}
    while pending or running:
        while pending and len(running) < processes:
            dtype = pending.pop(0)
            # Output to files, not pipes: a child whose pipe nobody reads yet (while
            # this process waits for another) would block once the pipe is full.
            output, errors = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            child = subprocess.Popen(
                [sys.executable, "-c", code, dtype.name, "1" if everything else "0"],
                stdout=output,
                stderr=errors,
                text=True,
            )
            running.append((dtype, child, output, errors))
        dtype, child, output, errors = running.pop(0)
        child.wait()
        output.seek(0)
        errors.seek(0)
        printed, complaints = output.read(), errors.read()
        output.close()
        errors.close()
        if child.returncode != 0:
            for _, other, *files in running:
                other.kill()
                other.wait()
                for file in files:
                    file.close()
            raise RuntimeError(
                f"fastbp: warming the {dtype.name} kernels in a separate process failed "
                f"(exit status {child.returncode}):\n{complaints.strip()}"
            )
        seconds.update(json.loads(printed.strip().splitlines()[-1]))
    return {dtype.name: seconds[dtype.name] for dtype in dtypes}


def prepare_common_path(dtype):
    """Compile (or load) the common-path kernel for ``dtype`` by a tiny fit and
    prediction: all that a process which trains and then predicts needs (the demo
    waits for this only). Returns the tiny model and its data."""
    from sklearn.exceptions import ConvergenceWarning

    from fastbp.estimators import BackpropClassifier

    X = np.random.RandomState(0).normal(size=(16, 3)).astype(dtype)
    y = np.arange(16) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = BackpropClassifier(hidden_layer_sizes=(2,), max_iter=1).fit(X, y)
    model.predict(X)
    return model, X, y


def _warmup_here(dtypes, everything):
    """Each dtype warmed in this process, one after the other."""
    import scipy.sparse as sp
    from sklearn.exceptions import ConvergenceWarning

    from fastbp import _kernels
    from fastbp._lbfgs import COMPILED_STEPS_MIN_VALUES
    from fastbp._network import NetworkLayout, read_only
    from fastbp._optimizers import FullBatchObjective
    from fastbp.estimators import BackpropClassifier

    rng = np.random.RandomState(0)
    seconds = {}
    for dtype in dtypes:
        start = time.perf_counter()
        model, X, y = prepare_common_path(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # the prediction kernel (a fit prepares it too, while it trains)
            network = model._fitted_network()
            out = np.empty((X.shape[0], network.n_outputs), dtype=dtype)
            _kernels.predict_forward(read_only(X), None, *network.predict_arguments, out)
            if everything:
                # One full epoch kernel serves sparse input, dropout and every
                # activation; sparse prediction uses the full prediction kernel.
                # (Every loss trains on the common path prepared above: the loss is a
                # value the kernel reads, not a variant of its own.)
                rare = BackpropClassifier(
                    hidden_layer_sizes=(2,), activation="tanh", dropout=0.1, max_iter=1
                )
                rare.fit(sp.csr_matrix(X), y).predict(sp.csr_matrix(X))
                layout = NetworkLayout([3, 2, 1])
                for activation in ("relu", "tanh"):  # chunked L-BFGS, both paths
                    objective = FullBatchObjective(
                        layout, X, y.reshape(-1, 1), None, activation, "binary_log_loss",
                        1e-4, chunk_rows=8,
                    )  # fmt: skip
                    objective(layout.initialize(rng, activation, dtype))
                # L-BFGS within its exact-arithmetic budget: the compiled steps of
                # scikit-learn's arithmetic (fastbp._exact_steps, used from
                # COMPILED_STEPS_MIN_VALUES rows x units), for one output and for a
                # softmax (1-4 s of a first L-BFGS fit otherwise).
                rows = rng.normal(size=(COMPILED_STEPS_MIN_VALUES // 16 + 1, 3)).astype(dtype)
                for n_classes in (2, 3):
                    exact = BackpropClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
                                               max_iter=2)  # fmt: skip
                    exact.fit(rows, np.arange(rows.shape[0]) % n_classes)
        seconds[dtype.name] = time.perf_counter() - start
    return seconds


#: (dtype character, dense-only) pairs whose prediction kernel this process has
#: found compiled or cached: a fit then skips the look at the cache index (a read
#: of the index file, ~1 ms: 8% of a five-epoch fit of 2000 rows, measured).
_PREDICTION_READY = set()


def prepare_prediction_while_training(model, X):
    """Start preparing, in a thread, the prediction kernel that a model trained from
    the snapshot ``model`` on dense ``X`` will call (compiled, or loaded from the
    cache); returns the thread (to join when training ends), or None when that
    kernel is ready in this process already or ``X`` is sparse.

    Prediction is its own kernel: after a cold first fit it would compile at the
    first prediction (seconds); a kernel in the disk cache is left for the first
    prediction to load. Started after the first epoch call, it compiles while
    the epochs run (they release the GIL), so the first prediction finds it ready.
    The call predicts one row with a copy of the parameters (training writes the
    model's own meanwhile) and its result is dropped.
    """
    import threading

    from fastbp import _kernels
    from fastbp._kernel_cache import cached_signatures
    from fastbp._network import rare_paths

    if X.shape[0] == 0:  # sparse training data: its rows are not in X
        return None
    kernel = _kernels.predict_forward
    dtype = model.params.dtype
    rare = None
    if model.rare_activations:
        rare = rare_paths(model.layout, 1, dtype, None, with_dropout=False)
    key = (dtype.char, rare is None)
    if key in _PREDICTION_READY:
        return None
    arguments = (
        X[:1], rare, model.params.copy(), *model.predict_arguments[1:],
        np.empty((1, model.n_outputs), dtype=dtype),
    )  # fmt: skip
    rare_position, params_position = (kernel.py_func.arguments.index(name)
                                      for name in ("rare", "params"))  # fmt: skip
    # Compiled here, or in the disk cache (the first prediction loads it in a tenth
    # of a second; loading it here would lengthen a warm fit by as much).
    for signature in (*kernel.signatures, *cached_signatures(kernel)):
        if str(getattr(signature[params_position], "dtype", "")) == dtype.name and (
            (str(signature[rare_position]) == "none") == (rare is None)
        ):
            _PREDICTION_READY.add(key)
            return None

    def prepare():
        try:
            kernel(*arguments)
        except Exception:  # the first real prediction compiles, and reports, instead
            pass

    thread = threading.Thread(target=prepare, name="fastbp-prepare-prediction", daemon=True)
    thread.start()
    return thread


def kernels_are_cached(dtype):
    """True when numba's cache holds the common-path kernel for ``dtype``
    (so a fit will load, not compile, it). A cheap look at the cache index."""
    from fastbp._common_epochs import common_epochs
    from fastbp._kernel_cache import argument_position, cached_signatures

    name = np.dtype(dtype).name
    position = argument_position(common_epochs, "params")
    return any(
        str(getattr(signature[position], "dtype", "")) == name
        for signature in cached_signatures(common_epochs)
    )
