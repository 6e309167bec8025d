"""Nothing a user does may crash the process.

Each reproduction of a former crash runs in a subprocess, so that a crash fails the
test (with the child's exit code) instead of killing pytest.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from reference import forward

from fastbp import BackpropClassifier, BackpropRegressor

ESTIMATORS = ["BackpropClassifier", "BackpropRegressor"]


def _run(code, timeout=300, env=None):
    """Run ``code`` in a fresh interpreter; fail on a crash, return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )
    assert result.returncode == 0, (
        f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


# ------------------------------------------------------------- assigned weights
def test_weights_of_another_output_count_predict_as_sklearn_would():
    out = _run(
        """
        import warnings
        import numpy as np
        from sklearn.neural_network import MLPRegressor
        from fastbp import BackpropRegressor
        warnings.simplefilter("ignore")
        X = np.random.RandomState(0).rand(2000, 10)
        for Estimator in (BackpropRegressor, MLPRegressor):
            m = Estimator(max_iter=3, random_state=0).fit(X, X[:, 0])   # 1 output
            o = Estimator(max_iter=3, random_state=0).fit(X, X)         # 10 outputs
            m.coefs_, m.intercepts_ = o.coefs_, o.intercepts_
            for _ in range(100):
                prediction = m.predict(X)
            np.testing.assert_allclose(prediction, o.predict(X), rtol=1e-12)
            print(type(m).__name__, prediction.shape)
        """
    )
    assert out.split("\n")[:2] == ["BackpropRegressor (2000, 10)", "MLPRegressor (2000, 10)"]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_weights_of_another_input_width_are_refused_by_layer(name):
    out = _run(
        f"""
        import warnings
        import numpy as np
        from fastbp import {name}
        warnings.simplefilter("ignore")
        X = np.random.RandomState(0).rand(200, 10)
        y = (X[:, 0] > 0.5).astype(int)
        m = {name}(max_iter=3).fit(X, y)
        o = {name}(max_iter=3).fit(X[:, :4], y)
        m.coefs_, m.intercepts_ = o.coefs_, o.intercepts_
        for _ in range(20):
            try:
                m.predict(X)
            except ValueError as exc:
                message = str(exc)
        print(message)
        """
    )
    assert "coefs_[0] has shape (4, 100)" in out
    assert "first dimension must be 10" in out
    assert "np.dot" not in out


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_each_inconsistency_names_the_array_that_does_not_fit(Estimator, small_classification):
    X, y = small_classification
    est = Estimator(hidden_layer_sizes=(5, 4), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    before = est.predict(X)
    coefs, intercepts = list(est.coefs_), list(est.intercepts_)
    cases = [
        ([coefs[0], coefs[1][:3], coefs[2]], intercepts, r"coefs_\[1\] has shape \(3, 4\)"),
        (coefs, [intercepts[0], intercepts[1][:2], intercepts[2]], r"intercepts_\[1\]"),
        (coefs[:2], intercepts, "coefs_ has 2 array"),
        ([coefs[0], coefs[1].ravel(), coefs[2]], intercepts, "must be a 2-D matrix"),
        ([coefs[0] * np.nan, coefs[1], coefs[2]], intercepts, "NaN or infinity"),
        ([coefs[0].astype(str).astype(object) + "x", coefs[1], coefs[2]], intercepts, "numbers"),
        ([], [], "at least one"),
    ]
    for new_coefs, new_intercepts, message in cases:
        est.coefs_, est.intercepts_ = new_coefs, new_intercepts
        with pytest.raises(ValueError, match=message):
            est.predict(X)
    est.coefs_, est.intercepts_ = coefs, intercepts  # the real arrays again
    np.testing.assert_array_equal(est.predict(X), before)


def test_classifier_refuses_an_output_layer_that_does_not_fit_its_classes(small_classification):
    X, y = small_classification  # 3 classes
    three = BackpropClassifier(max_iter=2, random_state=0)
    binary = BackpropClassifier(max_iter=2, random_state=0)
    with pytest.warns(Warning):
        three.fit(X, y)
        binary.fit(X, y % 2)
    three.coefs_, three.intercepts_ = binary.coefs_, binary.intercepts_
    with pytest.raises(ValueError, match="1 output.* 3 classes needs 3"):
        three.predict_proba(X)


def test_consistent_weights_from_another_classifier_predict_as_it_does(small_classification):
    X, y = small_classification
    a = BackpropClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0)
    b = BackpropClassifier(hidden_layer_sizes=(12, 5), max_iter=3, random_state=1)
    with pytest.warns(Warning):
        a.fit(X, y)
        b.fit(X, y)
    a.coefs_, a.intercepts_ = [c.copy() for c in b.coefs_], [i.copy() for i in b.intercepts_]
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # In-place edits of the published arrays are seen by the next prediction.
    a.intercepts_[-1][:] += 100 * np.arange(3)
    assert (a.predict(X) == a.classes_[2]).all()


# Hypothesis: random weight lists, consistent or not, on a fitted estimator.
@st.composite
def weight_lists(draw):
    n_layers = draw(st.integers(1, 3))
    widths = [6] + [draw(st.integers(1, 5)) for _ in range(n_layers)]
    coefs = [np.ones((widths[i], widths[i + 1])) for i in range(n_layers)]
    intercepts = [np.ones(widths[i + 1]) for i in range(n_layers)]
    # Break a shape now and then: a row or column more or less, a missing layer.
    if draw(st.booleans()):
        target = draw(st.sampled_from(["coef", "intercept", "drop"]))
        index = draw(st.integers(0, n_layers - 1))
        if target == "coef":
            axis = draw(st.integers(0, 1))
            shape = list(coefs[index].shape)
            shape[axis] = max(0, shape[axis] + draw(st.sampled_from([-1, 1])))
            coefs[index] = np.ones(shape)
        elif target == "intercept":
            intercepts[index] = np.ones(intercepts[index].shape[0] + 1)
        else:
            del intercepts[index]
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    coefs = [rng.normal(size=c.shape) for c in coefs]
    intercepts = [rng.normal(size=b.shape) for b in intercepts]
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return [c.astype(dtype) for c in coefs], [b.astype(dtype) for b in intercepts]


def _consistent(coefs, intercepts, n_features):
    if not coefs or len(coefs) != len(intercepts):
        return False
    width = n_features
    for coef, intercept in zip(coefs, intercepts):
        if coef.shape[0] != width or coef.shape[1] == 0 or intercept.shape != (coef.shape[1],):
            return False
        width = coef.shape[1]
    return True


@pytest.fixture(scope="module")
def fitted_regressor():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 6))
    reg = BackpropRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        reg.fit(X, X[:, 0])
    return reg, X


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weights=weight_lists())
def test_random_weight_lists_predict_correctly_or_raise_value_error(fitted_regressor, weights):
    reg, X = fitted_regressor
    coefs, intercepts = weights
    reg.coefs_, reg.intercepts_ = coefs, intercepts
    if _consistent(coefs, intercepts, X.shape[1]):
        expected = forward(
            [c.astype(np.float64) for c in coefs],
            [b.astype(np.float64) for b in intercepts],
            X,
            "relu",
            "squared_error",
        )
        prediction = reg.predict(X)
        rtol = 1e-4 if coefs[0].dtype == np.float32 else 1e-10
        assert_allclose(prediction.reshape(expected.shape), expected, rtol=rtol, atol=rtol)
    else:
        with pytest.raises(ValueError):
            reg.predict(X)


