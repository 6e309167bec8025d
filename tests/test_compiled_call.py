"""Small predictions call the prediction kernel's compiled variant directly.

A fitted model's own kernel arguments are typed once, at its first prediction of
plain rows (:func:`fastbp._compiled_call.compiled_variant`: an exact match of every
value against numba's argument types, or no variant); every later call checks X
(:func:`fastbp._base._plain_rows`) and hands the variant only rows of its type, of
the model's width. Each check below is one a removal would let through: a value of
another type handed to compiled code is read out of bounds.
"""

import warnings

import numba
import numpy as np
import pytest
from numba import types

from fastbp import BackpropClassifier, BackpropRegressor, _kernels
from fastbp._compiled_call import compiled_variant

# ---------------------------------------------------------------------------------
# compiled_variant: an exact match of every argument, or nothing.
# ---------------------------------------------------------------------------------
READ_ONLY_ROWS = types.Array(types.float64, 2, "C", readonly=True)
OUTPUT = types.Array(types.float64, 2, "C")


@numba.njit(cache=False)
def _probe(X, rare, count, out):
    return X.shape[0] + count + out.shape[1]


_probe.compile((READ_ONLY_ROWS, types.none, types.intp, OUTPUT))


def _rows(**flags):
    X = np.zeros((2, 3))
    X.setflags(**flags)
    return X


def _unaligned_rows():
    buffer = bytearray(2 * 3 * 8 + 1)
    X = np.frombuffer(buffer, dtype=np.float64, offset=1, count=6).reshape(2, 3)
    assert not X.flags.aligned and X.flags.c_contiguous and X.flags.writeable
    return X


class _Rows(np.ndarray):
    pass


def test_the_variant_of_exact_argument_types_is_found_and_runs():
    variant = compiled_variant(_probe, (_rows(write=False), None, 5, np.zeros((2, 4))))
    assert variant is not None
    assert variant(_rows(write=False), None, 5, np.zeros((2, 4))) == 2 + 5 + 4
    # A read-only argument type takes a writable array too (it is never written).
    assert compiled_variant(_probe, (np.zeros((2, 3)), None, 5, np.zeros((2, 4)))) is variant


@pytest.mark.parametrize(
    "case",
    [
        "dtype", "byte order", "dimensions", "layout F", "layout A", "subclass",
        "unaligned", "read-only output", "None", "bool count", "numpy count",
        "float count", "argument count",
    ],
)  # fmt: skip
def test_any_other_argument_type_finds_no_variant(case):
    X, rare, count, out = np.zeros((2, 3)), None, 5, np.zeros((2, 4))
    if case == "dtype":
        X = X.astype(np.float32)
    elif case == "byte order":
        X = X.astype(">f8")
    elif case == "dimensions":
        X = np.zeros((2, 3, 1))
    elif case == "layout F":
        X = np.asfortranarray(X)
    elif case == "layout A":
        X = np.zeros((2, 6))[:, ::2]
    elif case == "subclass":
        X = X.view(_Rows)
    elif case == "unaligned":
        X = _unaligned_rows()
    elif case == "read-only output":
        out.setflags(write=False)
    elif case == "None":
        rare = 0
    elif case == "bool count":
        count = True
    elif case == "numpy count":
        count = np.int64(5)
    elif case == "float count":
        count = 5.0
    arguments = (X, rare, count, out)
    if case == "argument count":
        arguments = arguments[:3]
    assert compiled_variant(_probe, arguments) is None


def test_a_variant_taking_any_other_type_is_never_called_directly():
    @numba.njit(cache=False)
    def takes_a_pair(pair, scale):
        return pair[0] * scale

    takes_a_pair.compile((types.UniTuple(types.intp, 2), types.float64))
    assert compiled_variant(takes_a_pair, ((1, 2), 2.0)) is None


def test_a_dispatcher_without_the_variant_gives_none():
    @numba.njit(cache=False)
    def never_called(X):
        return X

    assert compiled_variant(never_called, (np.zeros((1, 1)),)) is None


# ---------------------------------------------------------------------------------
# The estimators: typed once per model, X checked at every call.
# ---------------------------------------------------------------------------------
@pytest.fixture
def fitted(small_classification):
    X, y = small_classification
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    clf.predict_proba(X[:1])  # the first plain prediction finds the variant
    return clf, X


