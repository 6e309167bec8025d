"""The compiled loss and gradient against an independent implementation and
against central finite differences."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference import HIDDEN, OUTPUT, finite_difference_gradient
from reference import objective as reference_objective

from fastbp import _kernel_codes
from fastbp._losses import LOSSES as ALL_LOSSES
from fastbp._network import NetworkLayout
from fastbp._optimizers import FullBatchObjective

# Those the numpy reference implements (scikit-learn's); tests/test_beyond_sklearn.py
# checks the gradient of every other pair in fastbp's registries.
ACTIVATIONS = list(HIDDEN)
LOSSES = list(OUTPUT)


def _problem(loss, weighted, rng):
    n_samples, n_outputs = 23, 3
    X = rng.normal(size=(n_samples, 4))
    if loss == "squared_error":
        y = rng.normal(size=(n_samples, n_outputs))
    elif loss == "poisson":
        y = rng.poisson(2.0, size=(n_samples, n_outputs)).astype(float)
    elif loss == "log_loss":
        y = np.eye(n_outputs)[rng.randint(n_outputs, size=n_samples)]
    else:
        y = rng.randint(2, size=(n_samples, n_outputs)).astype(float)
    sample_weight = rng.uniform(0.5, 2.0, n_samples) if weighted else None
    return X, y, sample_weight


def _objective(layout, X, y, sample_weight, activation, loss, alpha, dtype):
    # chunk_rows=7 makes the 23 samples span four chunks, exercising accumulation.
    return FullBatchObjective(
        layout,
        X.astype(dtype),
        y.astype(dtype),
        None if sample_weight is None else sample_weight.astype(dtype),
        activation,
        loss,
        alpha,
        chunk_rows=7,
    )


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_float64_gradient_matches_central_differences(activation, loss, alpha, weighted):
    rng = np.random.RandomState(42)
    X, y, sample_weight = _problem(loss, weighted, rng)
    layout = NetworkLayout([4, 5, 4, 3])
    params = layout.initialize(rng, activation, np.float64)
    objective = _objective(layout, X, y, sample_weight, activation, loss, alpha, np.float64)

    loss_value, gradient = objective(params)
    gradient = gradient.copy()

    coefs, intercepts = layout.views(params)
    expected = reference_objective(coefs, intercepts, X, y, sample_weight, activation, loss, alpha)
    assert_allclose(loss_value, expected, rtol=1e-12)

    numeric = finite_difference_gradient(objective, params)
    assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_float32_gradient_matches_float64(activation, loss, alpha):
    """float32 runs the same arithmetic: its gradient is the float64 one, rounded."""
    rng = np.random.RandomState(7)
    X, y, sample_weight = _problem(loss, True, rng)
    layout = NetworkLayout([4, 6, 3])
    params = layout.initialize(rng, activation, np.float64)
    loss64, grad64 = _objective(layout, X, y, sample_weight, activation, loss, alpha, np.float64)(
        params
    )
    loss32, grad32 = _objective(layout, X, y, sample_weight, activation, loss, alpha, np.float32)(
        params.astype(np.float32)
    )
    assert grad32.dtype == np.float32
    assert_allclose(loss32, loss64, rtol=1e-5)
    assert_allclose(grad32, grad64, rtol=1e-3, atol=1e-5 * np.abs(grad64).max())


@pytest.mark.parametrize("loss", list(ALL_LOSSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_numpy_output_loss_equals_the_compiled_loss(loss, weighted):
    """The validation loss is computed in numpy from the outputs: it must be the
    same function as the training loss the kernels compute (without the penalty)."""
    from fastbp import _kernels
    from fastbp._losses import output_loss

    rng = np.random.RandomState(5)
    X, y, sample_weight = _problem(loss if loss in LOSSES else "squared_error", weighted, rng)
    layout = NetworkLayout([4, 5, 3])
    params = layout.initialize(rng, "tanh", np.float64)
    parameters = {"huber_delta": 0.8, "quantile": 0.3}
    objective = FullBatchObjective(layout, X, y, sample_weight, "tanh", loss, 0.0, chunk_rows=9,
                                   loss_parameters=parameters)  # fmt: skip
    outputs = np.empty((len(X), 3))
    _kernels.predict_forward(
        objective.data.X, objective.rare, params, *objective.net, _kernel_codes.LOSS_CODES[loss],
        outputs,
    )  # fmt: skip
    assert_allclose(
        output_loss(outputs, y, sample_weight, loss, parameters), objective(params)[0],
        rtol=1e-12,
    )  # fmt: skip
