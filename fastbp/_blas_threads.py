"""One BLAS thread for networks whose matrix products are small.

A minibatch product of a small network is over before a second BLAS thread pays for
waking up; where the other core is busy, waiting for it costs far more (in the
benchmark, digits with 2 threads ran at half the speed of 1 thread, at 1.06-1.17x on
a quiet machine). OpenBLAS keeps products under 262,144 multiply-adds on one thread
by itself; this extends that to the products of a whole fit, up to
:data:`SMALL_PRODUCT_MACS`, and leaves larger networks (784 -> 256 at batch 128
makes 25.7 million) with the threads the user set.
"""

import contextlib

#: A fit whose largest minibatch product has at most this many multiply-adds
#: trains with one BLAS thread.
SMALL_PRODUCT_MACS = 1 << 22

#: OpenBLAS runs a matrix product of at most this many multiply-adds on one thread
#: whatever its thread setting (SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD,
#: 65536 * 4, in its interface/gemm.c): a fit of such products needs no limit.
OPENBLAS_ONE_THREAD_MACS = 65536 * 4

_controller = None
_openblas = None


def _kernels_blas_is_openblas():
    """Whether scipy's BLAS, the one the kernels call, is OpenBLAS (scipy's build
    configuration says so; checked once)."""
    global _openblas
    if _openblas is None:
        try:
            from scipy.__config__ import CONFIG

            name = CONFIG["Build Dependencies"]["blas"]["name"]
        except (ImportError, KeyError, TypeError):
            name = ""
        _openblas = "openblas" in str(name).lower()
    return _openblas


def _blas_controller():
    """threadpoolctl's controller, made once (making one scans every loaded library:
    10-25 ms with scikit-learn and numba loaded, measured; limiting through it takes
    microseconds). It is made after numba's BLAS (scipy's, which the kernels call)
    is loaded."""
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  - the library the kernels call
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def largest_product_macs(layer_units, batch_rows):
    """Multiply-adds of the largest forward product of one minibatch."""
    return max(int(batch_rows) * int(a) * int(b) for a, b in zip(layer_units[:-1], layer_units[1:]))


def one_thread_if_small(layer_units, batch_rows):
    """A context manager that limits BLAS to one thread (and restores it) when the
    network's minibatch products are small; otherwise it does nothing. Products that
    OpenBLAS keeps on one thread by itself need no limit (and no controller: a small
    first fit would spend more on making one than on its epochs)."""
    macs = largest_product_macs(layer_units, batch_rows)
    if macs > SMALL_PRODUCT_MACS:
        return contextlib.nullcontext()
    if macs <= OPENBLAS_ONE_THREAD_MACS and _kernels_blas_is_openblas():
        return contextlib.nullcontext()
    controller = _blas_controller().select(user_api="blas")
    if all(library.num_threads <= 1 for library in controller.lib_controllers):
        return contextlib.nullcontext()
    return controller.limit(limits=1)
