"""Small networks train on one BLAS thread; large ones keep the threads set."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastbp import BackpropClassifier, _blas_threads, _kernels


def _threads_during_training(monkeypatch, **params):
    seen = []
    real = _kernels.run_epochs
    controller = _blas_threads._blas_controller().select(user_api="blas")

    def recording(*args):
        seen.extend(library.num_threads for library in controller.lib_controllers)
        return real(*args)

    monkeypatch.setattr(_kernels, "run_epochs", recording)
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(300, 20)), np.arange(300) % 3
    with threadpool_limits(2, user_api="blas"):
        BackpropClassifier(max_iter=3, random_state=0, **params).fit(X, y)
        after = [library.num_threads for library in controller.lib_controllers]
    monkeypatch.undo()
    return set(seen), set(after)


def test_small_networks_train_on_one_blas_thread_and_restore_the_setting(monkeypatch):
    with threadpool_limits(2, user_api="blas"):
        controller = _blas_threads._blas_controller().select(user_api="blas")
        if max(library.num_threads for library in controller.lib_controllers) < 2:
            pytest.skip("BLAS runs one thread on this machine")
    # 200 x 20 x 100 multiply-adds per product: beyond what OpenBLAS keeps on one
    # thread by itself, within SMALL_PRODUCT_MACS
    during, after = _threads_during_training(monkeypatch, hidden_layer_sizes=(100,))
    assert during == {1}
    assert after == {2}  # restored when the fit ends
    # a network whose products pass the threshold keeps the threads set
    monkeypatch.setattr(_blas_threads, "SMALL_PRODUCT_MACS", 0)
    during, _ = _threads_during_training(monkeypatch, hidden_layer_sizes=(100,))
    assert during == {2}


@pytest.mark.parametrize("openblas", [True, False])
def test_products_openblas_keeps_on_one_thread_make_no_controller(monkeypatch, openblas):
    made = []
    monkeypatch.setattr(_blas_threads, "_controller", None)
    monkeypatch.setattr(_blas_threads, "_openblas", openblas)
    real = _blas_threads._blas_controller
    monkeypatch.setattr(_blas_threads, "_blas_controller", lambda: made.append(1) or real())
    tiny = _blas_threads.OPENBLAS_ONE_THREAD_MACS // (20 * 30)  # rows of 20 -> 30 products
    with _blas_threads.one_thread_if_small([20, 30, 3], tiny):
        pass
    assert made == ([] if openblas else [1])  # another BLAS: limited as before
    with _blas_threads.one_thread_if_small([20, 30, 3], tiny + 1):
        pass
    assert made == ([1] if openblas else [1, 1])


def test_the_kernels_blas_is_recognised_as_openblas_where_threadpoolctl_sees_it():
    libraries = _blas_threads._blas_controller().select(user_api="blas").lib_controllers
    if not libraries or any(library.internal_api != "openblas" for library in libraries):
        pytest.skip("no OpenBLAS here")
    assert _blas_threads._kernels_blas_is_openblas()


def test_largest_product_counts_multiply_adds_of_one_minibatch():
    assert _blas_threads.largest_product_macs([784, 256, 10], 128) == 128 * 784 * 256
    assert _blas_threads.largest_product_macs(np.array([64, 100, 10]), 200) == 200 * 64 * 100
