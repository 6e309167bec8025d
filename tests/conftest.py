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