# --------------------------------------------------------------------- threads
@pytest.mark.slow
@pytest.mark.parametrize("name", ESTIMATORS)
def test_predicting_while_another_thread_refits_never_crashes(name):
    # The refits change the output count (3 classes, then 2; 1 output, then 4) and
    # the architecture; predictions must come from the old model or the new one.
    out = _run(
        f"""
        import threading, time, warnings
        import numpy as np
        from fastbp import {name}
        warnings.simplefilter("ignore")
        rng = np.random.RandomState(0)
        X = rng.rand(200, 10)
        if {name!r} == "BackpropClassifier":
            targets = [np.arange(200) % 3, np.arange(200) % 2]
            method, widths = "predict_proba", {{(200, 3), (200, 2)}}
        else:
            targets = [X[:, 0], X[:, :4]]
            method, widths = "predict", {{(200,), (200, 4)}}
        est = {name}(hidden_layer_sizes=(8,), max_iter=2).fit(X, targets[0])
        stop = threading.Event()
        problems, counts = [], [0, 0, 0]

        kept = []

        def predict(slot):
            # A tight loop (checks come after): the races need predictions in flight.
            while not stop.is_set():
                try:
                    result = getattr(est, method)(X)
                except Exception as exc:
                    problems.append(repr(exc))
                    continue
                counts[slot] += 1
                if counts[slot] % 50 == 0:
                    kept.append(result)

        threads = [threading.Thread(target=predict, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        # First the output count alone changes, then the architecture too.
        refits, start = 0, time.monotonic()
        while time.monotonic() < start + 6:
            if time.monotonic() > start + 3:
                est.set_params(hidden_layer_sizes=[(8,), (5, 3), (16,)][refits % 3])
            est.fit(X, targets[refits % 2])
            refits += 1
        stop.set()
        for thread in threads:
            thread.join()
        for result in kept:
            if result.shape not in widths or not np.isfinite(result).all():
                problems.append(("bad result", result.shape))
            elif method == "predict_proba" and not np.allclose(result.sum(axis=1), 1):
                problems.append("probabilities of two models mixed")
        print("refits", refits, "predictions", sum(counts), "problems", len(problems))
        print(problems[:5])
        """
    )
    summary = out.splitlines()[0].split()
    assert int(summary[1]) >= 10 and int(summary[3]) >= 10, out
    assert summary[5] == "0", out


