"""scikit-learn's gallery example plot_mlp_alpha, without the drawing: three toy
datasets, five alphas, an L-BFGS MLP in a scaled pipeline, scored and evaluated on the
plot's mesh grid."""

import numpy as np
from _library import mlp_classifier
from sklearn.datasets import make_circles, make_classification, make_moons
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MLPClassifier = mlp_classifier()
h = 0.02  # step size in the mesh
alphas = np.logspace(-1, 1, 5)
classifiers = [
    make_pipeline(
        StandardScaler(),
        MLPClassifier(
            solver="lbfgs",
            alpha=alpha,
            random_state=1,
            max_iter=2000,
            early_stopping=True,
            hidden_layer_sizes=[10, 10],
        ),
    )
    for alpha in alphas
]
X, y = make_classification(
    n_features=2, n_redundant=0, n_informative=2, random_state=0, n_clusters_per_class=1
)
rng = np.random.RandomState(2)
X += 2 * rng.uniform(size=X.shape)
datasets = [
    make_moons(noise=0.3, random_state=0),
    make_circles(noise=0.2, factor=0.5, random_state=1),
    (X, y),
]
for X, y in datasets:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
    x_min, x_max = X[:, 0].min() - 0.5, X[:, 0].max() + 0.5
    y_min, y_max = X[:, 1].min() - 0.5, X[:, 1].max() + 0.5
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    for clf in classifiers:
        clf.fit(X_train, y_train)
        score = clf.score(X_test, y_test)
        Z = clf.predict_proba(np.column_stack([xx.ravel(), yy.ravel()]))[:, 1]
