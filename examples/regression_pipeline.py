"""Regression in a scikit-learn pipeline: scaling, a BackpropRegressor with early
stopping, and cross-validation, on the diabetes data that ships with scikit-learn.

Run: python examples/regression_pipeline.py
"""

from sklearn.datasets import load_diabetes
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropRegressor

X, y = load_diabetes(return_X_y=True)
model = make_pipeline(
    StandardScaler(),
    BackpropRegressor(
        hidden_layer_sizes=(32,),
        alpha=1.0,
        learning_rate_init=0.01,
        early_stopping=True,
        n_iter_no_change=20,
        max_iter=1000,
        random_state=0,
    ),  # fmt: skip
)
scores = cross_validate(model, X, y, cv=5, scoring=("r2", "neg_mean_absolute_error"))
print(f"R^2 per fold: {scores['test_r2'].round(3)}, mean {scores['test_r2'].mean():.3f}")
print(f"mean absolute error: {-scores['test_neg_mean_absolute_error'].mean():.1f}")
