"""
Beyond scikit-learn's MLP
=========================

What fastbp adds to scikit-learn's MLP, as plain estimator parameters whose defaults
keep scikit-learn's behaviour: dropout, per-layer activations, learning-rate
schedules, gradient clipping, class weights, early stopping on any scorer, robust
regression losses, and scikit-learn's callback API.

Run: ``python examples/beyond_sklearn.py``
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastbp import BackpropClassifier, BackpropRegressor, LossCurveDisplay

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Classification
# --------------
# Dropout, per-layer activations, a cosine schedule, gradient clipping, class weights,
# and early stopping on the validation log-loss.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0, stratify=y)
clf = BackpropClassifier(
    hidden_layer_sizes=(128, 64),
    activation=["elu", "leaky_relu"],  # one per hidden layer
    dropout=[0.2, 0.1],  # inverted dropout while training, none at predict time
    learning_rate="cosine",  # decays to 0 over max_iter epochs (sgd and adam)
    max_grad_norm=5.0,  # clip each step's global gradient norm
    class_weight="balanced",
    early_stopping=True,
    scoring="neg_log_loss",  # early stopping on any scikit-learn scorer, or "loss"
    n_iter_no_change=15,
    max_iter=150,
    random_state=0,
).fit(X_train, y_train)
best_epoch = int(np.argmax(clf.validation_scores_)) + 1
print(f"classifier: {clf.n_iter_} epochs, best validation log-loss "
      f"{-clf.best_validation_score_:.4f} at epoch {best_epoch} (weights restored), "
      f"test accuracy {clf.score(X_test, y_test):.4f}")  # fmt: skip
print(f"  validation loss curve (first 5): {np.round(clf.validation_loss_curve_[:5], 4)}")

# %%
# The training loss (with dropout active), the validation loss, and the monitored
# score (the negated validation log-loss); the weights of the best epoch are kept.
display = LossCurveDisplay.from_estimator(clf, name="dropout + cosine")
display.ax_.axvline(best_epoch, color="grey", linestyle=":")
display.ax_.set_title(f"best epoch {best_epoch} of {clf.n_iter_}")
display.figure_.tight_layout()

# %%
# Regression: robust losses
# -------------------------
# The Huber and absolute-error losses shrug off outliers that drag squared error away.
rng = np.random.RandomState(0)
X = rng.uniform(-3, 3, (1000, 1))
y_true = np.sin(X[:, 0])
y = y_true + 0.1 * rng.normal(size=1000)
y[rng.rand(1000) < 0.05] += 30  # 5% gross outliers
grid = np.linspace(-3, 3, 200).reshape(-1, 1)
fig, ax = plt.subplots(figsize=(7, 4))
ax.scatter(X[:, 0], y, s=4, color="lightgrey", label="data (outliers at +30, off the chart)")
for loss in ("squared_error", "huber", "absolute_error"):
    reg = BackpropRegressor(loss=loss, hidden_layer_sizes=(32, 32), learning_rate_init=0.01,
                            max_iter=300, random_state=0).fit(X, y)  # fmt: skip
    error = np.abs(reg.predict(X) - y_true).mean()
    print(f"regressor, loss={loss!r:16}: mean error against the clean curve {error:.3f}")
    ax.plot(grid[:, 0], reg.predict(grid), label=f"loss={loss!r}: mean error {error:.3f}")
ax.plot(grid[:, 0], np.sin(grid[:, 0]), color="black", linestyle="--", label="clean curve")
ax.set_ylim(-2, 3.5)
ax.set_title("5% of the targets shifted by +30")
ax.legend(loc="upper left", fontsize=8)

# %%
# Progress bars and per-epoch scores through scikit-learn's callback API
# ----------------------------------------------------------------------
# (scikit-learn 1.9 or later; skipped with older versions.)
try:
    from sklearn.callback import ScoringMonitor
except ImportError:  # scikit-learn before 1.9 has no callback API
    ScoringMonitor = None
if ScoringMonitor is not None:
    monitor = ScoringMonitor(scoring="accuracy")
    BackpropClassifier(max_iter=5, random_state=0).set_callbacks(monitor).fit(X_train, y_train)
    epochs = [row["accuracy"] for row in monitor.get_logs().data if row["task_name"] == "epoch"]
    print(f"ScoringMonitor, training accuracy per epoch: {np.round(epochs, 3)}")
plt.show()
