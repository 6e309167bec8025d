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

The softmax's exponentials are numpy's ``exp`` in scikit-learn. On CPUs with AVX-512
numpy computes float64 ``exp`` with its own vectorised code, which rounds an ulp away
from the C library's in some values (measured: a shared AVX-512 Xeon here, where 250 of
7,500 softmax outputs differed by one ulp, and up to 4 ulp with 12 classes, each
exponential's ulp entering the row's sum); there the softmax outputs are checked to
within 8 ulp, and every other output still bit for bit.
"""

import math
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


def _numpy_exp_is_the_c_librarys():
    """Whether numpy's float64 exp gives the C library's bits on this CPU."""
    values = np.linspace(-40.0, 5.0, 20001)
    return bool(np.array_equal(np.exp(values), [math.exp(value) for value in values]))


NUMPY_EXP_IS_THE_C_LIBRARYS = _numpy_exp_is_the_c_librarys()


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
        if kind.startswith("multiclass") and not NUMPY_EXP_IS_THE_C_LIBRARYS:
            np.testing.assert_array_max_ulp(got, expected, maxulp=8)
        else:
            np.testing.assert_array_equal(got, expected)
