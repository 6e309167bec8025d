import os
import sys

# The examples draw figures and end with plt.show(): under pytest matplotlib draws to
# memory (Agg), so nothing opens a window or blocks. Set before matplotlib is imported.
os.environ["MPLBACKEND"] = "Agg"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Lets tests import the plain-numpy reference implementation next to them.
sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="session")
def small_classification():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=150, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    return X, y


@pytest.fixture(scope="session")
def small_regression():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (160, 6))
    y = np.sin(X[:, 0] * 2) + X[:, 1] * X[:, 2] + 0.1 * rng.randn(160)
    return X, y


@pytest.fixture
def kept_kernel_cache(request, tmp_path):
    """``kept_kernel_cache(name)``: a NUMBA_CACHE_DIR that outlives the test run (in
    pytest's cache directory), for tests that compile in a fresh process under
    settings of their own (bounds checking, an edited copy of the package): the next
    run of the suite loads what this one compiled. Safe because fastbp files its
    kernels under the fastbp, numba and Python versions and a digest of the kernel
    sources (fastbp._kernel_cache), so an edit is compiled anew, never loaded
    stale. A fresh directory where pytest's cache is off (-p no:cacheprovider)."""

    def directory(name):
        cache = getattr(request.config, "cache", None)
        if cache is None:
            return tmp_path / name
        return cache.mkdir(f"fastbp-kernels-{name}")

    return directory
