"""Swapping the import changes nothing but speed: L-BFGS iterates, printed output,
attribute types, warnings, and scikit-learn's own MLP test suite."""

import contextlib
import io
import os
import pathlib
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.datasets import (
    load_digits,
    make_circles,
    make_classification,
    make_moons,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropClassifier, BackpropRegressor

PAIRS = {
    "classifier": (MLPClassifier, BackpropClassifier),
    "regressor": (MLPRegressor, BackpropRegressor),
}


def _fit_both(kind, X, y, **params):
    theirs, ours = (Estimator(**params) for Estimator in PAIRS[kind])
    return theirs.fit(X, y), ours.fit(X, y)


def _assert_same_run(theirs, ours, rtol=1e-6):
    assert ours.n_iter_ == theirs.n_iter_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


# ------------------------------------------------------------------- L-BFGS
def _alpha_example_datasets():
    """The data of scikit-learn's gallery example 'Varying regularization in MLP'."""
    X, y = make_classification(
        n_features=2, n_redundant=0, n_informative=2, random_state=0, n_clusters_per_class=1
    )
    X += 2 * np.random.RandomState(2).uniform(size=X.shape)
    return {
        "moons": make_moons(noise=0.3, random_state=0),
        "circles": make_circles(noise=0.2, factor=0.5, random_state=1),
        "linearly_separable": (X, y),
    }


@pytest.mark.parametrize("dataset", ["moons", "circles", "linearly_separable"])
def test_lbfgs_follows_sklearn_in_the_alpha_gallery_example(dataset):
    X, y = _alpha_example_datasets()[dataset]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=42)
    for alpha in np.logspace(-1, 1, 5):
        pipelines = [
            make_pipeline(
                StandardScaler(),
                Estimator(
                    solver="lbfgs",
                    alpha=alpha,
                    random_state=1,
                    max_iter=2000,
                    early_stopping=True,
                    hidden_layer_sizes=[10, 10],
                ),  # fmt: skip
            ).fit(X_train, y_train)
            for Estimator in PAIRS["classifier"]
        ]
        theirs, ours = (pipeline[-1] for pipeline in pipelines)
        _assert_same_run(theirs, ours)
        assert pipelines[1].score(X_test, y_test) == pipelines[0].score(X_test, y_test)


def test_lbfgs_follows_sklearn_on_digits():
    X, y = load_digits(return_X_y=True)
    theirs, ours = _fit_both("classifier", X / 16, y, solver="lbfgs", random_state=0)
    _assert_same_run(theirs, ours)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)


def test_lbfgs_follows_sklearn_on_regression():
    X, y = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=0)
    y = (y - y.mean()) / y.std()
    theirs, ours = _fit_both(
        "regressor", X, y, solver="lbfgs", hidden_layer_sizes=(20,), random_state=0
    )
    _assert_same_run(theirs, ours)


def test_lbfgs_follows_sklearn_on_multilabel():
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, random_state=0)
    theirs, ours = _fit_both(
        "classifier", X / X.max(), Y, solver="lbfgs", activation="tanh", random_state=0
    )
    _assert_same_run(theirs, ours)


def test_lbfgs_above_the_budget_uses_the_chunked_kernel_and_agrees_closely(monkeypatch):
    from fastbp import _lbfgs

    monkeypatch.setattr(_lbfgs, "EXACT_BUDGET_BYTES", 0)
    X, y = load_digits(return_X_y=True)
    theirs, ours = _fit_both("classifier", X / 16, y, solver="lbfgs", max_iter=20, random_state=0)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------ what prints
def _printed(estimator, X, y):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        estimator.fit(X, y)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam"),
        dict(solver="sgd", learning_rate="adaptive", n_iter_no_change=2, tol=0.5),
        dict(solver="adam", early_stopping=True),
        dict(solver="lbfgs"),
    ],
    ids=["adam", "sgd-adaptive", "early-stopping", "lbfgs"],
)
def test_verbose_prints_exactly_sklearns_lines(kind, params):
    X, y = load_digits(return_X_y=True)
    X = X[:400] / 16
    y = y[:400] if kind == "classifier" else X[:, 20]
    common = dict(hidden_layer_sizes=(15,), max_iter=12, random_state=0, verbose=True)
    theirs, ours = (Estimator(**common, **params) for Estimator in PAIRS[kind])
    expected = _printed(theirs, X, y)
    assert _printed(ours, X, y) == expected
    if params["solver"] != "lbfgs":
        assert expected.count("Iteration") >= 2