# ----------------------------------------------------------------- numba cache
@pytest.mark.slow
def test_a_corrupted_numba_cache_heals_itself(tmp_path):
    script = """
        import warnings
        import numpy as np
        from fastbp import BackpropClassifier
        from fastbp._warmup import kernels_are_cached
        X = np.random.RandomState(0).rand(60, 4).astype(np.float32)
        y = np.arange(60) % 2
        before = kernels_are_cached("float32")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf = BackpropClassifier(hidden_layer_sizes=(3,), max_iter=2).fit(X, y)
            clf.predict(X)
        print("cached", before, kernels_are_cached("float32"), kernels_are_cached("float64"))
        print([str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)])
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = _run(script, env=env).strip().splitlines()
    # the demo's "first run compiles" notice reads the cache index: right both ways
    assert first == ["cached False True False", "[]"]
    files = [path for path in tmp_path.rglob("*") if path.suffix in (".nbi", ".nbc")]
    assert files
    for index, path in enumerate(files):  # truncated files and garbage
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if index % 2 else b"\x80\x04garbage")
    healed = _run(script, env=env)
    assert "damaged file in numba's cache" in healed
    assert str(tmp_path) in healed and "NUMBA_CACHE_DIR" in healed
    assert _run(script, env=env).strip().splitlines()[-1] == "[]"  # cached again


def test_every_kernel_module_is_in_the_cache_stamp():
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import fastbp
    from fastbp import _kernel_cache

    defining = set()
    for module in pkgutil.iter_modules(fastbp.__path__):
        namespace = vars(importlib.import_module(f"fastbp.{module.name}"))
        for value in namespace.values():
            if isinstance(value, CPUDispatcher) and value.__module__ == f"fastbp.{module.name}":
                defining.add(f"{module.name}.py")
    assert "_kernels.py" in defining and "_layer_math.py" in defining
    assert defining <= set(_kernel_cache.KERNEL_SOURCES)


@pytest.mark.slow
def test_an_edited_helper_in_another_file_is_recompiled_not_loaded_stale(
    tmp_path, kept_kernel_cache
):
    # numba checks a cached kernel against its own file only; fastbp stamps every
    # cache with all kernel sources. Edit the relu of a copy of the package (in
    # _layer_math.py, not the file of the epoch kernel): the fit must change.
    import shutil

    import fastbp

    package = tmp_path / "copy" / "fastbp"
    shutil.copytree(os.path.dirname(fastbp.__file__), package,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    script = f"""
        import sys
        sys.path.insert(0, {str(package.parent)!r})
        import numpy as np
        import fastbp
        from fastbp import BackpropRegressor
        assert fastbp.__file__.startswith({str(package)!r}), fastbp.__file__
        X = np.random.RandomState(0).normal(size=(40, 3))
        # huber: the full kernel (in _kernels.py), whose relu is in _layer_math.py
        reg = BackpropRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                                loss="huber")
        print(repr(float(reg.fit(X, X[:, 0]).coefs_[0].sum())))
    """
    # A cache kept between runs: both versions of the sources stay filed apart in it.
    env = {"NUMBA_CACHE_DIR": str(kept_kernel_cache("edited-helper")), "PYTHONWARNINGS": "ignore"}
    relu = _run(script, env=env)
    assert _run(script, env=env) == relu  # loaded from the cache, same weights
    math_file = package / "_layer_math.py"
    source = math_file.read_text()
    clip = "z[i, j] = zero if z[i, j] < 0 else z[i, j]"
    assert source.count(clip) == 1
    math_file.write_text(source.replace(clip, "z[i, j] = z[i, j]"))
    assert _run(script, env=env) != relu  # identity now: recompiled


def test_an_unwritable_numba_cache_dir_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = _run(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from fastbp import BackpropClassifier  # loads the kernels' modules
        print([str(w.message) for w in caught])
        """,
        env={"NUMBA_CACHE_DIR": str(blocker / "cache")},
    )
    assert f"NUMBA_CACHE_DIR ({blocker / 'cache'}) is not writable" in out


