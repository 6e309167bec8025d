"""
Hyperparameter search with GridSearchCV
=======================================

A grid search in parallel on this machine's cores (``n_jobs=2``: joblib's loky
processes; the compiled kernels are loaded from numba's cache in each), and its
cross-validated scores as a heatmap.

Run: ``python examples/grid_search.py``
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from fastbp import BackpropClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short searches
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0, stratify=y)

# %%
# The search
# ----------
grid = {
    "hidden_layer_sizes": [(64,), (128,), (64, 64)],
    "alpha": [1e-4, 1e-2],
    "activation": ["relu", "tanh"],
}
search = GridSearchCV(BackpropClassifier(max_iter=40, random_state=0), grid, cv=3, n_jobs=2)
search.fit(X_train, y_train)
print(f"best parameters: {search.best_params_}")
print(f"best cross-validated accuracy: {search.best_score_:.4f}")
print(f"test accuracy of the refitted best model: {search.score(X_test, y_test):.4f}")

# %%
# The scores, as a heatmap
# ------------------------
# One panel per activation; rows are the layer sizes, columns the L2 strength.
results = search.cv_results_
fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True, constrained_layout=True)
for ax, activation in zip(axes, grid["activation"]):
    scores = np.empty((len(grid["hidden_layer_sizes"]), len(grid["alpha"])))
    for params, score in zip(results["params"], results["mean_test_score"]):
        if params["activation"] == activation:
            row = grid["hidden_layer_sizes"].index(params["hidden_layer_sizes"])
            scores[row, grid["alpha"].index(params["alpha"])] = score
    image = ax.imshow(scores, cmap="viridis", vmin=results["mean_test_score"].min(),
                      vmax=results["mean_test_score"].max())  # fmt: skip
    middle = (image.norm.vmin + image.norm.vmax) / 2
    for (row, column), score in np.ndenumerate(scores):
        color = "black" if score > middle else "white"  # readable on light and dark cells
        ax.text(column, row, f"{score:.3f}", ha="center", va="center", color=color)
    ax.set_xticks(range(len(grid["alpha"])), [f"{alpha:g}" for alpha in grid["alpha"]])
    ax.set_xlabel("alpha")
    ax.set_yticks(range(len(grid["hidden_layer_sizes"])), map(str, grid["hidden_layer_sizes"]))
    ax.set_title(f"activation={activation!r}")
axes[0].set_ylabel("hidden_layer_sizes")
fig.colorbar(image, ax=axes, label="mean cross-validated accuracy")
plt.show()