def test_verbose_2_prints_scikit_learns_lines_only():
    # fastbp's extra detail (epoch times, validation loss) goes to the "fastbp" logger
    # (tests/test_verbose.py), never into scikit-learn's lines.
    X, y = load_digits(return_X_y=True)
    printed = _printed(
        BackpropClassifier(max_iter=3, verbose=2, early_stopping=True, random_state=0), X, y
    )
    assert re.match(r"Iteration 1, loss = \d+\.\d{8}\nValidation score: \d\.\d{6}\n", printed)


# ---------------------------------------------------------- fitted attributes
def _attribute_types(estimator):
    types = {}
    for name, value in vars(estimator).items():
        if name.endswith("_") and not name.startswith("_"):
            if isinstance(value, list):
                types[name] = ("list", tuple(sorted({type(item).__name__ for item in value})))
            else:
                types[name] = type(value).__name__
    return types


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fitted_attributes_have_sklearns_types(kind, solver, early_stopping, dtype):
    if solver == "lbfgs" and early_stopping:
        pytest.skip("lbfgs has no early stopping")
    X, y = load_digits(return_X_y=True)
    X = (X[:300] / 16).astype(dtype)
    y = y[:300] if kind == "classifier" else X[:, 20]
    theirs, ours = _fit_both(
        kind, X, y, solver=solver, early_stopping=early_stopping, max_iter=4, random_state=0
    )
    expected = _attribute_types(theirs)
    got = _attribute_types(ours)
    got.pop("validation_loss_curve_", None)  # fastbp's addition
    assert got == expected


# -------------------------------------------------------------------- warnings
def test_the_documented_warning_filter_silences_fastbp():
    guide = pathlib.Path(__file__).resolve().parent.parent / "docs/user_guide/differences.rst"
    line = 'warnings.filterwarnings("ignore", category=ConvergenceWarning)'
    assert line in guide.read_text()
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(line, {"warnings": warnings, "ConvergenceWarning": ConvergenceWarning})
        BackpropClassifier(max_iter=1).fit(X, y)
    assert not any(issubclass(w.category, ConvergenceWarning) for w in caught)


@pytest.mark.parametrize(
    "params",
    [{"max_iter": 1}, {"max_iter": 1, "solver": "lbfgs"}, {"max_iter": 1, "batch_size": 10**6}],
    ids=["sgd-adam", "lbfgs", "batch_size"],
)
def test_scikit_learns_module_filter_silences_fastbp_as_it_silences_scikit_learn(params):
    # scikit-learn's gallery filters by module ("sklearn"): the drop-in's warnings are
    # issued under scikit-learn's MLP module name, so the same filter silences both.
    X, y = load_digits(return_X_y=True)
    for estimator in (MLPClassifier(**params), BackpropClassifier(**params)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator.fit(X[:300], y[:300])
        assert caught, type(estimator)  # each warns without the filter
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn")
            warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
            estimator.fit(X[:300], y[:300])
        assert not caught, (type(estimator), [str(w.message) for w in caught])


# ---------------------------------------------- scikit-learn's own test suite
# Tests of scikit-learn's test_mlp.py that cannot apply to fastbp, and why.
SKLEARN_TESTS_DESELECTED = {
    "test_gradient": (
        "calls scikit-learn's private _loss_grad_lbfgs with its private _coef_indptr "
        "bookkeeping; fastbp's gradients are checked against central differences in "
        "tests/test_gradients.py"
    ),
    "test_preserve_feature_names[BackpropClassifier]": (
        "fits a classifier on a target with a single class, which fastbp refuses on "
        "purpose (see docs/user_guide/differences.rst)"
    ),
}

CONFTEST = """
import pytest


@pytest.fixture
def global_random_seed():
    return 42
"""


@pytest.mark.slow
def test_sklearns_own_mlp_tests_pass_on_fastbp(tmp_path):
    source = pathlib.Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
    if not source.exists():
        pytest.skip("the installed scikit-learn ships without its tests")
    text = source.read_text()
    original = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
    assert original in text
    text = text.replace(
        original,
        "from fastbp import BackpropClassifier as MLPClassifier\n"
        "from fastbp import BackpropRegressor as MLPRegressor",
    )
    (tmp_path / "test_mlp_on_fastbp.py").write_text(text)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    deselect = []
    for name in SKLEARN_TESTS_DESELECTED:
        deselect += ["--deselect", f"test_mlp_on_fastbp.py::{name}"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "test_mlp_on_fastbp.py",
            *deselect,
        ],  # fmt: skip
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 55, summary
    assert f"{len(SKLEARN_TESTS_DESELECTED)} deselected" in summary
