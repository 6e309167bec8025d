"""Scale-out: warm-up, Dask clusters, streaming over chunks, threads and processes."""

import os
import pathlib
import subprocess
import sys
import threading
import time
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, train_test_split

import fastbp
from fastbp import (
    BackpropClassifier,
    DaskChunks,
    _common_epochs,
    _kernel_cache,
    _kernels,
    fit_chunks,
)
from fastbp._kernel_cache import argument_position

GRID = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(n_samples=300, n_features=10, n_informative=6, random_state=0)
    return X, y


def _search(n_jobs=None):
    return GridSearchCV(BackpropClassifier(max_iter=15, random_state=0), GRID, cv=3, n_jobs=n_jobs)


def _position(kernel, name):
    """Where the argument ``name`` sits in a kernel's signatures (read from the
    entry point's argument list, which is written from the named tuples)."""
    return kernel.py_func.arguments.index(name)


def _compiled(kernel):
    """(params dtype, with the rare paths?) of each compiled signature of a kernel."""
    rare, params = _position(kernel, "rare"), _position(kernel, "params")
    return {
        (str(signature[params].dtype), str(signature[rare]) != "none")
        for signature in kernel.signatures
    }


def test_warmup_compiles_the_common_paths_and_on_request_everything():
    seconds = fastbp.warmup()
    assert set(seconds) == {"float64", "float32"}
    common_kernel = _common_epochs.common_epochs
    params = _position(common_kernel, "params")
    common = {str(signature[params].dtype) for signature in common_kernel.signatures}
    assert common == {"float64", "float32"}  # one common-path kernel per dtype
    epochs, predictions = _kernels.epoch_kernel, _kernels.predict_forward
    assert {("float64", False), ("float32", False)} <= _compiled(predictions)
    fastbp.warmup(everything=True)
    # the full epoch kernel (always with its rare paths), and the common and the full
    # prediction kernel, per dtype; nothing more
    assert _compiled(epochs) == {("float64", True), ("float32", True)}
    assert _compiled(predictions) == {(d, r) for d in ("float64", "float32") for r in (0, 1)}
    params = argument_position(_kernels._full_gradient, "params")
    chunked = {str(signature[params].dtype) for signature in _kernels._full_gradient.signatures}
    assert chunked == {"float64", "float32"}
    # L-BFGS's compiled exact steps (fastbp._exact_steps), one output and a softmax
    from fastbp import _exact_steps

    for step in (_exact_steps.outer_relu_derivative_summed, _exact_steps.subtract_summed):
        assert {str(signature[0].dtype) for signature in step.signatures} == {
            "float64",
            "float32",
        }


def test_warmup_refuses_a_bad_n_jobs():
    for n_jobs in (0, -2, 1.5, "2"):
        with pytest.raises(ValueError, match="n_jobs must be a positive integer or -1"):
            fastbp.warmup(dtypes=["float64"], n_jobs=n_jobs)


@pytest.mark.skipif(not _kernel_cache.LOCKS_WORK, reason="no file locks on this platform")
def test_a_failing_warmup_process_is_reported_with_its_error():
    # warmup refuses a dtype it cannot compile before it starts a process; past that
    # check, a child that fails is reported with its own error.
    from fastbp._warmup import _warmup_in_processes

    with pytest.raises(RuntimeError, match="warming the complex128 kernels") as raised:
        _warmup_in_processes([np.dtype("float64"), np.dtype("complex128")], False, 2)
    assert "not complex128" in str(raised.value)  # the child's own error


@pytest.mark.parametrize("dtype", ["float16", "int32", object, "complex128"])
def test_warmup_refuses_dtypes_other_than_float32_and_float64(dtype):
    with pytest.raises(ValueError, match="float32 or float64"):
        fastbp.warmup(dtypes=[dtype], n_jobs=2)


class _RecordingCache:
    """A stand-in for numba's cache of one kernel: records when it saves."""

    def __init__(self, cache_path):
        self.cache_path = str(cache_path)
        self.saved_at = None

    def save_overload(self, sig, data):
        self.saved_at = time.monotonic()


