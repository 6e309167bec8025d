"""Hyperparameter search with GridSearchCV, in parallel on this machine's cores.

Run: python examples/grid_search.py
"""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split

from fastbp import BackpropClassifier

warnings.filterwarnings("ignore", category=ConvergenceWarning)  # short searches
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0, stratify=y)
grid = {
    "hidden_layer_sizes": [(64,), (128,), (64, 64)],
    "alpha": [1e-4, 1e-2],
    "activation": ["relu", "tanh"],
}
search = GridSearchCV(BackpropClassifier(max_iter=60, random_state=0), grid, cv=3, n_jobs=2)
search.fit(X_train, y_train)
print(f"best parameters: {search.best_params_}")
print(f"best cross-validated accuracy: {search.best_score_:.4f}")
print(f"test accuracy of the refitted best model: {search.score(X_test, y_test):.4f}")
