"""Golden weights: are a tree's fitted weights bit-identical to a recorded baseline?

Fits a grid of option combinations (every hidden activation, every loss, every
solver, float32 and float64, sample and class weights, dropout, sparse input, early
stopping, gradient clipping, the convergence rule inside multi-epoch calls, warm
starts with partial_fit) and records, per configuration, a SHA-256 of the fitted
parameters, the loss curve, ``n_iter_`` and the predictions. Run it with the
``fastbp`` under test first on ``PYTHONPATH``::

    git worktree add /tmp/base <baseline commit>
    PYTHONPATH=/tmp/base python tools/golden_weights.py record /tmp/golden.json
    PYTHONPATH=. python tools/golden_weights.py compare /tmp/golden.json

``compare`` prints every configuration that differs and exits 1 if any does.
Configurations whose option does not exist in the baseline (recorded as an error)
are skipped by ``compare``.
"""

import hashlib
import json
import sys
import warnings

import numpy as np
import scipy.sparse as sp

ACTIVATIONS = (
    "identity", "relu", "leaky_relu", "logistic", "tanh", "elu", "softplus", "swish", "gelu",
)  # fmt: skip
REGRESSION_LOSSES = ("squared_error", "poisson", "absolute_error", "huber", "quantile")


def configurations():
    """(name, estimator kind, data kind, parameters, fit options) of the grid."""
    grid = []
    for dtype in ("float64", "float32"):

        def add(name, kind, data, fit=None, dtype=dtype, **params):
            params.setdefault("random_state", 0)
            params.setdefault("max_iter", 8)
            params.setdefault("hidden_layer_sizes", (7, 5))
            grid.append((f"{dtype}/{name}", kind, data, dtype, params, fit or {}))

        for activation in ACTIVATIONS:
            for solver in ("sgd", "adam"):
                add(f"binary/{activation}/{solver}", "classifier", "binary",
                    activation=activation, solver=solver)  # fmt: skip
            add(f"multiclass/{activation}/adamw", "classifier", "multiclass",
                activation=activation, solver="adamw")  # fmt: skip
            add(f"regression/{activation}/sgd", "regressor", "regression",
                activation=activation, solver="sgd", learning_rate_init=0.01)  # fmt: skip
            add(f"lbfgs/{activation}", "regressor", "regression", activation=activation,
                solver="lbfgs", max_iter=15)  # fmt: skip
        for loss in REGRESSION_LOSSES:
            for solver in ("sgd", "adam", "adamw", "lbfgs"):
                data = "counts" if loss == "poisson" else "regression"
                add(f"loss/{loss}/{solver}", "regressor", data, loss=loss, solver=solver,
                    learning_rate_init=0.01 if solver == "sgd" else 0.001)  # fmt: skip
        add("multioutput/relu/adam", "regressor", "multioutput")
        add("multilabel/logistic/adam", "classifier", "multilabel", activation="logistic")
        add("sgd/classic-momentum", "classifier", "multiclass", solver="sgd",
            nesterovs_momentum=False, momentum=0.7)  # fmt: skip
        add("sgd/no-momentum-invscaling", "classifier", "binary", solver="sgd", momentum=0.0,
            learning_rate="invscaling")  # fmt: skip
        add("sgd/adaptive", "classifier", "binary", solver="sgd", learning_rate="adaptive",
            max_iter=40, tol=0.5, n_iter_no_change=2)  # fmt: skip
        add("adam/cosine", "classifier", "multiclass", learning_rate="cosine")
        add("adam/step", "regressor", "regression", learning_rate="step", lr_step_epochs=3)
        add("alpha/large", "classifier", "multiclass", alpha=0.3, solver="adamw",
            weight_decay=0.1)  # fmt: skip
        add("sample_weight", "classifier", "multiclass", fit={"sample_weight": True})
        add("sample_weight/zero-batches", "regressor", "regression", batch_size=4,
            fit={"sample_weight": "zeros"})  # fmt: skip
        add("class_weight/balanced", "classifier", "multiclass", class_weight="balanced")
        add("class_weight+sample_weight", "classifier", "binary", class_weight="balanced",
            fit={"sample_weight": True})  # fmt: skip
        add("dropout/relu/adam", "classifier", "multiclass", dropout=0.2)
        add("dropout/tanh/sgd", "regressor", "regression", dropout=[0.1, 0.3],
            activation="tanh", solver="sgd")  # fmt: skip
        add("sparse/relu/adam", "classifier", "multiclass", fit={"sparse": True})
        add("sparse/lbfgs", "classifier", "binary", solver="lbfgs", fit={"sparse": True})
        add("early_stopping/adam", "classifier", "multiclass", early_stopping=True,
            max_iter=30, n_iter_no_change=3)  # fmt: skip
        add("early_stopping/regressor", "regressor", "regression", early_stopping=True,
            max_iter=30, n_iter_no_change=2, solver="sgd")  # fmt: skip
        add("max_grad_norm/adam", "classifier", "multiclass", max_grad_norm=0.5)
        add("max_grad_norm/sgd", "regressor", "regression", max_grad_norm=0.1, solver="sgd")
        add("convergence/in-kernel", "classifier", "binary", max_iter=300, tol=1e-2,
            n_iter_no_change=3, hidden_layer_sizes=(4,))  # fmt: skip
        add("convergence/regressor", "regressor", "regression", max_iter=300, tol=1e-3,
            n_iter_no_change=4, hidden_layer_sizes=(3,))  # fmt: skip
        add("batch/small", "classifier", "multiclass", batch_size=7)
        add("no-shuffle", "classifier", "multiclass", shuffle=False)
        add("per-layer-activation", "classifier", "multiclass", activation=["relu", "tanh"])
        add("partial_fit", "classifier", "multiclass", fit={"partial_fit": 4})
        add("warm_start", "regressor", "regression", warm_start=True, fit={"refit": True})
    return grid


