"""``verbose`` prints exactly scikit-learn's lines, whatever its value; fastbp's own
detail (epoch times, validation loss, L-BFGS iterations) goes to the "fastbp" logger."""

import contextlib
import io
import logging
import re
import warnings

import pytest
import sklearn.neural_network
from sklearn.datasets import make_classification

import fastbp

CASES = {
    "adam": dict(solver="adam", tol=1e-2),
    "sgd": dict(solver="sgd", tol=1e-2, learning_rate_init=0.05),
    # the rate divided by five before stopping: scikit-learn's "Setting learning rate"
    "sgd_adaptive": dict(solver="sgd", learning_rate="adaptive", tol=1e-2, n_iter_no_change=2),
    "early_stopping": dict(solver="adam", early_stopping=True, tol=1e-2),
    "lbfgs": dict(solver="lbfgs"),
}


def _data():
    X, y = make_classification(n_samples=200, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)  # fmt: skip
    return X, y


def _printed(Estimator, X, y, **params):
    params = {"hidden_layer_sizes": (10,), "max_iter": 60, "random_state": 0, **params}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Estimator(**params).fit(X, y)
    return out.getvalue()


@pytest.mark.parametrize("verbose", [True, 2, 10])
@pytest.mark.parametrize("case", CASES)
def test_verbose_prints_exactly_scikit_learns_lines(case, verbose):
    X, y = _data()
    params = dict(CASES[case], verbose=verbose)
    ours = _printed(fastbp.MLPClassifier, X, y, **params)
    theirs = _printed(sklearn.neural_network.MLPClassifier, X, y, **params)
    assert ours == theirs
    if case != "lbfgs":  # scikit-learn prints nothing during L-BFGS (scipy >= 1.15)
        assert ours.startswith("Iteration 1, loss = ")
        assert re.search(r"(Stopping|Setting learning rate to [\d.]+)\.?\n", ours)


def test_verbose_false_prints_nothing():
    X, y = _data()
    assert _printed(fastbp.MLPClassifier, X, y, solver="adam", max_iter=3) == ""


@pytest.fixture
def fastbp_debug_log(caplog):
    caplog.set_level(logging.DEBUG, logger="fastbp")
    return caplog


def test_epoch_times_and_validation_loss_go_to_the_fastbp_logger(fastbp_debug_log, capsys):
    X, y = _data()
    clf = fastbp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=4, early_stopping=True,
                               random_state=0, verbose=10)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    records = [r for r in fastbp_debug_log.records if r.name == "fastbp"]
    messages = [r.getMessage() for r in records]
    epochs = [m for m in messages if re.fullmatch(r"epoch \d+: loss [\d.]+, [\d.]+ s", m)]
    validation = [m for m in messages if m.startswith("epoch ") and "validation loss" in m]
    assert len(epochs) == len(validation) == clf.n_iter_ == 4
    assert all(r.levelno == logging.DEBUG for r in records)
    assert f"loss {clf.loss_curve_[-1]:.8f}" in epochs[-1]
    assert f"validation loss {clf.validation_loss_curve_[-1]:.8f}" in validation[-1]
    # stdout keeps scikit-learn's lines only
    assert " s)" not in capsys.readouterr().out


def test_lbfgs_iterations_go_to_the_fastbp_logger(fastbp_debug_log, capsys):
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastbp.MLPClassifier(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=7,
                                   random_state=0, verbose=True).fit(X, y)  # fmt: skip
    messages = [r.getMessage() for r in fastbp_debug_log.records if r.name == "fastbp"]
    iterations = [m for m in messages if m.startswith("L-BFGS iteration ")]
    assert len(iterations) == clf.n_iter_ == 7
    assert capsys.readouterr().out == ""


def test_each_logged_epoch_time_is_one_epochs_time(fastbp_debug_log, monkeypatch):
    # Without verbose, short epochs run several to a compiled call; with a DEBUG
    # listener each call runs one epoch, so the time logged is that epoch's.
    from fastbp import _kernels

    epochs_per_call = []
    run_epochs = _kernels.run_epochs

    def counting(*args):
        n_run, finite = run_epochs(*args)
        epochs_per_call.append(n_run)
        return n_run, finite

    monkeypatch.setattr(_kernels, "run_epochs", counting)
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastbp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=30, random_state=0)
        clf.fit(X, y)
    epochs = [r.getMessage() for r in fastbp_debug_log.records if r.name == "fastbp"]
    assert [m.split(":")[0] for m in epochs] == [f"epoch {i}" for i in range(1, 31)]
    assert epochs_per_call == [1] * 30


def test_short_epochs_still_run_several_to_a_call_without_a_listener(monkeypatch):
    from fastbp import _kernels

    epochs_per_call = []
    run_epochs = _kernels.run_epochs

    def counting(*args):
        n_run, finite = run_epochs(*args)
        epochs_per_call.append(n_run)
        return n_run, finite

    monkeypatch.setattr(_kernels, "run_epochs", counting)
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastbp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=30, random_state=0).fit(X, y)
    assert sum(epochs_per_call) == 30
    assert max(epochs_per_call) > 1
