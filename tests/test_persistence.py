"""Fitted models round-trip through pickle and skops; tampered skops files are refused."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import fastbp
from fastbp import BackpropClassifier, BackpropRegressor
from fastbp._optimizers import OPTIMIZERS

sio = pytest.importorskip("skops.io")


def _fitted(Estimator, solver):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(int) if Estimator is BackpropClassifier else X @ [1, 2, 0, -1]
    est = Estimator(hidden_layer_sizes=(5,), solver=solver, max_iter=5, random_state=0)
    return est.fit(X, y), X, y


def _outputs(est, X):
    if isinstance(est, BackpropClassifier):
        return est.predict_proba(X)
    return est.predict(X)


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
@pytest.mark.parametrize("solver", [*OPTIMIZERS, "lbfgs"])
def test_skops_round_trip_needs_only_the_documented_trusted_types(Estimator, solver):
    est, X, y = _fitted(Estimator, solver)
    data = sio.dumps(est)
    assert set(sio.get_untrusted_types(data=data)) <= set(fastbp.SKOPS_TRUSTED_TYPES)
    loaded = sio.loads(data, trusted=fastbp.SKOPS_TRUSTED_TYPES)
    assert_array_equal(_outputs(loaded, X), _outputs(est, X))
    assert all(p.base is loaded._model.params for p in loaded.coefs_ + loaded.intercepts_)
    if solver != "lbfgs":  # the optimizer state survives: training resumes identically
        resumed = loaded.partial_fit(X, y)
        original = pickle.loads(pickle.dumps(est)).partial_fit(X, y)
        assert_array_equal(_outputs(resumed, X), _outputs(original, X))


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_pickle_round_trip_predicts_identically(Estimator):
    est, X, _ = _fitted(Estimator, "adam")
    loaded = pickle.loads(pickle.dumps(est))
    assert_array_equal(_outputs(loaded, X), _outputs(est, X))
    # coefs_ and intercepts_ are views into the loaded model's one parameter vector
    assert all(p.base is loaded._model.params for p in loaded.coefs_ + loaded.intercepts_)
    # Saving does not disturb the live model.
    assert all(p.base is est._model.params for p in est.coefs_ + est.intercepts_)


def test_a_tampered_skops_file_naming_another_type_is_refused():
    est, _, _ = _fitted(BackpropClassifier, "adam")
    original = sio.dumps(est)
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(tampered, "w") as out:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(content)
                schema["__module__"], schema["__class__"] = "subprocess", "Popen"
                content = json.dumps(schema).encode()
            out.writestr(item, content)
    data = tampered.getvalue()
    assert "subprocess.Popen" in sio.get_untrusted_types(data=data)
    with pytest.raises(Exception, match="Untrusted types found"):
        sio.loads(data, trusted=fastbp.SKOPS_TRUSTED_TYPES)