def data(kind, dtype, sparse):
    rng = np.random.RandomState(1)
    X = rng.normal(size=(60, 5))
    if kind == "binary":
        y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    elif kind == "multiclass":
        y = np.digitize(X[:, 0] - X[:, 2], [-0.5, 0.5])
    elif kind == "multilabel":
        y = np.stack([X[:, 0] > 0, X[:, 1] > 0.3], axis=1).astype(int)
    elif kind == "regression":
        y = X @ [1.0, -2.0, 0.5, 0.0, 0.3] + 0.1 * rng.normal(size=60)
    elif kind == "counts":
        y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    elif kind == "multioutput":
        y = np.stack([X[:, 0] - X[:, 1], X[:, 2] * 0.5], axis=1)
    X = X.astype(dtype)
    if sparse:
        X[np.abs(X) < 0.7] = 0
        X = sp.csr_matrix(X)
    return X, y


def fit_one(kind, data_kind, dtype, params, fit):
    from fastbp import BackpropClassifier, BackpropRegressor

    cls = BackpropClassifier if kind == "classifier" else BackpropRegressor
    X, y = data(data_kind, dtype, fit.get("sparse", False))
    options = {}
    weights = fit.get("sample_weight")
    if weights is True:
        options["sample_weight"] = np.random.RandomState(2).uniform(0.2, 2.0, size=60)
    elif weights == "zeros":
        sample_weight = np.random.RandomState(2).uniform(0.2, 2.0, size=60)
        sample_weight[:12] = 0  # whole batches of zero weight
        options["sample_weight"] = sample_weight
    model = cls(**params)
    if "partial_fit" in fit:
        for _ in range(fit["partial_fit"]):
            model.partial_fit(X, y, classes=np.unique(y))
    else:
        model.fit(X, y, **options)
        if fit.get("refit"):
            model.fit(X, y, **options)
    predictions = model.predict_proba(X) if kind == "classifier" else model.predict(X)
    digest = hashlib.sha256()
    for array in (*model.coefs_, *model.intercepts_):
        digest.update(np.ascontiguousarray(array).tobytes())
    curve = np.asarray(getattr(model, "loss_curve_", None) or [], dtype=np.float64)
    return {
        "params": digest.hexdigest(),
        "dtype": str(model.coefs_[0].dtype),
        "loss_curve": hashlib.sha256(curve.tobytes()).hexdigest(),
        "n_iter": int(model.n_iter_),
        "predictions": hashlib.sha256(np.ascontiguousarray(predictions).tobytes()).hexdigest(),
    }


def run_grid(only=None):
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, kind, data_kind, dtype, params, fit in configurations():
            if only and not any(part in name for part in only):
                continue
            try:
                results[name] = fit_one(kind, data_kind, dtype, params, fit)
            except Exception as error:  # an option the tree does not have
                results[name] = {"error": f"{type(error).__name__}: {error}"}
    return results


def main(argv):
    if len(argv) < 2 or argv[0] not in ("record", "compare"):
        print(__doc__)
        return 2
    import fastbp

    print(f"fastbp from {fastbp.__file__}", file=sys.stderr)
    mode, path, only = argv[0], argv[1], argv[2:]
    results = run_grid(only)
    if mode == "record":
        with open(path, "w") as file:
            json.dump(results, file, indent=1, sort_keys=True)
        errors = [name for name, result in results.items() if "error" in result]
        print(f"recorded {len(results)} configurations ({len(errors)} errors: {errors})")
        return 0
    with open(path) as file:
        golden = json.load(file)
    compared, different = 0, []
    for name, result in results.items():
        expected = golden.get(name)
        if expected is None or "error" in expected:
            continue
        compared += 1
        if result != expected:
            different.append(name)
            print(f"DIFFERENT {name}: {result} != {expected}")
    print(f"compared {compared} configurations: {compared - len(different)} bit-identical, "
          f"{len(different)} different")  # fmt: skip
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
