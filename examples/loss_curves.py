"""Loss curves: the training loss, the validation loss and the validation score per
epoch, drawn with LossCurveDisplay (needs matplotlib: pip install "fastbp[plot]").

Run: python examples/loss_curves.py   (writes loss_curves.png to the temp directory)
"""

import os
import tempfile

import matplotlib

matplotlib.use("Agg")  # draw to a file; remove this line to open a window
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from fastbp import BackpropClassifier, LossCurveDisplay  # noqa: E402

X, y = load_digits(return_X_y=True)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, solver in zip(axes, ("sgd", "adam")):
    clf = BackpropClassifier(solver=solver, learning_rate_init=0.01, early_stopping=True,
                             max_iter=200, random_state=0).fit(X / 16, y)  # fmt: skip
    LossCurveDisplay.from_estimator(clf, ax=ax, name=solver)
    ax.set_title(f"{solver}: {clf.n_iter_} epochs, best validation accuracy "
                 f"{clf.best_validation_score_:.3f}")  # fmt: skip
fig.tight_layout()
path = os.path.join(tempfile.gettempdir(), "loss_curves.png")
fig.savefig(path, dpi=100)
print(f"wrote {path}")
