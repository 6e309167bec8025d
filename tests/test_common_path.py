"""The flat common-path kernel against the full kernel: same options, same bits.

fastbp._common_path writes out the plumbing of a batch (gathering, the matrix
products) for the options most fits use, so that the first fit compiles fast; its
mathematics are calls to the same definitions the full kernel calls. Every option it
takes is checked here against the full kernel (forced by making the router say "not
common"), weight for weight, on networks that reach each of its branches: every
common hidden activation (two hidden layers, so each derivative runs), each common
loss with its output activation (one output unit too, the outer-product branch),
each solver, sample weights, float32 and float64.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fastbp import BackpropClassifier, BackpropRegressor, _kernels, _stochastic
from fastbp._common_path import (
    COMMON_ACTIVATIONS,
    COMMON_LOSSES,
    COMMON_SOLVERS,
    takes_common_path,
)
from fastbp._kernel_codes import ACTIVATION_CODES, LOSS_CODES
from fastbp._network import NetworkLayout, network
from fastbp._optimizers import OPTIMIZERS

ACTIVATIONS = sorted(name for name, code in ACTIVATION_CODES.items() if code in COMMON_ACTIVATIONS)
SOLVERS = sorted(name for name, cls in OPTIMIZERS.items() if cls.solver_code in COMMON_SOLVERS)


def _problems():
    """One target per common loss: (estimator, y builder, loss name)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 5))
    return X, {
        "log_loss": (BackpropClassifier, np.arange(90) % 3),
        "binary_log_loss": (BackpropClassifier, (X[:, 0] > 0).astype(int)),
        "squared_error": (BackpropRegressor, X[:, 0] - 2 * X[:, 1] ** 2),
    }


def test_the_problems_cover_every_common_loss():
    assert {LOSS_CODES[name] for name in _problems()[1]} == set(COMMON_LOSSES)
    assert ACTIVATIONS and SOLVERS


def _fit(monkeypatch, route, estimator, X, y, sample_weight=None, **params):
    """Fit, forcing the given route; return the model and the kernels called."""
    calls = []
    real_common, real_full = _kernels.common_epochs, _kernels.epoch_kernel

    def common(*args):
        calls.append("common")
        return real_common(*args)

    def full(*args):
        calls.append("full")
        return real_full(*args)

    with monkeypatch.context() as patch:
        patch.setattr(_kernels, "common_epochs", common)
        patch.setattr(_kernels, "epoch_kernel", full)
        if route == "full":
            patch.setattr(_stochastic, "needs_rare_paths", lambda *args: True)
        model = estimator(hidden_layer_sizes=(7, 4), max_iter=6, random_state=0, **params)
        model.fit(X, y, sample_weight=sample_weight)
    return model, set(calls)


@pytest.mark.parametrize("loss", ["log_loss", "binary_log_loss", "squared_error"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_common_path_gives_the_full_kernels_weights(monkeypatch, loss,
                                                    activation):  # fmt: skip
    X, problems = _problems()
    estimator, y = problems[loss]
    rng = np.random.RandomState(1)
    cases = [{"solver": solver} for solver in SOLVERS] + [
        {"solver": "sgd", "nesterovs_momentum": False},
        {"solver": "adamw", "weight_decay": 0.1},
    ]
    for params in cases:
        for dtype in (np.float64, np.float32):
            for weights in (None, rng.uniform(0, 2, size=X.shape[0])):
                fits = {}
                for route in ("common", "full"):
                    model, calls = _fit(
                        monkeypatch, route, estimator, X.astype(dtype), y, weights,
                        activation=activation, **params,
                    )  # fmt: skip
                    fits[route] = model
                    assert calls == {route}
                common, full = fits["common"], fits["full"]
                for a, b in zip(common.coefs_ + common.intercepts_, full.coefs_ + full.intercepts_):
                    assert a.dtype == dtype
                    assert_array_equal(a, b)
                assert common.loss_curve_ == full.loss_curve_
                assert common.n_iter_ == full.n_iter_


def test_the_router_sends_every_other_option_to_the_full_kernel():
    relu, common_loss = ACTIVATION_CODES["relu"], LOSS_CODES["squared_error"]
    adam = OPTIMIZERS["adam"].solver_code
    layout = NetworkLayout([3, 4, 4, 2])

    def net(code=relu, dropout=0.0):
        return network(layout, [0, relu, code, 0], [0.0, dropout, 0.0, 0.0])

    def settings(loss=common_loss, solver=adam, max_grad_norm=0.0):
        return _kernels.Settings(loss, solver, False, max_grad_norm, None, None)

    assert takes_common_path(net(), False, True, settings())
    for name, code in ACTIVATION_CODES.items():
        expected = code in COMMON_ACTIVATIONS
        assert takes_common_path(net(code), False, True, settings()) == expected, name
        assert takes_common_path(net(code), False, False) == expected, name  # prediction
    for name, code in LOSS_CODES.items():
        expected = code in COMMON_LOSSES
        assert takes_common_path(net(), False, True, settings(loss=code)) == expected, name
        assert takes_common_path(net(), False, False)  # prediction takes every loss
    assert not takes_common_path(net(), False, True, settings(max_grad_norm=1.0))  # clipping
    assert not takes_common_path(net(), True, True, settings())  # sparse input
    assert not takes_common_path(net(), True, False)
    assert not takes_common_path(net(dropout=0.2), False, True, settings())
    assert takes_common_path(net(dropout=0.2), False, False)  # no dropout in prediction


@pytest.mark.parametrize(
    "params",
    [{"loss": "huber"}, {"max_grad_norm": 1.0}, {"activation": "tanh"}, {"dropout": 0.2}],
)
def test_other_options_train_in_the_full_kernel(monkeypatch, params):
    X, problems = _problems()
    _, y = problems["squared_error"]
    _, calls = _fit(monkeypatch, "common", BackpropRegressor, X, y, **params)
    assert calls == {"full"}
