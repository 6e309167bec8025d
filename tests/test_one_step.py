"""One training step of the estimators against the numpy reference: the weights move
by the step the optimizer's formula takes on the reference objective's gradient
(central differences), and the reported loss is that objective before the step.

One full batch, no shuffling, weighted rows and an L2 penalty: every term of the
step (output error, each hidden activation's derivative, the penalty, the
optimizer's formula) shows in the result. The activations of the common path run
its kernel; tanh runs the full kernel.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference import HIDDEN, finite_difference_gradient, objective
from scipy.special import erf

from fastbp import BackpropClassifier, BackpropRegressor

ACTIVATIONS = {
    **HIDDEN,
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),  # PyTorch's exact GELU
}
TASKS = {  # estimator, loss, the targets as the network sees them
    "multiclass": (BackpropClassifier, "log_loss", lambda y: np.eye(3)[y]),
    "binary": (BackpropClassifier, "binary_log_loss", lambda y: (y == 1)[:, None] * 1.0),
    "regression": (BackpropRegressor, "squared_error", lambda y: y[:, None] - 1.0),
}
ALPHA = 0.3


def _one_step(task, activation, output_scale=1.0, **solver):
    """Fit one step from known weights (the output layer's scaled by ``output_scale``);
    returns (weights before, estimator, data)."""
    Estimator, loss, encode = TASKS[task]
    rng = np.random.RandomState(0)
    X = rng.normal(size=(24, 3))
    y = np.arange(24) % (2 if task == "binary" else 3)
    sample_weight = rng.uniform(0.5, 2.0, 24)
    estimator = Estimator(
        hidden_layer_sizes=(4,), activation=activation, alpha=ALPHA, batch_size=24,
        shuffle=False, max_iter=1, warm_start=True, random_state=0, **solver,
    )  # fmt: skip
    target = y - 1.0 if task == "regression" else y  # as the estimator takes it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X, target)  # builds the network
        n_outputs = estimator.coefs_[-1].shape[1]
        before = [rng.normal(size=(3, 4)), rng.normal(size=(4, n_outputs)) * output_scale]
        before += [rng.normal(size=4) * 0.3, rng.normal(size=n_outputs) * 0.3]
        estimator.coefs_ = [w.copy() for w in before[:2]]
        estimator.intercepts_ = [b.copy() for b in before[2:]]
        estimator.fit(X, target, sample_weight=sample_weight)
    return before, estimator, (X, encode(y), sample_weight, loss)


def _reference(before, activation, data):
    """The reference objective at the weights before the step, and its gradient."""
    X, Y, sample_weight, loss = data
    shapes = [p.shape for p in before]
    sizes = np.cumsum([p.size for p in before])[:-1]

    def at(flat):
        W1, W2, b1, b2 = (part.reshape(s) for part, s in zip(np.split(flat, sizes), shapes))
        f = ACTIVATIONS[activation]
        return (objective([W1, W2], [b1, b2], X, Y, sample_weight, f, loss, ALPHA),)

    flat = np.concatenate([p.ravel() for p in before])
    gradient = finite_difference_gradient(at, flat)
    return at(flat)[0], np.split(gradient, sizes)


def _after(estimator):
    return estimator.coefs_ + estimator.intercepts_


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_one_sgd_step_moves_by_the_reference_gradient(task, activation):
    before, estimator, data = _one_step(
        task, activation, solver="sgd", momentum=0.0, learning_rate_init=0.1
    )
    loss, gradient = _reference(before, activation, data)
    assert_allclose(estimator.loss_, loss, rtol=1e-10)
    for old, new, g in zip(before, _after(estimator), gradient):
        assert_allclose(new - old, -0.1 * g.reshape(old.shape), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_one_adam_step_follows_the_bias_corrected_formula(task, activation):
    """Adam's first step from fresh moments (a new fit starts them again, even with
    warm_start): lr * sqrt(1 - b2) / (1 - b1) * m / (sqrt(v) + eps), with
    m = (1 - b1) g and v = (1 - b2) g**2."""
    lr, beta_1, beta_2, eps = 0.01, 0.9, 0.999, 1e-8
    before, estimator, data = _one_step(task, activation, solver="adam", learning_rate_init=lr)
    loss, gradient = _reference(before, activation, data)
    assert_allclose(estimator.loss_, loss, rtol=1e-10)
    corrected = lr * np.sqrt(1 - beta_2) / (1 - beta_1)
    for old, new, g in zip(before, _after(estimator), gradient):
        g = g.reshape(old.shape)
        m, v = (1 - beta_1) * g, (1 - beta_2) * g**2
        assert_allclose(new - old, -corrected * m / (np.sqrt(v) + eps), rtol=1e-4, atol=1e-4 * lr)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_softmax_of_logits_past_exp_overflow_trains_and_reports_the_reference_loss(activation):
    """Logits in the thousands (exp overflows past 709): the softmax, computed from
    the logits less their row maximum, stays finite, and so do the loss and the step."""
    before, estimator, data = _one_step(
        "multiclass", activation, output_scale=3000.0, solver="sgd", momentum=0.0,
        learning_rate_init=1e-3,
    )  # fmt: skip
    X, Y, sample_weight, loss = data
    hidden = ACTIVATIONS[activation](X @ before[0] + before[2])
    assert np.abs(hidden @ before[1]).max() > 800  # past exp overflow
    expected = objective(before[:2], before[2:], X, Y, sample_weight,
                         ACTIVATIONS[activation], loss, ALPHA)  # fmt: skip
    assert_allclose(estimator.loss_, expected, rtol=1e-10)
    assert all(np.isfinite(p).all() for p in _after(estimator))