@pytest.mark.skipif(not _kernel_cache.LOCKS_WORK, reason="no file locks on this platform")
def test_cache_writers_take_turns(tmp_path):
    """A kernel's save waits while another writer (here: this test, as a second
    process would) holds the cache directory's lock, and goes ahead once it is
    released: two processes compiling at once cannot interleave index updates."""
    recording = _RecordingCache(tmp_path)
    cache = _kernel_cache._SelfHealingCache(recording)
    with _kernel_cache.cache_directory_lock(tmp_path):
        saver = threading.Thread(target=cache.save_overload, args=("signature", "data"))
        saver.start()
        saver.join(timeout=0.5)
        assert saver.is_alive() and recording.saved_at is None  # waiting for the lock
        released_at = time.monotonic()
    saver.join(timeout=10)
    assert not saver.is_alive() and recording.saved_at >= released_at
    assert (tmp_path / _kernel_cache.LOCK_FILE).exists()


@pytest.mark.slow
@pytest.mark.skipif(not _kernel_cache.LOCKS_WORK, reason="no file locks on this platform")
def test_parallel_warmup_leaves_every_dtype_in_the_cache(tmp_path):
    """Both dtypes compiled at once, in two processes writing one empty cache: a new
    process then loads every kernel it needs, for both dtypes, and compiles none (nor
    prepares numba's compiler: loading needs only its runtime)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    warm = subprocess.run(
        [sys.executable, "-c", "import fastbp; print(sorted(fastbp.warmup(n_jobs=2)))"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout.split("\n")[0] == "['float32', 'float64']"
    check = """
import sys
import numpy as np
from fastbp import BackpropClassifier, _common_epochs, _kernels
from fastbp._warmup import kernels_are_cached
X = np.random.RandomState(0).rand(40, 3)
y = np.arange(40) % 3
for dtype in (np.float64, np.float32):
    assert kernels_are_cached(dtype)
    model = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X.astype(dtype), y)
    model.predict(X.astype(dtype))  # through the cached prediction kernel
