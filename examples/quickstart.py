"""Quick start: swap MLPClassifier for BackpropClassifier and keep everything else.

Run: python examples/quickstart.py
"""

import time

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from fastbp import BackpropClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)

model = make_pipeline(
    MinMaxScaler(),
    BackpropClassifier(hidden_layer_sizes=(128, 64), early_stopping=True, random_state=0),
)
start = time.perf_counter()
model.fit(X_train, y_train)
elapsed = time.perf_counter() - start

clf = model[-1]
print(f"trained {clf.n_iter_} epochs in {elapsed:.2f} s (first run includes compilation)")
print(f"best validation accuracy: {clf.best_validation_score_:.4f}")
print(f"test accuracy: {model.score(X_test, y_test):.4f}")
print("class probabilities of the first test image:", model.predict_proba(X_test[:1]).round(3))
