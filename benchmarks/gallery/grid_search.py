"""A small search as a user writes it: GridSearchCV over a scaled MLP pipeline on breast
cancer, two loky workers (each pays its own start-up), 6 candidates x 3 folds."""

import warnings

from _library import mlp_classifier
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MLPClassifier = mlp_classifier()
X, y = load_breast_cancer(return_X_y=True)
warnings.simplefilter("ignore")
search = GridSearchCV(
    make_pipeline(StandardScaler(), MLPClassifier(max_iter=100, random_state=0)),
    {"mlpclassifier__alpha": [1e-4, 1e-2, 1], "mlpclassifier__hidden_layer_sizes": [(20,), (50,)]},
    cv=3,
    n_jobs=2,
)
search.fit(X, y)
best = search.best_params_
