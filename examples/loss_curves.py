"""
Loss curves, and scikit-learn's
===============================

The training loss, the validation loss and the validation score per epoch, drawn with
``LossCurveDisplay`` (needs matplotlib: ``pip install "fastbp[plot]"``); then the loss
curve of ``BackpropClassifier`` over scikit-learn's ``MLPClassifier`` with the same
parameters: the same curve, from the same weights, in less time.

Run: ``python examples/loss_curves.py``
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from fastbp import BackpropClassifier, LossCurveDisplay

X, y = load_digits(return_X_y=True)
X = X / 16

# %%
# SGD and Adam, with early stopping
# ---------------------------------
# With ``early_stopping=True`` a tenth of the data is held out; the display draws its
# loss and score beside the training loss.
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, solver in zip(axes, ("sgd", "adam")):
    clf = BackpropClassifier(solver=solver, learning_rate_init=0.01, early_stopping=True,
                             max_iter=100, random_state=0).fit(X, y)  # fmt: skip
    LossCurveDisplay.from_estimator(clf, ax=ax, name=solver)
    ax.set_title(f"{solver}: {clf.n_iter_} epochs, best validation accuracy "
                 f"{clf.best_validation_score_:.3f}")  # fmt: skip
    print(f"{solver}: {clf.n_iter_} epochs, best validation accuracy "
          f"{clf.best_validation_score_:.3f}")  # fmt: skip
fig.tight_layout()

# %%
# The same curve as scikit-learn's
# --------------------------------
# Same parameters and ``random_state``: the same initial weights, the same shuffling,
# hence the same loss at every epoch (to rounding).
params = dict(hidden_layer_sizes=(64,), max_iter=30, random_state=0)
curves, seconds = {}, {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed budget of 30 epochs
    for name, estimator in (("fastbp", BackpropClassifier(**params)),
                            ("scikit-learn", MLPClassifier(**params))):  # fmt: skip
        start = time.perf_counter()
        estimator.fit(X, y)
        seconds[name] = time.perf_counter() - start
        curves[name] = np.array(estimator.loss_curve_)
difference = np.abs(curves["fastbp"] - curves["scikit-learn"]).max()
print(f"largest difference between the loss curves: {difference:.1e}")
print(f"fit time: fastbp {seconds['fastbp']:.2f} s, scikit-learn {seconds['scikit-learn']:.2f} s")

fig, ax = plt.subplots(figsize=(6, 4))
epochs = np.arange(1, len(curves["fastbp"]) + 1)
ax.plot(epochs, curves["scikit-learn"], linewidth=6, alpha=0.4,
        label=f"MLPClassifier ({seconds['scikit-learn']:.2f} s)")  # fmt: skip
ax.plot(epochs, curves["fastbp"], color="black",
        label=f"BackpropClassifier ({seconds['fastbp']:.2f} s)")  # fmt: skip
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title(f"adam, digits: largest difference {difference:.1e}")
ax.legend()
plt.show()
