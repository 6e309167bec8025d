"""Regression in float32: float32 input trains and predicts in float32 end to end.

Run: python examples/regression_float32.py
"""

import numpy as np
from sklearn.datasets import make_friedman1
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropRegressor

X, y = make_friedman1(n_samples=5000, noise=0.5, random_state=0)
X = StandardScaler().fit_transform(X).astype(np.float32)
y = y.astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

for solver, learning_rate_init in (("adam", 0.001), ("sgd", 0.01)):
    reg = BackpropRegressor(
        hidden_layer_sizes=(64, 64),
        solver=solver,
        early_stopping=True,
        learning_rate_init=learning_rate_init,
        random_state=0,
    )
    reg.fit(X_train, y_train)
    prediction = reg.predict(X_test)
    print(
        f"{solver:>5}: R^2 = {reg.score(X_test, y_test):.4f}, epochs/iterations = "
        f"{reg.n_iter_}, weights {reg.coefs_[0].dtype}, predictions {prediction.dtype}"
    )
