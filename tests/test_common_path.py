"""The common path's kernel against the full kernel: same code, same bits.

fastbp/_common_epochs.py is the full kernel's own code with ``rare=None``, written
out by tools/generate_common_path.py (so that the first fit compiles fast). Checked
here: that the file in the tree is what the script writes from today's sources;
that the script keeps every rule and drops only the rare paths; and, weight for
weight, that both kernels train alike (the full kernel forced by making the router
say "not common") on networks that reach each branch: every common hidden
activation (two hidden layers, so each derivative runs), every loss with its output
activation (one output unit too, the outer-product branch), every solver, gradient
clipping, sample weights, float32 and float64.
"""

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fastbp import BackpropClassifier, BackpropRegressor, _kernels, _stochastic
from fastbp._common_path import COMMON_ACTIVATIONS, takes_common_path
from fastbp._kernel_codes import ACTIVATION_CODES
from fastbp._losses import REGRESSION_LOSSES
from fastbp._network import NetworkLayout, network
from fastbp._optimizers import OPTIMIZERS

ACTIVATIONS = sorted(name for name, code in ACTIVATION_CODES.items() if code in COMMON_ACTIVATIONS)
SOLVERS = sorted(OPTIMIZERS)
GENERATOR = Path(__file__).resolve().parent.parent / "tools" / "generate_common_path.py"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_common_path", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_common_path_in_the_tree_is_written_from_todays_full_kernel():
    generator = _generator()
    assert generator.is_current(), (
        "fastbp/_common_epochs.py is out of date: run python tools/generate_common_path.py"
    )


def test_the_generated_kernel_keeps_every_call_and_drops_only_the_rare_paths():
    generator = _generator()
    tree = ast.parse(generator.generate())
    kernel = next(node for node in tree.body if isinstance(node, ast.FunctionDef))
    called = {
        node.func.id
        for node in ast.walk(kernel)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    names = {node.id for node in ast.walk(kernel) if isinstance(node, ast.Name)}
    # the rules, each its one definition
    assert {
        "_output_activate", "_activate", "_output_delta_and_loss", "_multiply_by_derivative",
        "optimizer_step", "no_improvement", "_squared_coef_norm", "_clipped_weight_sum",
    } <= called  # fmt: skip
    # nothing of the rare paths, nothing left to inline
    assert "rare" not in names
    assert not called & {"_sparse_rows_dot", "_sparse_rows_transpose_dot", "_drop_units"}
    assert not called & set(generator.INLINED)
    assert [argument.arg for argument in kernel.args.args] == [
        name
        for name in _kernels._epoch_kernel.__code__.co_varnames[
            : _kernels._epoch_kernel.__code__.co_argcount
        ]
        if name != "rare"
    ]


def test_the_generator_refuses_what_it_cannot_write_out(monkeypatch):
    generator = _generator()
    source = "def _gather(a):\n    if a:\n        return 1\n    return 2\n"
    monkeypatch.setattr(
        generator, "_module_tree", lambda module, real=generator._module_tree: (
            ast.parse(source) if module == "_batch_passes" else real(module)
        ),
    )  # fmt: skip
    with pytest.raises((ValueError, LookupError)):
        generator.generate()


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


PROBLEMS = {
    "log_loss": (BackpropClassifier, lambda X: np.arange(90) % 3),
    "binary_log_loss": (BackpropClassifier, lambda X: (X[:, 0] > 0).astype(int)),
    **{
        loss: (BackpropRegressor, lambda X: np.abs(X[:, 0] - 2 * X[:, 1] ** 2) + 0.1)
        for loss in REGRESSION_LOSSES
    },
}


def _same_fits(monkeypatch, estimator, X, y, weights, **params):
    fits = {}
    for route in ("common", "full"):
        model, calls = _fit(monkeypatch, route, estimator, X, y, weights, **params)
        fits[route] = model
        assert calls == {route}
    common, full = fits["common"], fits["full"]
    for a, b in zip(common.coefs_ + common.intercepts_, full.coefs_ + full.intercepts_):
        assert a.dtype == X.dtype
        assert_array_equal(a, b)
    assert common.loss_curve_ == full.loss_curve_
    assert common.n_iter_ == full.n_iter_


@pytest.mark.parametrize("loss", ["log_loss", "binary_log_loss", "squared_error"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_common_path_gives_the_full_kernels_weights(monkeypatch, loss, activation):
    X = np.random.RandomState(0).normal(size=(90, 5))
    estimator, target = PROBLEMS[loss]
    rng = np.random.RandomState(1)
    cases = [{"solver": solver} for solver in SOLVERS] + [
        {"solver": "sgd", "nesterovs_momentum": False},
        {"solver": "adamw", "weight_decay": 0.1},
        {"solver": "adam", "max_grad_norm": 0.05},
    ]
    for params in cases:
        for dtype in (np.float64, np.float32):
            for weights in (None, rng.uniform(0, 2, size=X.shape[0])):
                _same_fits(monkeypatch, estimator, X.astype(dtype), target(X), weights,
                           activation=activation, **params)  # fmt: skip


@pytest.mark.parametrize("loss", sorted(set(REGRESSION_LOSSES) - {"squared_error"}))
def test_common_path_gives_the_full_kernels_weights_for_every_loss(monkeypatch, loss):
    X = np.random.RandomState(0).normal(size=(90, 5))
    estimator, target = PROBLEMS[loss]
    weights = np.random.RandomState(1).uniform(0, 2, size=X.shape[0])
    for solver in SOLVERS:
        for dtype in (np.float64, np.float32):
            _same_fits(monkeypatch, estimator, X.astype(dtype), target(X), weights,
                       loss=loss, solver=solver)  # fmt: skip


def test_the_router_sends_only_the_rare_paths_to_the_full_kernel():
    relu = ACTIVATION_CODES["relu"]
    layout = NetworkLayout([3, 4, 4, 2])

    def net(code=relu, dropout=0.0):
        return network(layout, [0, relu, code, 0], [0.0, dropout, 0.0, 0.0])

    assert takes_common_path(net(), False, True)
    for name, code in ACTIVATION_CODES.items():
        expected = code in COMMON_ACTIVATIONS
        assert takes_common_path(net(code), False, True) == expected, name
        assert takes_common_path(net(code), False, False) == expected, name  # prediction
    assert not takes_common_path(net(), True, True)  # sparse input
    assert not takes_common_path(net(), True, False)
    assert not takes_common_path(net(dropout=0.2), False, True)
    assert takes_common_path(net(dropout=0.2), False, False)  # no dropout in prediction


@pytest.mark.parametrize(
    ("params", "kernel"),
    [
        ({"loss": "huber"}, "common"),
        ({"max_grad_norm": 1.0}, "common"),
        ({"activation": "tanh"}, "full"),
        ({"dropout": 0.2}, "full"),
    ],
)
def test_which_kernel_trains(monkeypatch, params, kernel):
    X = np.random.RandomState(0).normal(size=(90, 5))
    _, target = PROBLEMS["squared_error"]
    _, calls = _fit(monkeypatch, "common", BackpropRegressor, X, target(X), **params)
    assert calls == {kernel}
