"""Conversion to and from scikit-learn, ONNX export, and the loss-curve display."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier, MLPRegressor

from fastbp import BackpropClassifier, BackpropRegressor, LossCurveDisplay


def _data(kind):
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)  # fmt: skip
    targets = {
        "multiclass": y,
        "binary": y == 1,
        "multilabel": np.column_stack([y == 0, y == 1]).astype(int),
        "regression": X[:, 0] * 2 + X[:, 1],
        "multioutput": X[:, :2],
    }
    return X, targets[kind]


@pytest.mark.parametrize(
    "kind", ["multiclass", "binary", "multilabel", "regression", "multioutput"]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_to_sklearn_predicts_identically(kind, dtype):
    X, y = _data(kind)
    X = X.astype(dtype)
    Estimator = BackpropRegressor if kind in ("regression", "multioutput") else BackpropClassifier
    ours = Estimator(hidden_layer_sizes=(7, 5), max_iter=20, random_state=0).fit(X, y)
    model = ours.to_sklearn()
    assert isinstance(model, MLPRegressor if Estimator is BackpropRegressor else MLPClassifier)
    assert_array_equal(model.predict(X), ours.predict(X))
    if Estimator is BackpropClassifier:
        assert_allclose(model.predict_proba(X), ours.predict_proba(X), rtol=1e-5, atol=1e-6)
    # an independent copy: refitting ours leaves the exported model alone
    before = model.coefs_[0].copy()
    ours.fit(X, y)
    assert_array_equal(model.coefs_[0], before)


def test_to_sklearn_needs_an_activation_scikit_learn_has():
    X, y = _data("binary")
    clf = BackpropClassifier(activation="elu", max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="scikit-learn's MLP has no activation 'elu'"):
        clf.to_sklearn()
    reg = BackpropRegressor(loss="huber", max_iter=5).fit(*_data("regression"))
    assert_array_equal(reg.to_sklearn().predict(X), reg.predict(X))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_from_sklearn_predicts_identically_and_keeps_training(solver):
    X, y = _data("multiclass")
    model = MLPClassifier(hidden_layer_sizes=(9,), solver=solver, max_iter=30, random_state=0)
    model.fit(X, y)
    ours = BackpropClassifier.from_sklearn(model)
    assert_array_equal(ours.predict(X), model.predict(X))
    assert_allclose(ours.predict_proba(X), model.predict_proba(X), rtol=1e-12, atol=1e-15)
    assert ours.get_params() == {**BackpropClassifier().get_params(), **model.get_params()}
    assert all(c.base is ours._model.params for c in ours.coefs_)
    if solver != "lbfgs":
        ours.partial_fit(X, y)
        assert ours.t_ == model.t_ + len(y)
    with pytest.raises(TypeError, match="takes a fitted MLPRegressor, got MLPClassifier"):
        BackpropRegressor.from_sklearn(model)


def test_from_sklearn_regressor():
    X, y = _data("regression")
    model = MLPRegressor(hidden_layer_sizes=(5,), max_iter=50, random_state=0).fit(X, y)
    assert_allclose(BackpropRegressor.from_sklearn(model).predict(X), model.predict(X))


def test_onnx_export_through_to_sklearn_matches_our_predictions():
    skl2onnx = pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    X, y = _data("multiclass")
    X = X.astype(np.float32)
    clf = BackpropClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    onnx_model = skl2onnx.to_onnx(clf.to_sklearn(), X[:1], options={"zipmap": False})
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels, probabilities = session.run(None, {session.get_inputs()[0].name: X})
    assert_array_equal(labels, clf.predict(X))
    assert_allclose(probabilities, clf.predict_proba(X), rtol=1e-4, atol=1e-6)


def test_loss_curve_display_renders_losses_and_validation():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = _data("multiclass")
    clf = BackpropClassifier(early_stopping=True, max_iter=15, random_state=0).fit(X, y)
    fig, ax = plt.subplots()
    display = LossCurveDisplay.from_estimator(clf, ax=ax, name="mlp", color="black")
    assert display.ax_ is ax and display.figure_ is fig
    assert_array_equal(display.line_.get_ydata(), clf.loss_curve_)
    assert display.line_.get_label() == "mlp training loss"
    assert_array_equal(display.validation_loss_line_.get_ydata(), clf.validation_loss_curve_)
    assert_array_equal(display.validation_score_line_.get_ydata(), clf.validation_scores_)
    fig.canvas.draw()  # renders with the Agg backend
    plt.close(fig)

    plain = BackpropRegressor(max_iter=5).fit(*_data("regression"))
    display = LossCurveDisplay.from_estimator(plain)
    assert display.score_ax_ is None and display.validation_loss_line_ is None
    plt.close(display.figure_)
    with pytest.raises(ValueError, match="records no loss curve"):
        LossCurveDisplay.from_estimator(BackpropRegressor(solver="lbfgs", max_iter=5).fit(X, y))
