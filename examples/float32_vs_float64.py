"""
float32 vs float64
==================

float32 input trains and predicts in float32 end to end, to the same accuracy on
well-scaled data. In the benchmark report float32 trains about twice as fast as
float64 for all but the tiniest networks; the timings below are this run's, on
whatever machine ran it.

Run: ``python examples/float32_vs_float64.py``
"""

import time
import warnings

import matplotlib.pyplot as plt
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

# %%
# The same model, trained on each dtype
# -------------------------------------
# The dtype of ``X`` decides: the weights, the arithmetic and the predictions follow it.
results = {}
for dtype in (np.float64, np.float32):
    Xtr, Xte = X_train.astype(dtype), X_test.astype(dtype)
    ytr = y_train.astype(dtype)
    model = BackpropRegressor(hidden_layer_sizes=(64, 64), max_iter=30, tol=0,
                              n_iter_no_change=1000, random_state=0)  # fmt: skip
    model.fit(Xtr[:50], ytr[:50])  # compile (or load) this dtype's kernels first
    start = time.perf_counter()
    model.fit(Xtr, ytr)
    seconds = time.perf_counter() - start
    prediction = model.predict(Xte)
    name = np.dtype(dtype).name
    results[name] = (seconds, model.score(Xte, y_test))
    print(f"{name}: fit {seconds:.2f} s for {model.n_iter_} epochs, "
          f"test R^2 {results[name][1]:.4f}, weights {model.coefs_[0].dtype}, "
          f"predictions {prediction.dtype}")  # fmt: skip

# %%
# Fit time and accuracy
# ---------------------
names = list(results)
seconds = [results[name][0] for name in names]
fig, ax = plt.subplots(figsize=(5, 3.5))
bars = ax.bar(names, seconds, color=["tab:blue", "tab:orange"])
for bar, name in zip(bars, names):
    ax.annotate(f"{results[name][0]:.2f} s\ntest R^2 {results[name][1]:.4f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center", va="bottom")  # fmt: skip
ax.set_ylabel("fit time (s), 30 epochs")
ax.set_ylim(0, max(seconds) * 1.35)
ax.set_title(f"float32 is {results['float64'][0] / results['float32'][0]:.1f}x faster here")
fig.tight_layout()
plt.show()
