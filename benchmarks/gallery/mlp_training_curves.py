"""scikit-learn's gallery example plot_mlp_training_curves, without the drawing: eight
solver settings (sgd schedules and momenta, adam) on iris, digits, circles and moons."""

import warnings

from _library import mlp_classifier
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler

MLPClassifier = mlp_classifier()
params = [
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
     "nesterovs_momentum": False, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "constant", "momentum": 0.9,
     "nesterovs_momentum": True, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
     "nesterovs_momentum": False, "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.9,
     "nesterovs_momentum": True, "learning_rate_init": 0.2},
    {"solver": "adam", "learning_rate_init": 0.01},
]  # fmt: skip
iris = datasets.load_iris()
X_digits, y_digits = datasets.load_digits(return_X_y=True)
data_sets = [
    (iris.data, iris.target),
    (X_digits, y_digits),
    datasets.make_circles(noise=0.2, factor=0.5, random_state=1),
    datasets.make_moons(noise=0.3, random_state=0),
]
for X, y in data_sets:
    X = MinMaxScaler().fit_transform(X)
    max_iter = 15 if X.shape[0] > 1000 else 400  # digits is large: fewer epochs
    for param in params:
        mlp = MLPClassifier(random_state=0, max_iter=max_iter, **param)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            mlp.fit(X, y)
        score, loss = mlp.score(X, y), mlp.loss_
