"""ONNX export: skl2onnx converts fastbp's estimators directly, and ONNX Runtime
predicts what fastbp predicts."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import BackpropClassifier, BackpropRegressor
from fastbp._kernel_codes import ACTIVATION_CODES

# Imported after fastbp on purpose: fastbp registers its converters as skl2onnx loads.
skl2onnx = pytest.importorskip("skl2onnx")
onnxruntime = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent

# Every activation fastbp has, and per-layer mixes (one name per hidden layer).
ACTIVATIONS = sorted(ACTIVATION_CODES) + [
    ["elu", "leaky_relu"],
    ["softplus", "tanh", "identity"],
    ["relu", "logistic"],
]
TASKS = ["binary", "multiclass", "multilabel", "squared_error", "poisson", "multi_output"]
# Relative agreement with predict / predict_proba: a few float32 rounding steps
# through the layers, and float64's.
RTOL = {np.float32: 1e-5, np.float64: 1e-10}


def _features(dtype, scaled=True, n_samples=40):
    """Features around 0 with unit spread, or (scaled=False) shifted and stretched,
    for a StandardScaler to undo."""
    X = np.random.RandomState(0).normal(size=(n_samples, 4))
    if not scaled:
        X = X * [1.0, 2.0, 0.5, 3.0] + [5.0, -3.0, 0.0, 10.0]
    return X.astype(dtype)


def _targets(task, X):
    """Targets of each task, from standardised features (labels of several kinds)."""
    rng = np.random.RandomState(1)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    if task == "binary":
        return np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    if task == "multiclass":
        return np.array([-2, 5, 11])[np.argmax(X[:, :3], axis=1)]
    if task == "multilabel":
        return (X[:, :3] + 0.3 * rng.normal(size=(len(X), 3)) > 0).astype(int)
    if task == "poisson":
        return rng.poisson(np.exp(0.5 * X[:, 0]))
    if task == "multi_output":
        return np.column_stack([X[:, 0] - X[:, 1], X[:, 2] * X[:, 3]])
    return np.sin(X[:, 0]) + X[:, 1]


def _estimator(task, activation, **params):
    n_hidden = len(activation) if isinstance(activation, list) else 2
    params = {
        "hidden_layer_sizes": (5, 4, 3)[:n_hidden],
        "activation": activation,
        "max_iter": 10,
        "learning_rate_init": 0.01,
        "random_state": 0,
        **params,
    }
    if task in ("binary", "multiclass", "multilabel"):
        return BackpropClassifier(**params)
    loss = "poisson" if task == "poisson" else "squared_error"
    return BackpropRegressor(loss=loss, **params)


def _onnx_outputs(model, X, options=None, **convert_params):
    """Convert with skl2onnx.to_onnx and run in ONNX Runtime: (outputs, onnx model)."""
    onnx_model = skl2onnx.to_onnx(model, X[:1], options=options, **convert_params)
    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), session_options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X}), onnx_model


def _assert_onnx_predicts_like(model, X, rtol):
    """Labels equal predict's; probabilities and regression values agree to rtol."""
    is_classifier = hasattr(model, "predict_proba")
    options = {BackpropClassifier: {"zipmap": False}} if is_classifier else None
    outputs, _ = _onnx_outputs(model, X, options)
    if is_classifier:
        labels, probabilities = outputs
        assert_array_equal(labels, model.predict(X))
        assert probabilities.dtype == X.dtype
        assert_allclose(probabilities, model.predict_proba(X), rtol=rtol, atol=0)
    else:
        (values,) = outputs
        assert values.dtype == X.dtype
        expected = model.predict(X).reshape(len(X), -1)
        # Relative to the output's scale: an output that cancels to near 0 keeps the
        # absolute rounding error of the terms that cancelled.
        assert_allclose(values, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_onnx_runtime_predicts_like_fastbp(activation, task, dtype):
    X = _features(dtype)
    model = _estimator(task, activation).fit(X, _targets(task, X))
    _assert_onnx_predicts_like(model, X, RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("task", TASKS)
def test_onnx_runtime_predicts_like_fastbp_in_a_pipeline(task, dtype):
    X = _features(dtype, scaled=False)
    pipeline = make_pipeline(StandardScaler(), _estimator(task, ["softplus", "leaky_relu"]))
    pipeline.fit(X, _targets(task, X))
    _assert_onnx_predicts_like(pipeline, X, RTOL[dtype])


def test_every_fastbp_activation_has_an_onnx_form():
    from fastbp._onnx_converters import HIDDEN_ACTIVATIONS

    assert set(HIDDEN_ACTIVATIONS) == set(ACTIVATION_CODES)


@pytest.mark.parametrize(
    ("activation", "op_type"),
    [
        ("identity", None),
        ("logistic", "Sigmoid"),
        ("tanh", "Tanh"),
        ("relu", "Relu"),
        ("leaky_relu", "LeakyRelu"),
        ("elu", "Elu"),
        ("softplus", "Softplus"),
    ],
)
def test_float32_graph_is_matmul_add_and_one_activation_operator_per_layer(activation, op_type):
    X = _features(np.float32)
    model = _estimator("squared_error", activation).fit(X, _targets("squared_error", X))
    _, onnx_model = _onnx_outputs(model, X)
    hidden = ["MatMul", "Add"] + ([op_type] if op_type else [])
    assert [node.op_type for node in onnx_model.graph.node] == hidden * 2 + [
        "MatMul",
        "Add",
        "Identity",
    ]
    attributes = {
        attribute.name: attribute.f
        for node in onnx_model.graph.node
        for attribute in node.attribute
        if node.op_type in ("LeakyRelu", "Elu")
    }
    expected = {"LeakyRelu": {"alpha": np.float32(0.01)}, "Elu": {"alpha": 1.0}}
    assert attributes == expected.get(op_type, {})


def test_dropout_is_absent_from_the_exported_network():
    X = _features(np.float64)
    y = _targets("multiclass", X)
    model = _estimator("multiclass", "relu", dropout=0.5).fit(X, y)
    _assert_onnx_predicts_like(model, X, RTOL[np.float64])


def test_saturated_logistic_outputs_are_clipped_as_predict_proba_clips_them():
    X = _features(np.float64)
    y = _targets("binary", X)
    model = _estimator("binary", "relu").fit(X, y)
    model.intercepts_[-1][:] = 1000.0  # every row's p rounds to exactly 1
    (labels, probabilities), _ = _onnx_outputs(model, X, {"zipmap": False})
    expected = model.predict_proba(X)
    assert np.all(expected[:, 0] > 0)
    assert_array_equal(probabilities, expected)
    assert_array_equal(labels, model.predict(X))


@pytest.mark.parametrize(
    "classes",
    [
        np.array([3, 2**40, -7]),  # int64 beyond int32
        np.array([0.0, 1.0, 2.0]),  # integral floats become int64, as in skl2onnx
        np.array([False, True]),
        np.array(["cat", "dog", "émeu"]),
    ],
    ids=["int64", "float", "bool", "str"],
)
def test_class_labels_of_every_kind(classes):
    X = _features(np.float32)
    y = classes[np.argmax(X[:, : len(classes)], axis=1)]
    model = _estimator("multiclass", "tanh").fit(X, y)
    (labels, _), _ = _onnx_outputs(model, X, {"zipmap": False})
    assert_array_equal(labels, model.predict(X))


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_zipmap_gives_one_dict_of_probabilities_per_row(task):
    X = _features(np.float32)
    model = _estimator(task, "elu").fit(X, _targets(task, X))
    (labels, probabilities), _ = _onnx_outputs(model, X)  # zipmap is skl2onnx's default
    assert_array_equal(labels, model.predict(X))
    assert [list(row) for row in probabilities] == [list(model.classes_)] * len(X)
    as_array = np.array([list(row.values()) for row in probabilities])
    assert_allclose(as_array, model.predict_proba(X), rtol=RTOL[np.float32])


def test_zipmap_columns_gives_one_output_per_class():
    X = _features(np.float32)
    model = _estimator("multiclass", "softplus").fit(X, _targets("multiclass", X))
    (labels, *columns), _ = _onnx_outputs(model, X, {"zipmap": "columns"})
    assert_array_equal(labels, model.predict(X))
    assert_allclose(np.column_stack(columns), model.predict_proba(X), rtol=RTOL[np.float32])


def test_nocl_outputs_class_indices():
    X = _features(np.float32)
    model = _estimator("multiclass", "relu").fit(X, _targets("multiclass", X))
    (labels, _), _ = _onnx_outputs(model, X, {"zipmap": False, "nocl": True})
    assert_array_equal(labels, np.searchsorted(model.classes_, model.predict(X)))


def test_output_class_labels_adds_the_classes():
    X = _features(np.float32)
    model = _estimator("multiclass", "relu").fit(X, _targets("multiclass", X))
    options = {"zipmap": False, "output_class_labels": True}
    (labels, _, classes), _ = _onnx_outputs(model, X, options)
    assert_array_equal(labels, model.predict(X))
    assert_array_equal(classes, model.classes_)


def test_integer_input_is_cast_to_float():
    X = np.random.RandomState(0).randint(-3, 4, size=(40, 4)).astype(np.int64)
    model = _estimator("squared_error", "relu").fit(X.astype(np.float32), X.sum(axis=1))
    outputs, _ = _onnx_outputs(model, X)
    assert outputs[0].dtype == np.float32
    assert_allclose(outputs[0].ravel(), model.predict(X.astype(np.float32)), rtol=1e-5)


def test_a_float64_model_exports_as_float32_for_float32_input():
    X = _features(np.float64)
    model = _estimator("squared_error", "tanh").fit(X, _targets("squared_error", X))
    X32 = X.astype(np.float32)
    outputs, _ = _onnx_outputs(model, X32)
    assert outputs[0].dtype == np.float32
    assert_allclose(outputs[0].ravel(), model.predict(X), rtol=1e-5)


def test_older_target_opset():
    X = _features(np.float32)
    model = _estimator("multiclass", ["elu", "softplus"]).fit(X, _targets("multiclass", X))
    (labels, probabilities), onnx_model = _onnx_outputs(
        model, X, {"zipmap": False}, target_opset=13
    )
    assert max(opset.version for opset in onnx_model.opset_import if opset.domain == "") <= 13
    assert_array_equal(labels, model.predict(X))
    assert_allclose(probabilities, model.predict_proba(X), rtol=RTOL[np.float32])


def test_convert_sklearn_takes_initial_types():
    from skl2onnx.common.data_types import DoubleTensorType

    X = _features(np.float64)
    model = _estimator("multi_output", "leaky_relu").fit(X, _targets("multi_output", X))
    onnx_model = skl2onnx.convert_sklearn(model, initial_types=[("X", DoubleTensorType([None, 4]))])
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (values,) = session.run(None, {"X": X})
    assert_allclose(values, model.predict(X), rtol=RTOL[np.float64])


def test_an_unfitted_model_is_refused():
    X = _features(np.float32)
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(BackpropRegressor(), X[:1])


def test_register_onnx_converters_can_be_called_again():
    from fastbp.onnx import register_onnx_converters

    register_onnx_converters()
    register_onnx_converters()
    X = _features(np.float32)
    model = _estimator("squared_error", "elu").fit(X, _targets("squared_error", X))
    _assert_onnx_predicts_like(model, X, RTOL[np.float32])


def test_a_failed_automatic_registration_warns_and_does_not_raise(monkeypatch):
    from fastbp import onnx

    def fail():
        raise RuntimeError("incompatible skl2onnx")

    monkeypatch.setattr(onnx, "_load_converters", fail)
    with pytest.warns(UserWarning, match="incompatible skl2onnx"):
        onnx._register_or_warn()


_EXPORT_CHECK = """
import numpy as np
import skl2onnx
from fastbp import BackpropClassifier

X = np.random.RandomState(0).normal(size=(30, 3)).astype(np.float32)
clf = BackpropClassifier((4,), activation="elu", max_iter=3).fit(X, X[:, 0] > 0)
onnx_model = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
assert "Elu" in [node.op_type for node in onnx_model.graph.node]
"""


def _run_python(*parts):
    """Run the code ``parts`` in a fresh interpreter, on this checkout of fastbp; a
    failed registration (a warning) fails it."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    setup = "import warnings\nwarnings.filterwarnings('error', 'fastbp could not register')\n"
    result = subprocess.run(
        [sys.executable, "-W", "ignore::Warning", "-c", setup + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_fastbp_imported_before_skl2onnx_registers_when_skl2onnx_loads():
    _run_python(
        f"""
        import sys
        import fastbp
        assert fastbp.__file__.startswith({str(ROOT)!r}), fastbp.__file__
        loaded = {{"skl2onnx", "onnx", "onnxruntime"}} & set(sys.modules)
        assert not loaded, f"import fastbp imported {{loaded}}"
        """,
        _EXPORT_CHECK,
        """
        assert fastbp.onnx._FINDER not in sys.meta_path  # one-shot: it stepped out
        """,
    )


def test_skl2onnx_imported_before_fastbp_registers_at_fastbp_import():
    _run_python(
        """
        import sys
        import skl2onnx
        import fastbp
        assert fastbp.onnx._FINDER not in sys.meta_path  # no hook: nothing to wait for
        """,
        _EXPORT_CHECK,
    )


def test_explicit_registration_before_skl2onnx_is_imported():
    # Importing the converters imports skl2onnx, which fires the hook half-way
    # through that import: it must neither fail nor warn.
    _run_python(
        """
        from fastbp.onnx import register_onnx_converters
        register_onnx_converters()
        """,
        _EXPORT_CHECK,
    )
