"""Predictions in float64 are scikit-learn's bits, given the same weights.

A model imported from scikit-learn (``from_sklearn``: the same weights, bit for bit)
predicts exactly what scikit-learn's ``_forward_pass_fast`` computes, for the hidden
activations whose scikit-learn arithmetic the compiled forward pass reproduces
(identity, relu, logistic: scipy's expit is ``1 / (1 + exp(-x))`` with the C
library's ``exp``) and every output (identity, logistic, softmax with numpy's pairwise
sum of the exponentials). That is what keeps figures drawn from predictions (decision
boundaries, contour plots of nearly constant probabilities) identical to
scikit-learn's. tanh is not in the list: numpy's own vectorised tanh rounds
differently from the C library's in about a quarter of the values.

Both run the matrix products through BLAS; the tests hold where numpy's and scipy's
OpenBLAS round alike (the same kernel family), which is what these machines have.
"""

import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SklearnClassifier
from sklearn.neural_network import MLPRegressor as SklearnRegressor

from fastbp import MLPClassifier, MLPRegressor

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2500, 7))  # more than one 1024-row chunk of the kernel
TARGETS = {
    "binary": (X[:, 0] > 0).astype(int),
    "multiclass": RNG.integers(0, 3, X.shape[0]),
    "multiclass-12": RNG.integers(0, 12, X.shape[0]),  # a pairwise sum of 8 and more
    "multilabel": (X[:, :3] > 0).astype(int),
    "regression": X @ RNG.standard_normal(7),
}


def _pair(activation, kind):
    y = TARGETS[kind]
    if kind == "regression":
        sklearn_model, ours = SklearnRegressor, MLPRegressor
    else:
        sklearn_model, ours = SklearnClassifier, MLPClassifier
    theirs = sklearn_model(
        hidden_layer_sizes=(15, 9), activation=activation, max_iter=20, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X[:400], y[:400])
    return theirs, ours.from_sklearn(theirs)


@pytest.mark.parametrize("kind", list(TARGETS))
@pytest.mark.parametrize("activation", ["identity", "relu", "logistic"])
def test_predictions_are_scikit_learns_bits(activation, kind):
    theirs, ours = _pair(activation, kind)
    method = "predict" if kind == "regression" else "predict_proba"
    for rows in (X, X[:1], X[:37]):
        expected = getattr(theirs, method)(rows)
        got = getattr(ours, method)(rows)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