for kernel in (_common_epochs.common_epochs, _kernels.predict_forward):
    stats = kernel.stats
    print(kernel.__name__, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
# loading skipped numba's refresh of its compiler registries (a module only it imports)
print("registries loaded:", "numba.np.polynomial.polynomial_core" in sys.modules)
"""
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=900, env=env
    )
    assert loaded.returncode == 0, loaded.stderr
    # one variant of each kernel per dtype, all loaded from the cache, none compiled
    assert loaded.stdout.split("\n")[:3] == [
        "common_epochs 2 0", "predict_forward 2 0", "registries loaded: False"
    ]  # fmt: skip


def _cache_location():
    return _kernel_cache.CACHE_LOCATION


def _numba_cache_files():
    """The files of numba's on-disk cache of fastbp's kernels, with their size and
    modification time: a process that compiles a kernel saves it there."""
    location = pathlib.Path(_kernel_cache.CACHE_LOCATION)
    stats = {path.name: path.stat() for path in location.glob("*.nb[ic]")}
    return {name: (stat.st_size, stat.st_mtime_ns) for name, stat in stats.items()}


def _blas_threads():
    from threadpoolctl import threadpool_info

    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


@pytest.mark.slow
def test_grid_search_on_a_dask_cluster_matches_one_process(problem):
    distributed = pytest.importorskip("distributed")
    X, y = problem
    fastbp.warmup()  # fills the on-disk cache that the workers read
    reference = _search().fit(X, y)
    cache_before = _numba_cache_files()
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with joblib.parallel_config(backend="dask"), distributed.get_task_stream(client) as tasks:
            search = _search(n_jobs=-1).fit(X, y)
        blas_threads = client.run(_blas_threads)
        locations = client.run(_cache_location)
    # one BLAS thread per single-threaded worker process: no oversubscription
    assert all(threads == {1} for threads in blas_threads.values())
    assert search.best_params_ == reference.best_params_
    assert_allclose(search.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"])
    # Both workers trained, loading the compiled kernels from this process's cache:
    # none compiled one (which saves it to the cache).
    assert len({task["worker"] for task in tasks.data}) == 2
    assert set(locations.values()) == {_kernel_cache.CACHE_LOCATION}
    assert _numba_cache_files() == cache_before


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_grid_search_with_two_jobs_matches_one_job(backend, problem):
    X, y = problem
    reference = _search().fit(X, y)
    with joblib.parallel_config(backend=backend):
        search = _search(n_jobs=2).fit(X, y)
    assert search.best_params_ == reference.best_params_
    assert_allclose(search.cv_results_["mean_test_score"], reference.cv_results_["mean_test_score"])


def _fit_recording_blas_threads(seed):
    """Fit a network large enough that fastbp leaves BLAS's threads as set; returns
    the BLAS threads seen while it trained, those after, and the weights."""
    from fastbp import _blas_threads

    controller = _blas_threads._blas_controller().select(user_api="blas")
    seen, real = [], _kernels.run_epochs

    def recording(*args):
        seen.extend(library.num_threads for library in controller.lib_controllers)
        return real(*args)

    rng = np.random.RandomState(seed)
    X, y = rng.normal(size=(200, 100)), np.arange(200) % 2
    _kernels.run_epochs = recording
    try:
        model = BackpropClassifier(hidden_layer_sizes=(256,), max_iter=2, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
    finally:
        _kernels.run_epochs = real
    after = [library.num_threads for library in controller.lib_controllers]
    return seen, after, model.coefs_


def test_fits_in_loky_workers_keep_the_workers_blas_limit_and_give_the_same_model():
    """joblib caps each loky worker's BLAS at cores // n_jobs: fastbp trains within
    the cap (no oversubscription) and leaves it as it was, and the models are the
    in-process ones."""
    results = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_fit_recording_blas_threads)(seed) for seed in range(2)
    )
    limit = max(1, (os.cpu_count() or 1) // 2)
    for seed, (seen, after, coefs) in enumerate(results):
        assert seen and max(seen) <= limit and max(after) <= limit
        for ours, here in zip(coefs, _fit_recording_blas_threads(seed)[2]):
            assert_allclose(ours, here, rtol=1e-10, atol=1e-12)


def test_streaming_dask_chunks_reaches_in_memory_accuracy():
    da = pytest.importorskip("dask.array")
    X, y = make_classification(n_samples=6000, n_features=20, n_informative=10, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    in_memory = BackpropClassifier(max_iter=20, random_state=0).fit(X_train, y_train)
    chunks = DaskChunks(
        da.from_array(X_train, chunks=(500, 20)), da.from_array(y_train, chunks=500)
    )
    assert len(chunks) == 9 and chunks[0][0].shape == (500, 20)
    streamed = fit_chunks(
        BackpropClassifier(random_state=0), chunks, epochs=20, classes=[0, 1], random_state=0
    )
    assert streamed.score(X_test, y_test) >= in_memory.score(X_test, y_test) - 0.02
    # one partial_fit per chunk and epoch: every sample seen 20 times
    assert streamed.t_ == 20 * len(y_train)


def test_fit_chunks_visits_chunks_in_a_new_order_each_epoch(monkeypatch):
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    chunks = [(X[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10)]
    seen = []
    clf = BackpropClassifier(max_iter=1)
    real = clf.partial_fit

    def record(X_chunk, y_chunk, **kwargs):
        seen.append(int(np.flatnonzero((X == X_chunk[0]).all(axis=1))[0]) // 10)
        return real(X_chunk, y_chunk, **kwargs)

    monkeypatch.setattr(clf, "partial_fit", record)
    fit_chunks(clf, chunks, epochs=3, classes=[0, 1], random_state=0)
    epochs = [seen[i : i + 4] for i in range(0, 12, 4)]
    assert all(sorted(epoch) == [0, 1, 2, 3] for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1


def test_fit_chunks_rejects_empty_input_and_bad_epochs():
    with pytest.raises(ValueError, match="chunks is empty"):
        fit_chunks(BackpropClassifier(), [])
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit_chunks(BackpropClassifier(), [(np.zeros((2, 2)), np.array([0, 1]))], epochs=0)


def test_dask_ml_incremental_wrapper_trains_over_blocks():
    da = pytest.importorskip("dask.array")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = make_classification(n_samples=2000, n_features=8, random_state=0)
    X_blocks, y_blocks = da.from_array(X, chunks=(250, 8)), da.from_array(y, chunks=250)
    incremental = wrappers.Incremental(BackpropClassifier(random_state=0), random_state=0)
    for _ in range(10):  # each fit call is one pass over the blocks
        incremental.partial_fit(X_blocks, y_blocks, classes=[0, 1])
    assert incremental.estimator_.t_ == 10 * len(y)
    assert incremental.score(X_blocks, y_blocks) > 0.85
