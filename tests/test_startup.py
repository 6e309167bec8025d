"""What a process pays before its first fit and prediction, and the prediction fast
path's checks.

Start-up: ``import fastbp`` and a first fit import only what that fit uses (the
metrics, model selection, L-BFGS, conversion, Dask, plotting, skops and ONNX modules
load when used), load only the kernel the fit runs, and load it from the disk cache
without numba's first-dispatch scan of every installed package's extensions. Each
case runs in a fresh interpreter: a module imported by an earlier test would hide it.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastbp import BackpropClassifier, BackpropRegressor


def _run(code, env=None):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


#: Modules a first fit and prediction on dense data do not use.
UNUSED_BY_A_FIRST_FIT = (
    "dask",
    "matplotlib",
    "skops",
    "onnx",
    "skl2onnx",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.neural_network",
    "fastbp._lbfgs",
    "fastbp._conversion",
    "fastbp.chunks",
    "fastbp.plotting",
)


def test_a_first_fit_and_prediction_import_nothing_they_do_not_use():
    lines = _run(
        f"""
        import sys
        # what scikit-learn's estimator machinery imports by itself is not ours
        import sklearn.base, sklearn.preprocessing, sklearn.callback
        already = set(sys.modules)
        import numpy as np
        from fastbp import MLPClassifier, MLPRegressor
        X = np.random.RandomState(0).normal(size=(40, 3))
        y = (X[:, 0] > 0).astype(int)
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y).predict(X)
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, X[:, 1]).predict(X)
        print(sorted(name for name in {UNUSED_BY_A_FIRST_FIT!r}
                     if name in sys.modules and name not in already))
        """
    )
    assert lines[-1] == "[]"


def test_what_is_imported_late_still_works_when_used(small_classification):
    # early stopping (model selection, metrics), scoring, L-BFGS and conversion
    # import their modules at first use
    X, y = small_classification
    clf = BackpropClassifier(
        hidden_layer_sizes=(5,), early_stopping=True, scoring="accuracy", max_iter=5
    ).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_
    stopped = BackpropRegressor(hidden_layer_sizes=(3,), early_stopping=True, max_iter=5)
    stopped.fit(X, X[:, 0])
    assert len(stopped.validation_scores_) == stopped.n_iter_  # R^2 per epoch
    lbfgs = BackpropClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=5).fit(X, y)
    np.testing.assert_array_equal(lbfgs.to_sklearn().predict(X), lbfgs.predict(X))


def test_a_warm_first_fit_loads_only_its_kernel_and_skips_numbas_extension_scan():
    fit = """
import numpy as np
from fastbp import MLPClassifier, _kernels, _common_epochs
X = np.random.RandomState(0).normal(size=(40, 3))
y = (X[:, 0] > 0).astype(int)
clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
"""
    _run(fit + "clf.predict(X)")  # fills the cache where it was cold (compiling)
    lines = _run(
        fit
        + """
import numba.core.entrypoints as entrypoints
print(len(_common_epochs.common_epochs.overloads), len(_kernels.epoch_kernel.overloads),
      len(_kernels.predict_forward.overloads), len(_kernels._full_gradient.overloads))
clf.predict(X)
print("extension scan:", entrypoints._already_initialized)
print("cache hits:", sum(_common_epochs.common_epochs.stats.cache_hits.values()))
"""
    )
    # the common-path kernel only, loaded from the cache, with no scan (fit and predict)
    assert lines[-3:] == ["1 0 0 0", "extension scan: False", "cache hits: 1"]


def test_a_kernel_missing_from_the_cache_compiles_through_numbas_own_path(tmp_path):
    # A tiny kernel given fastbp's cache: the first process finds no variant, compiles
    # it through numba's dispatch (extension scan included) and saves it; the next
    # loads it without the scan. Output from either must be the same.
    (tmp_path / "tiny_kernel.py").write_text(
        textwrap.dedent(
            """
            from numba import njit
            from fastbp._kernel_cache import _JIT, prepare_caches

            @njit(**_JIT)
            def double(x):
                return 2 * x

            prepare_caches(globals())
            """
        )
    )
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numba.core.entrypoints as entrypoints
        from tiny_kernel import double
        print(double(21), entrypoints._already_initialized,
              sum(double.stats.cache_hits.values()), sum(double.stats.cache_misses.values()))
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    assert _run(code, env)[-1] == "42 True 0 1"  # compiled by numba, scan and all
    assert _run(code, env)[-1] == "42 False 1 0"  # loaded, no scan


def test_importing_the_estimators_runs_no_older_collection_and_restores_the_collector():
    # numba's import and fastbp's kernel modules make some 100,000 objects that live
    # on: the collector's passes (over the whole process, after scikit-learn's import
    # left its objects pending) free nothing then.
    lines = _run(
        """
