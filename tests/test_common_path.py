"""The flat common-path kernel against the full kernel: same options, same bits.

fastbp._common_path restates the full kernel's arithmetic for the options most fits
use, so that the first fit compiles fast. Every option it takes is checked here
against the full kernel (forced by making the router say "not common"), weight for
weight, on networks that reach each of its branches: every common hidden activation
(two hidden layers, so each derivative runs), each common loss with its output
activation (one output unit too, the outer-product branch), each solver, sample
weights, float32 and float64.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fastbp import BackpropClassifier, BackpropRegressor, _kernels, _stochastic
from fastbp._common_path import COMMON_ACTIVATIONS, COMMON_LOSSES, COMMON_SOLVERS, is_common
from fastbp._kernel_codes import ACTIVATION_CODES, LOSS_CODES
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
            patch.setattr(_stochastic, "is_common", lambda *args: False)
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
    hidden = np.array([0, relu, relu, 0])
    assert is_common(hidden, common_loss, adam, 0.0)
    for name, code in ACTIVATION_CODES.items():
        codes = np.array([0, relu, code, 0])
        assert is_common(codes, common_loss, adam, 0.0) == (code in COMMON_ACTIVATIONS), name
    for name, code in LOSS_CODES.items():
        assert is_common(hidden, code, adam, 0.0) == (code in COMMON_LOSSES), name
    assert not is_common(hidden, common_loss, adam, 1.0)  # gradient clipping


@pytest.mark.parametrize(
    "params",
    [{"loss": "huber"}, {"max_grad_norm": 1.0}, {"activation": "tanh"}, {"dropout": 0.2}],
)
def test_other_options_train_in_the_full_kernel(monkeypatch, params):
    X, problems = _problems()
    _, y = problems["squared_error"]
    _, calls = _fit(monkeypatch, "common", BackpropRegressor, X, y, **params)
    assert calls == {"full"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_prediction_through_the_common_path_kernel_gives_the_prediction_kernels_bits(dtype):
    rng = np.random.RandomState(0)
    X, problems = _problems()
    X = X.astype(dtype)
    # 2500 rows: three chunks of 1024, the last one short
    X_big = rng.normal(scale=3, size=(2500, X.shape[1])).astype(dtype)
    for loss, (estimator, y) in problems.items():
        for activation in ACTIVATIONS:
            model = estimator(hidden_layer_sizes=(6, 5), activation=activation, max_iter=3,
                              random_state=0)  # fmt: skip
            network = model.fit(X, y)._fitted_network()
            assert network.common_path, (loss, activation)
            for rows in (X[:1], X, X_big):
                rows = _kernels_input(rows)
                common = np.empty((rows.shape[0], network.n_outputs), dtype=dtype)
                forward = np.full_like(common, np.nan)
                returned = _kernels.predict_common(
                    rows, network.params, network.net, network.loss_code, common
                )
                expected = _kernels.predict_forward(rows, None, *network.predict_arguments, forward)
                assert tuple(returned) == tuple(expected) == (True, True)
                assert_array_equal(common, forward)
            # a non-finite input: nothing computed, (False, False) as predict_forward says
            bad = X[:3].copy()
            bad[1, 2] = np.nan
            out = np.empty((3, network.n_outputs), dtype=dtype)
            assert not _kernels.predict_common(
                _kernels_input(bad), network.params, network.net, network.loss_code, out
            )[0]
    # one variant of the common-path kernel per dtype serves training and prediction
    params_dtypes = [str(s[17].dtype) for s in _kernels.common_epochs.signatures]
    assert len(params_dtypes) == len(set(params_dtypes))


def _kernels_input(X):
    from fastbp._network import read_only

    return read_only(np.ascontiguousarray(X))


@pytest.mark.slow  # three processes compiling kernels into empty caches: ~20 s on two cores
def test_after_a_fit_the_first_prediction_compiles_nothing(tmp_path):
    """A process that fitted predicts through the kernel it trained with; one that
    only predicts (a loaded model) compiles the prediction kernel, quicker to call."""
    import os
    import pickle
    import subprocess
    import sys
    import textwrap

    X = np.random.RandomState(0).normal(size=(50, 4))
    y = np.arange(50) % 3
    with open(tmp_path / "model.pkl", "wb") as file:
        pickle.dump(BackpropClassifier(hidden_layer_sizes=(5,), max_iter=300).fit(X, y), file)
    script = textwrap.dedent(
        f"""
        import pickle, sys, warnings
        import numpy as np
        from fastbp import BackpropClassifier, _kernels
        warnings.simplefilter("ignore")
        X = np.random.RandomState(0).normal(size=(50, 4))
        if sys.argv[1] == "fit":
            clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=2).fit(X, np.arange(50) % 3)
        else:
            with open({str(tmp_path / "model.pkl")!r}, "rb") as file:
                clf = pickle.load(file)
        clf.predict_proba(X)
        print(len(_kernels.predict_forward.signatures), _kernels._prediction_route)
        """
    )
    cases = [
        ("fit", "fitted", "0 {'float64': 'common'}"),  # an empty cache
        ("load", "empty", "1 {'float64': 'forward'}"),  # an empty cache: the small kernel
        # a process that only predicts compiles the prediction kernel (quicker to
        # call), even where the fit above cached the common-path kernel
        ("load", "fitted", "1 {'float64': 'forward'}"),
    ]
    for mode, cache, expected in cases:
        result = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=600,
            env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / cache)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected, (mode, cache)
