"""
Quick start: swap MLPClassifier for BackpropClassifier
======================================================

Keep everything else: the pipeline, the parameters, early stopping, ``score`` and
``predict_proba`` work as with scikit-learn's ``MLPClassifier``.

Run: ``python examples/quickstart.py``
"""

import time

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

import fastbp
from fastbp import BackpropClassifier  # was: from sklearn.neural_network import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)

# %%
# Train
# -----
# The first fit in a fresh environment would also compile the kernels, and a later
# process's first fit load them from numba's cache; ``warmup`` (or ``python -m fastbp
# --warmup``) does that ahead, so the fit below is timed alone.
seconds = fastbp.warmup(["float64"])["float64"]
print(f"kernels ready in {seconds:.2f} s (compiled once per environment, then loaded from cache)")
model = make_pipeline(
    MinMaxScaler(),
    BackpropClassifier(hidden_layer_sizes=(128, 64), early_stopping=True, random_state=0),
)
start = time.perf_counter()
model.fit(X_train, y_train)
elapsed = time.perf_counter() - start

clf = model[-1]
print(f"trained {clf.n_iter_} epochs in {elapsed:.2f} s")
print(f"best validation accuracy: {clf.best_validation_score_:.4f}")
print(f"test accuracy: {model.score(X_test, y_test):.4f}")
print("class probabilities of the first test image:", model.predict_proba(X_test[:1]).round(3))

# %%
# Look at some predictions
# ------------------------
# The first test images, each with the predicted digit and its probability.
probabilities = model.predict_proba(X_test[:12])
fig, axes = plt.subplots(2, 6, figsize=(9, 4.2))
for ax, image, label, proba in zip(axes.ravel(), X_test, y_test, probabilities):
    predicted = clf.classes_[proba.argmax()]
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{predicted} ({proba.max():.0%})", color="black" if predicted == label else "red")
    ax.axis("off")
fig.suptitle("predicted digit (probability); red: wrong")
fig.tight_layout()
plt.show()