import gc
import sklearn.neural_network  # what a user's process holds already
passes = []
gc.callbacks.append(
    lambda phase, info: phase == "start" and passes.append(info["generation"])
)
import fastbp.estimators
print(*[passes.count(generation) for generation in (0, 1, 2)], gc.isenabled())
"""
    )
    # Without the pause: 66 passes over the youngest objects, 6 over the middle
    # generation and one over the whole process (measured). With it, one or two
    # young passes (measured: 1 here, 2 in a fresh virtual environment): before the
    # pause starts, and once the collector runs again over what the import left.
    young, middle, full, enabled = lines[-1].split()
    assert (int(young) < 10, middle, full, enabled) == (True, "0", "0", "True")


def test_the_collector_stays_off_for_a_caller_that_turned_it_off():
    lines = _run("import gc; gc.disable(); import fastbp.estimators; print(gc.isenabled())")
    assert lines[-1] == "False"


def test_the_collector_runs_again_after_a_pause_that_raised():
    import gc

    from fastbp._collection import collection_paused

    assert gc.isenabled()
    with pytest.raises(KeyError), collection_paused():
        assert not gc.isenabled()
        raise KeyError("in the block")
    assert gc.isenabled()


# ---------------------------------------------------------------------------------
# The prediction fast path checks that the published weights are still in place at
# every call (by identity): whatever replaced them is checked before a kernel runs.
# ---------------------------------------------------------------------------------
@pytest.fixture
def fitted(small_classification):
    X, y = small_classification
    return BackpropClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y), X


def test_a_coefficient_replaced_inside_the_list_with_a_wrong_shape_is_refused(fitted):
    clf, X = fitted
    clf.coefs_[1] = np.zeros((6, 3))  # the list edited in place, not reassigned
    with pytest.raises(ValueError, match=r"coefs_\[1\] has shape \(6, 3\), but layer 1"):
        clf.predict_proba(X[:1])


def test_an_intercept_appended_to_the_list_is_refused(fitted):
    clf, X = fitted
    clf.intercepts_.append(np.zeros(3))
    with pytest.raises(ValueError, match="one entry per layer"):
        clf.predict(X[:1])


def test_a_coefficient_replaced_inside_the_list_is_predicted_with(fitted):
    clf, X = fitted
    before = clf.predict_proba(X[:3])
    clf.coefs_[1] = np.zeros_like(clf.coefs_[1])  # same shape: honoured, not ignored
    after = clf.predict_proba(X[:3])
    assert not np.allclose(before, after)
    # zero output weights: the softmax of the output intercepts alone, for every row
    expected = np.exp(clf.intercepts_[1]) / np.exp(clf.intercepts_[1]).sum()
    np.testing.assert_allclose(after, np.tile(expected, (3, 1)), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fast_path_gives_the_validated_paths_bits(fitted, dtype):
    clf, X = fitted
    clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    clf.fit(X.astype(dtype), fitted[0].classes_[np.arange(len(X)) % 3])
    row = np.ascontiguousarray(X[:1], dtype=dtype)  # the fast path
    through_validation = np.asfortranarray(X[:2], dtype=dtype)[:1]  # not C-contiguous
    assert not through_validation.flags.c_contiguous
    np.testing.assert_array_equal(clf.predict_proba(row), clf.predict_proba(through_validation))