# --------------------------------------------------------------- bounds checks
EVERY_KERNEL_PATH = """
    import warnings
    import numpy as np
    import scipy.sparse as sp
    from fastbp import BackpropClassifier, BackpropRegressor
    from fastbp._common_path import COMMON_ACTIVATIONS
    from fastbp._kernel_codes import ACTIVATION_CODES
    from fastbp._losses import REGRESSION_LOSSES
    from fastbp._optimizers import OPTIMIZERS
    warnings.simplefilter("ignore")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 5))
    X[X < 0.3] = 0
    y = np.arange(90) % 3
    Y = np.abs(X[:, :2]) + 0.1
    every = list(ACTIVATION_CODES)
    for dtype in (np.float64, np.float32):
        for data in (X.astype(dtype), sp.csr_matrix(X.astype(dtype))):
            for solver in [*OPTIMIZERS, "lbfgs"]:
                stochastic = solver != "lbfgs"
                options = dict(solver=solver, max_iter=3, batch_size=16, random_state=0,
                               hidden_layer_sizes=(7,) * len(every))
                if stochastic:
                    options.update(dropout=0.2, max_grad_norm=1.0, early_stopping=True)
                for target in (y, y % 2, np.stack([y % 2, y // 2], axis=1)):
                    clf = BackpropClassifier(activation=every, **options).fit(data, target)
                    clf.predict_proba(data[:7])
                for loss in REGRESSION_LOSSES:
                    reg = BackpropRegressor(loss=loss, **options).fit(data, Y)
                    reg.predict(data[:1])
        # the common-path kernel (dense, no dropout), training (with clipping too)
        # and predicting, in 1024-row chunks and less
        common = [name for name, code in ACTIVATION_CODES.items() if code in COMMON_ACTIVATIONS]
        dense, many = X.astype(dtype), rng.normal(size=(2100, 5)).astype(dtype)
        for solver in OPTIMIZERS:
            options = dict(solver=solver, max_iter=3, batch_size=16, random_state=0,
                           hidden_layer_sizes=(7,) * len(common), activation=common,
                           max_grad_norm=1.0 if solver == "adam" else None)
            for target in (y, y % 2, np.stack([y % 2, y // 2], axis=1)):
                clf = BackpropClassifier(**options).fit(dense, target)
                clf.predict_proba(dense[:1]), clf.predict_proba(many)
            for loss in REGRESSION_LOSSES:
                reg = BackpropRegressor(loss=loss, **options).fit(dense, Y)
                reg.predict(dense[:1]), reg.predict(many)
    print("all kernel paths ran")
"""


@pytest.mark.slow
def test_kernels_stay_in_bounds_under_numba_boundscheck(kept_kernel_cache):
    # numba does not check indices in compiled code; NUMBA_BOUNDSCHECK=1 makes an
    # out-of-range index an IndexError. A cache directory of its own (the checked
    # kernels are different machine code, and numba's cache key does not say so),
    # kept between runs.
    env = {"NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(kept_kernel_cache("boundscheck"))}
    assert "all kernel paths ran" in _run(EVERY_KERNEL_PATH, timeout=900, env=env)