class _CountingDispatcher:
    """The prediction kernel's dispatcher, counting the calls that go through it."""

    def __init__(self, dispatcher):
        self.dispatcher, self.calls = dispatcher, 0

    def __getattr__(self, name):
        return getattr(self.dispatcher, name)

    def __call__(self, *args):
        self.calls += 1
        return self.dispatcher(*args)


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_a_model_is_typed_by_the_dispatcher_once(Estimator, small_classification, monkeypatch):
    X, y = small_classification
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Estimator(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    counting = _CountingDispatcher(_kernels.predict_forward)
    monkeypatch.setattr(_kernels, "predict_forward", counting)
    expected = model.predict(X[:1])
    assert counting.calls == 1 and model._model.compiled[0] is not None
    for _ in range(3):
        np.testing.assert_array_equal(model.predict(X[:1]), expected)
    assert counting.calls == 1
    # Assigned weights make a new snapshot: typed again, once.
    model.coefs_ = [coef.copy() for coef in model.coefs_]
    np.testing.assert_array_equal(model.predict(X[:1]), expected)
    np.testing.assert_array_equal(model.predict(X[:1]), expected)
    assert counting.calls == 2


def _variant_x_type(variant):
    for signature, result in _kernels.predict_forward.overloads.items():
        if result.entry_point is variant:
            return signature[0]
    raise AssertionError("the model's variant is not one of the kernel's")


def _hostile_rows(X, n_features):
    row = np.ascontiguousarray(X[:2])
    unaligned = _unaligned_rows_like(row)
    return {
        "float32": row.astype(np.float32),
        "big-endian": row.astype(">f8"),
        "Fortran order": np.asfortranarray(row),
        "strided": np.repeat(row, 2, axis=1)[:, ::2],
        "unaligned": unaligned,
        "subclass": row.view(_Rows),
        "one dimension": row[0],
        "three dimensions": row[:, :, None],
        "no rows": row[:0],
        "too wide": np.hstack([row, row[:, :1]]),
        "too narrow": np.ascontiguousarray(row[:, :-1]),
        "NaN": np.where(np.arange(n_features) == 1, np.nan, row),
        "infinity": np.where(np.arange(n_features) == 1, np.inf, row),
        "overflowing": row * 1e300,
        "list": row.tolist(),
    }


def _unaligned_rows_like(rows):
    buffer = bytearray(rows.nbytes + 1)
    unaligned = np.frombuffer(buffer, dtype=rows.dtype, offset=1, count=rows.size)
    unaligned = unaligned.reshape(rows.shape)
    unaligned[...] = rows
    assert not unaligned.flags.aligned and unaligned.flags.c_contiguous
    return unaligned


def _outcome(function, X):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning is an outcome too
            return np.asarray(function(X))
    except Exception as exc:  # the error, as the validated path raises it
        return type(exc), str(exc)


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_the_variant_gets_only_rows_of_its_type_and_the_models_width(fitted, method):
    clf, X = fitted
    model = clf._model
    variant = model.compiled[0]
    x_type = _variant_x_type(variant)
    handed = []

    def watching(rows, *rest):
        handed.append(rows)
        return variant(rows, *rest)

    for name, rows in _hostile_rows(X, model.n_features).items():
        model.compiled[0] = None  # the checked path (the variant unused)
        expected = _outcome(getattr(clf, method), rows)
        model.compiled[0] = watching
        got = _outcome(getattr(clf, method), rows)
        if isinstance(expected, tuple):
            assert got == expected, name
        else:
            np.testing.assert_array_equal(got, expected, err_msg=name)
        for seen in handed:
            assert type(seen) is np.ndarray, name  # a subclass could lie about its shape
            assert numba.typeof(seen).copy(readonly=True) == x_type, name
            assert seen.flags.aligned or not x_type.aligned, name  # typeof does not look
            assert seen.shape[1] == model.n_features and seen.shape[0] > 0, name
        handed.clear()
    # scikit-learn's errors for arrays of other dimensions
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array instead"):
        getattr(clf, method)(np.ascontiguousarray(X[0]))
    with pytest.raises(ValueError, match="Found array with dim 3"):
        getattr(clf, method)(np.ascontiguousarray(X[:2, :, None]))
    # the watch itself works: plain rows are handed over
    getattr(clf, method)(np.ascontiguousarray(X[:3]))
    assert len(handed) == 1


def test_a_model_fitted_with_feature_names_warns_on_an_array_as_scikit_learn_does(
    small_classification,
):
    pandas = pytest.importorskip("pandas")
    X, y = small_classification
    frame = pandas.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
        clf.fit(frame, y)
    expected = clf.predict_proba(frame.iloc[:1])
    clf._model.compiled[0] = _variant_of(clf, X)  # as a plain-rows model would have
    for _ in range(2):
        with pytest.warns(UserWarning, match="does not have valid feature names"):
            np.testing.assert_array_equal(clf.predict_proba(np.ascontiguousarray(X[:1])), expected)


def _variant_of(clf, X):
    """The variant a model fitted without feature names finds for this dtype."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=1).fit(
            X, np.arange(len(X)) % 3
        )
    plain.predict(np.ascontiguousarray(X[:1]))
    assert plain._model.compiled[0] is not None
    return plain._model.compiled[0]


def test_models_of_the_common_path_only_are_typed_once(small_classification):
    X, y = small_classification
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rare = BackpropClassifier(hidden_layer_sizes=(5,), activation="tanh", max_iter=2)
        rare.fit(X, y)
    rare.predict(X[:1])
    rare.predict(X[:1])
    # its prediction needs the rare paths' scratch, made per call: the dispatcher's
    assert rare._model.compiled[0] is None
