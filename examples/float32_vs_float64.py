"""float32 vs float64: float32 input trains and predicts in float32 end to end,
about twice as fast, to the same accuracy on well-scaled data.

Run: python examples/float32_vs_float64.py
"""

import time
import warnings

import numpy as np
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropRegressor

# fixed epoch budgets, on purpose: not converging is expected here
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = make_friedman1(n_samples=5000, noise=0.5, random_state=0)
X = StandardScaler().fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

for dtype in (np.float64, np.float32):
    Xtr, Xte = X_train.astype(dtype), X_test.astype(dtype)
    ytr = y_train.astype(dtype)
    model = BackpropRegressor(hidden_layer_sizes=(64, 64), max_iter=60, tol=0,
                              n_iter_no_change=1000, random_state=0)  # fmt: skip
    model.fit(Xtr[:50], ytr[:50])  # compile (or load) this dtype's kernels first
    start = time.perf_counter()
    model.fit(Xtr, ytr)
    seconds = time.perf_counter() - start
    prediction = model.predict(Xte)
    print(f"{np.dtype(dtype).name}: fit {seconds:.2f} s for {model.n_iter_} epochs, "
          f"test R^2 {model.score(Xte, y_test):.4f}, weights {model.coefs_[0].dtype}, "
          f"predictions {prediction.dtype}")  # fmt: skip
