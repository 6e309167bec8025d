"""What a search's workers pay first: GridSearchCV with two loky workers and one small
fit each (2 candidates x 2 folds of 20 epochs on iris): each new worker imports the
library and loads its kernels before its first task."""

import warnings

from _library import mlp_classifier
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV

MLPClassifier = mlp_classifier()
X, y = load_iris(return_X_y=True)
warnings.simplefilter("ignore")
search = GridSearchCV(
    MLPClassifier(max_iter=20, random_state=0), {"alpha": [1e-4, 1e-2]}, cv=2, n_jobs=2
)
search.fit(X, y)
