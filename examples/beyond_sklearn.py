"""What fastbp adds to scikit-learn's MLP, as plain estimator parameters.

Run: python examples/beyond_sklearn.py
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastbp import BackpropClassifier, BackpropRegressor

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# --- Classification: dropout, per-layer activations, a cosine schedule, gradient
# clipping, class weights, and early stopping on the validation log-loss.
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

# --- Regression: the Huber loss shrugs off outliers that drag squared error away.
rng = np.random.RandomState(0)
X = rng.uniform(-3, 3, (1000, 1))
y_true = np.sin(X[:, 0])
y = y_true + 0.1 * rng.normal(size=1000)
y[rng.rand(1000) < 0.05] += 30  # 5% gross outliers
for loss in ("squared_error", "huber", "absolute_error"):
    reg = BackpropRegressor(loss=loss, hidden_layer_sizes=(32, 32), learning_rate_init=0.01,
                            max_iter=300, random_state=0).fit(X, y)  # fmt: skip
    error = np.abs(reg.predict(X) - y_true).mean()
    print(f"regressor, loss={loss!r:16}: mean error against the clean curve {error:.3f}")

# --- Progress bars and per-epoch scores through scikit-learn's callback API.
try:
    from sklearn.callback import ScoringMonitor
except ImportError:  # scikit-learn before 1.9 has no callback API
    ScoringMonitor = None
if ScoringMonitor is not None:
    monitor = ScoringMonitor(scoring="accuracy")
    BackpropClassifier(max_iter=5, random_state=0).set_callbacks(monitor).fit(X_train, y_train)
    epochs = [row["accuracy"] for row in monitor.get_logs().data if row["task_name"] == "epoch"]
    print(f"ScoringMonitor, training accuracy per epoch: {np.round(epochs, 3)}")
