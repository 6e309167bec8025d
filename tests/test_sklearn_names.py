"""fastbp.MLPClassifier and fastbp.MLPRegressor: scikit-learn's names, so a script
written for scikit-learn changes only its import (step names, grid keys, reprs)."""

import pickle

import numpy as np
import pytest
import sklearn.neural_network
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastbp
from fastbp import BackpropClassifier, BackpropRegressor, MLPClassifier, MLPRegressor

PAIRS = [(MLPClassifier, BackpropClassifier), (MLPRegressor, BackpropRegressor)]


def _data(Estimator):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    if issubclass(Estimator, BackpropClassifier):
        return X, (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, X @ [1.0, 2.0, 0.0, -1.0]


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_pipeline_step_is_named_as_scikit_learn_names_it(Estimator):
    sklearn_class = getattr(sklearn.neural_network, Estimator.__name__)
    ours = make_pipeline(StandardScaler(), Estimator())
    theirs = make_pipeline(StandardScaler(), sklearn_class())
    assert list(ours.named_steps) == list(theirs.named_steps)
    step = Estimator.__name__.lower()
    assert isinstance(ours.named_steps[step], Estimator)
    assert set(ours.get_params()) == set(theirs.get_params()) | {
        f"{step}__{name}" for name in Estimator().get_params()
    }


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_a_param_grid_written_for_scikit_learn_works(Estimator):
    X, y = _data(Estimator)
    step = Estimator.__name__.lower()
    pipeline = make_pipeline(StandardScaler(), Estimator(hidden_layer_sizes=(5,), max_iter=5))
    search = GridSearchCV(pipeline, {f"{step}__alpha": [1e-4, 1e-2]}, cv=2).fit(X, y)
    assert search.best_params_[f"{step}__alpha"] in (1e-4, 1e-2)
    assert isinstance(search.best_estimator_.named_steps[step], Estimator)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_repr_names_the_class_as_scikit_learn_does(Estimator):
    sklearn_class = getattr(sklearn.neural_network, Estimator.__name__)
    assert repr(Estimator(alpha=0.01)) == repr(sklearn_class(alpha=0.01))
    assert repr(Estimator()) == f"{Estimator.__name__}()"


@pytest.mark.parametrize("Estimator, Backprop", PAIRS)
def test_same_weights_as_the_backprop_name(Estimator, Backprop):
    X, y = _data(Estimator)
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    ours = Estimator(**params).fit(X, y)
    other = Backprop(**params).fit(X, y)
    assert isinstance(ours, Backprop)
    for a, b in zip(ours.coefs_ + ours.intercepts_, other.coefs_ + other.intercepts_):
        assert_array_equal(a, b)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_to_and_from_sklearn_keep_the_class(Estimator):
    X, y = _data(Estimator)
    ours = Estimator(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    model = ours.to_sklearn()
    assert type(model) is getattr(sklearn.neural_network, Estimator.__name__)
    back = Estimator.from_sklearn(model)
    assert type(back) is Estimator
    assert_array_equal(back.predict(X), ours.predict(X))


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_saved_and_loaded_with_the_documented_trusted_types(Estimator):
    sio = pytest.importorskip("skops.io")
    X, y = _data(Estimator)
    ours = Estimator(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    data = sio.dumps(ours)
    assert set(sio.get_untrusted_types(data=data)) <= set(fastbp.SKOPS_TRUSTED_TYPES)
    loaded = sio.loads(data, trusted=fastbp.SKOPS_TRUSTED_TYPES)
    assert type(loaded) is Estimator
    assert_array_equal(loaded.predict(X), ours.predict(X))
    assert type(pickle.loads(pickle.dumps(ours))) is Estimator


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_onnx_export_takes_the_scikit_learn_names(Estimator):
    skl2onnx = pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    X, y = _data(Estimator)
    X = X.astype(np.float32)
    ours = Estimator(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    options = {Estimator: {"zipmap": False}} if Estimator is MLPClassifier else None
    onnx_model = skl2onnx.to_onnx(ours, X[:1], options=options)
    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, {session.get_inputs()[0].name: X})
    if Estimator is MLPClassifier:
        assert_array_equal(outputs[0], ours.predict(X))
    else:
        np.testing.assert_allclose(outputs[0].ravel(), ours.predict(X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_docstring_example_uses_the_scikit_learn_name(Estimator):
    assert f"from fastbp import {Estimator.__name__}" in Estimator.__doc__
    assert f"= {Estimator.__name__}(" in Estimator.__doc__
    assert "drop-in spelling" in Estimator.__doc__
