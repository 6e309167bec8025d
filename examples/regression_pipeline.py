"""
Regression in a scikit-learn pipeline
=====================================

Scaling, a ``BackpropRegressor`` with early stopping, and cross-validation, on the
diabetes data that ships with scikit-learn.

Run: ``python examples/regression_pipeline.py``
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropRegressor

X, y = load_diabetes(return_X_y=True)
model = make_pipeline(
    StandardScaler(),
    BackpropRegressor(
        hidden_layer_sizes=(32,),
        alpha=1.0,
        learning_rate_init=0.01,
        early_stopping=True,
        n_iter_no_change=20,
        max_iter=1000,
        random_state=0,
    ),  # fmt: skip
)

# %%
# Five-fold cross-validation
# --------------------------
# ``return_estimator`` and ``return_indices`` keep each fold's fitted pipeline and its
# held-out rows, to plot the predictions below without fitting again.
scores = cross_validate(
    model,
    X,
    y,
    cv=5,
    scoring=("r2", "neg_mean_absolute_error"),
    return_estimator=True,
    return_indices=True,
)
print(f"R^2 per fold: {scores['test_r2'].round(3)}, mean {scores['test_r2'].mean():.3f}")
print(f"mean absolute error: {-scores['test_neg_mean_absolute_error'].mean():.1f}")

# %%
# Held-out predictions
# --------------------
# Every sample predicted by the fold that did not train on it.
fig, ax = plt.subplots(figsize=(5, 5))
for fold, (fitted, rows) in enumerate(zip(scores["estimator"], scores["indices"]["test"])):
    ax.scatter(y[rows], fitted.predict(X[rows]), s=12, alpha=0.7, label=f"fold {fold + 1}")
limits = np.array([y.min(), y.max()])
ax.plot(limits, limits, color="black", linewidth=1, label="perfect prediction")
ax.set_xlabel("measured disease progression")
ax.set_ylabel("predicted")
ax.set_title(f"held-out predictions, mean R^2 {scores['test_r2'].mean():.3f}")
ax.legend()
plt.show()
