"""
Decision boundaries: fastbp and scikit-learn
============================================

``BackpropClassifier`` and scikit-learn's ``MLPClassifier``, with the same parameters
and ``random_state``, on a 2-D toy set: the same initial weights and the same
shuffling give the same model, so the two decision boundaries coincide.

Run: ``python examples/decision_boundary.py``
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.neural_network import MLPClassifier

import fastbp
from fastbp import BackpropClassifier

X, y = make_moons(n_samples=300, noise=0.25, random_state=0)
params = dict(hidden_layer_sizes=(16, 16), learning_rate_init=0.01, max_iter=200, random_state=0)

# %%
# Train both
# ----------
# ``fastbp.warmup()`` first, so that the timing below is the fit's, not the one-off
# compilation (or cache load) of the kernels.
fastbp.warmup(dtypes=["float64"])
models, seconds = {}, {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed budget of epochs
    for name, estimator in (("BackpropClassifier", BackpropClassifier(**params)),
                            ("MLPClassifier", MLPClassifier(**params))):  # fmt: skip
        start = time.perf_counter()
        models[name] = estimator.fit(X, y)
        seconds[name] = time.perf_counter() - start
        print(f"{name:18}: {estimator.n_iter_} epochs in {seconds[name]:.3f} s, "
              f"training accuracy {estimator.score(X, y):.3f}")  # fmt: skip

grid = np.stack(np.meshgrid(np.linspace(-2, 3, 200), np.linspace(-1.5, 2, 200)), -1).reshape(-1, 2)
ours = models["BackpropClassifier"].predict_proba(grid)[:, 1]
theirs = models["MLPClassifier"].predict_proba(grid)[:, 1]
print(f"largest difference of the predicted probabilities over a grid: "
      f"{np.abs(ours - theirs).max():.1e}")  # fmt: skip

# %%
# The two decision boundaries
# ---------------------------
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    DecisionBoundaryDisplay.from_estimator(model, X, response_method="predict_proba",
                                           cmap="RdBu", alpha=0.6, ax=ax)  # fmt: skip
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu", edgecolor="black", s=15)
    ax.set_title(f"{name}: fit in {seconds[name]:.3f} s")
plt.show()
