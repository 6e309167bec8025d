"""What fastbp adds to scikit-learn's MLP: every feature does what it says, and
touches the gradient correctly where it touches the backward pass."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from reference import HIDDEN, OUTPUT, finite_difference_gradient
from scipy.special import erf, expit
from sklearn.datasets import make_classification

from fastbp import BackpropClassifier, BackpropRegressor
from fastbp._kernel_codes import ACTIVATION_CODES
from fastbp._losses import LOSSES
from fastbp._network import NetworkLayout
from fastbp._optimizers import OPTIMIZERS, FullBatchObjective

# Every activation-loss pair of fastbp's registries except those tests/test_gradients.py
# checks against the numpy reference (scikit-learn's activations and losses).
NEW_PAIRS = [
    (activation, loss)
    for activation in ACTIVATION_CODES
    for loss in LOSSES
    if activation not in HIDDEN or loss not in OUTPUT
]


def _targets(loss, rng, shape):
    """Targets a loss accepts, by its output activation."""
    output = LOSSES[loss].output_activation
    if output == "softmax":
        return np.eye(shape[1])[rng.randint(shape[1], size=shape[0])]
    if output == "logistic":
        return rng.randint(2, size=shape).astype(float)
    if output == "exp":
        return rng.poisson(2.0, size=shape).astype(float)
    return rng.normal(size=shape) * 2


def _check_gradient(activation, loss, dropout=0.0, alpha=0.1, n_outputs=2):
    rng = np.random.RandomState(3)
    layout = NetworkLayout([4, 6, 5, n_outputs])
    X = rng.normal(size=(17, 4))
    y = _targets(loss, rng, (17, n_outputs))
    weights = rng.uniform(0.5, 2, 17)
    objective = FullBatchObjective(
        layout,
        X,
        y,
        weights,
        activation,
        loss,
        alpha,
        chunk_rows=6,
        loss_parameters={"huber_delta": 0.7, "quantile": 0.3},
        dropout=dropout,
        dropout_seed=11,
    )
    params = layout.initialize(rng, "relu", np.float64)
    gradient = objective(params)[1].copy()
    assert_allclose(gradient, finite_difference_gradient(objective, params), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("activation, loss", NEW_PAIRS)
def test_gradient_of_new_activations_and_losses(activation, loss):
    _check_gradient(activation, loss)


def test_gradient_with_one_activation_per_layer_and_dropout():
    _check_gradient(["tanh", "elu"], "huber")
    _check_gradient(["relu", "softplus"], "squared_error", dropout=[0.5, 0.3])
    _check_gradient(["swish", "swish"], "quantile", dropout=[0.4, 0.2])


@pytest.mark.parametrize("activation", list(ACTIVATION_CODES))
def test_every_activation_computes_its_definition(activation):
    reference = {
        **HIDDEN,
        "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
        "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
        "softplus": lambda z: np.logaddexp(0, z),
        "swish": lambda z: z * expit(z),
        "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    }[activation]  # a new activation needs its formula here
    rng = np.random.RandomState(0)
    X = rng.normal(size=(50, 3)) * 3
    reg = BackpropRegressor(
        hidden_layer_sizes=(7,), activation=activation, max_iter=1, random_state=0
    ).fit(X, X[:, 0])
    hidden = reference(X @ reg.coefs_[0] + reg.intercepts_[0])
    expected = hidden @ reg.coefs_[1] + reg.intercepts_[1]
    assert_allclose(reg.predict(X), expected.ravel(), rtol=1e-10, atol=1e-12)


def test_activation_list_gives_each_hidden_layer_its_own():
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    clf = BackpropClassifier(
        hidden_layer_sizes=(6, 4), activation=["tanh", "relu"], max_iter=3, random_state=0
    ).fit(X, y)
    a1 = HIDDEN["tanh"](X @ clf.coefs_[0] + clf.intercepts_[0])
    a2 = HIDDEN["relu"](a1 @ clf.coefs_[1] + clf.intercepts_[1])
    z = a2 @ clf.coefs_[2] + clf.intercepts_[2]
    assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z.ravel())), rtol=1e-9)
    with pytest.raises(ValueError, match="2 per-layer values for 1 hidden layer"):
        BackpropClassifier(hidden_layer_sizes=(6,), activation=["tanh", "relu"]).fit(X, y)
    with pytest.raises(ValueError, match="Unknown activation 'mish'"):
        BackpropClassifier(hidden_layer_sizes=(6,), activation=["mish"]).fit(X, y)


def test_dropout_changes_training_not_prediction_and_is_reproducible():
    X, y = make_classification(n_samples=300, n_features=10, random_state=0)
    params = dict(hidden_layer_sizes=(32,), max_iter=10, random_state=0)
    plain = BackpropClassifier(**params).fit(X, y)
    dropped = BackpropClassifier(dropout=0.5, **params).fit(X, y)
    again = BackpropClassifier(dropout=0.5, **params).fit(X, y)
    assert not np.allclose(plain.coefs_[0], dropped.coefs_[0])
    assert_array_equal(dropped.coefs_[0], again.coefs_[0])
    # inverted dropout is off at prediction: the plain forward pass, computed here
    z = np.maximum(X @ dropped.coefs_[0] + dropped.intercepts_[0], 0) @ dropped.coefs_[1]
    expected = 1 / (1 + np.exp(-(z + dropped.intercepts_[1]).ravel()))
    assert_allclose(dropped.predict_proba(X)[:, 1], expected, rtol=1e-9)
    # dropout=0 leaves the scikit-learn-identical model alone
    assert_array_equal(
        BackpropClassifier(dropout=0.0, **params).fit(X, y).coefs_[0], plain.coefs_[0]
    )


def test_dropout_is_refused_with_lbfgs_and_outside_its_range():
    X, y = make_classification(n_samples=50, random_state=0)
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        BackpropClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match="Dropout rates must lie in"):
        BackpropClassifier(hidden_layer_sizes=(4, 4), dropout=[0.2, 1.0]).fit(X, y)


def test_max_grad_norm_bounds_every_step():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 5))
    y = 100 * X[:, 0]  # large errors, large gradients
    params = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        momentum=0.0,
        learning_rate_init=0.1,
        batch_size=64,
        max_iter=1,
        shuffle=False,
        random_state=0,
        alpha=0.0,
    )
    start = BackpropRegressor(**{**params, "learning_rate_init": 1e-300}).fit(X, y)
    clipped = BackpropRegressor(max_grad_norm=0.5, **params).fit(X, y)
    free = BackpropRegressor(**params).fit(X, y)
    step_clipped = np.linalg.norm(clipped._model.params - start._model.params)
    step_free = np.linalg.norm(free._model.params - start._model.params)
    assert step_free > 0.05  # clipping matters here
    assert step_clipped == pytest.approx(0.1 * 0.5, rel=1e-6)  # lr x max norm


def test_huber_is_robust_to_outliers_where_squared_error_is_not():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (400, 1))
    y = 2 * X[:, 0]
    y_dirty = y.copy()
    y_dirty[:20] = 50  # 5% gross outliers
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=500, random_state=0)
    squared = BackpropRegressor(**params).fit(X, y_dirty)
    huber = BackpropRegressor(loss="huber", huber_delta=1.0, **params).fit(X, y_dirty)
    absolute = BackpropRegressor(
        loss="absolute_error", **{**params, "solver": "adam", "max_iter": 300}
    ).fit(X, y_dirty)
    clean = slice(20, None)
    error = {
        name: np.abs(model.predict(X[clean]) - y[clean]).mean()
        for name, model in [("squared", squared), ("huber", huber), ("absolute", absolute)]
    }
    assert error["huber"] < 0.3 < error["squared"]
    assert error["absolute"] < 0.5


@pytest.mark.parametrize("solver", list(OPTIMIZERS))
def test_cosine_and_step_schedules(solver):
    X, y = make_classification(n_samples=100, random_state=0)
    cosine = BackpropClassifier(
        solver=solver,
        learning_rate="cosine",
        learning_rate_init=0.01,
        max_iter=8,
        tol=0,
        n_iter_no_change=100,
        random_state=0,
    )
    cosine.fit(X, y)
    assert cosine._optimizer.base_learning_rate == pytest.approx(0.0)  # decayed to 0 at max_iter
    step = BackpropClassifier(
        solver=solver,
        learning_rate="step",
        learning_rate_init=0.01,
        lr_step_epochs=3,
        lr_step_factor=0.1,
        max_iter=7,
        tol=0,
        n_iter_no_change=100,
        random_state=0,
    ).fit(X, y)
    assert step._optimizer.base_learning_rate == pytest.approx(0.01 * 0.1**2)
    constant = BackpropClassifier(
        solver=solver, learning_rate_init=0.01, max_iter=7, random_state=0
    ).fit(X, y)
    assert not np.allclose(step.coefs_[0], constant.coefs_[0])


def test_early_stopping_on_the_validation_loss():
    X, y = make_classification(n_samples=400, n_features=10, random_state=0)
    clf = BackpropClassifier(
        early_stopping=True, scoring="loss", n_iter_no_change=3, max_iter=200, random_state=0
    ).fit(X, y)
    assert len(clf.validation_loss_curve_) == clf.n_iter_
    assert_allclose(clf.validation_scores_, -np.asarray(clf.validation_loss_curve_))
    assert clf.best_validation_score_ == pytest.approx(-min(clf.validation_loss_curve_))


def test_early_stopping_scoring_with_multilabel_and_sample_weight():
    X, y = make_classification(n_samples=300, n_features=8, random_state=0)
    Y = np.column_stack([y, 1 - y, X[:, 0] > 0]).astype(int)
    weights = np.random.RandomState(0).uniform(0.5, 2, len(y))
    clf = BackpropClassifier(
        early_stopping=True, scoring="f1_samples", max_iter=30, random_state=0
    ).fit(X, Y, sample_weight=weights)
    assert 0 < clf.best_validation_score_ <= 1
    reg = BackpropRegressor(
        early_stopping=True, scoring="neg_mean_absolute_error", max_iter=30, random_state=0
    ).fit(X, X[:, 0], sample_weight=weights)
    assert reg.best_validation_score_ <= 0


def test_multilabel_partial_fit_needs_no_classes():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    Y = np.column_stack([y, X[:, 0] > 0]).astype(int)
    clf = BackpropClassifier(random_state=0)
    for _ in range(3):
        clf.partial_fit(X, Y)
    assert clf.n_outputs_ == 2 and clf.predict(X).shape == Y.shape


def test_partial_fit_is_refused_for_lbfgs_with_a_clear_error():
    clf = BackpropClassifier(solver="lbfgs")
    assert not hasattr(clf, "partial_fit")  # as scikit-learn's meta-estimators expect
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as error:
        clf.partial_fit(np.zeros((4, 2)), [0, 1, 0, 1], classes=[0, 1])
    # the traceback carries the reason
    assert "only available for stochastic optimizers. lbfgs" in str(error.value.__cause__)


callback = pytest.importorskip("sklearn.callback")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_scoring_monitor_callback_records_every_epoch(solver):
    X, y = make_classification(n_samples=100, random_state=0)
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = BackpropClassifier(solver=solver, max_iter=5, random_state=0).set_callbacks(monitor)
    clf.fit(X, y)
    steps = [row for row in monitor.get_logs().data if row["task_name"] != "fit"]
    assert len(steps) == clf.n_iter_
    assert all(0 <= row["accuracy"] <= 1 for row in steps)
    assert not hasattr(clf, "_callback_data")


def test_progress_bar_nests_under_grid_search():
    pytest.importorskip("rich")
    from sklearn.model_selection import GridSearchCV

    X, y = make_classification(n_samples=60, random_state=0)
    search = GridSearchCV(BackpropClassifier(max_iter=3), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    assert hasattr(search, "best_estimator_")


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9])
def test_quantile_loss_estimates_the_conditional_quantile(quantile):
    """Trained with the pinball loss, about a fraction ``quantile`` of the targets
    lies below the predictions, at every level of the input (a heteroscedastic
    problem, where the conditional quantiles spread with x)."""
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1, size=(4000, 1))
    y = 2 * X[:, 0] + (0.2 + X[:, 0]) * rng.normal(size=4000)
    reg = BackpropRegressor(
        loss="quantile", quantile=quantile, hidden_layer_sizes=(32,), learning_rate_init=0.01,
        max_iter=200, random_state=0,
    ).fit(X, y)  # fmt: skip
    below = y < reg.predict(X)
    assert abs(below.mean() - quantile) < 0.03
    for part in (X[:, 0] < 0.5, X[:, 0] >= 0.5):
        assert abs(below[part].mean() - quantile) < 0.05


def test_quantile_at_one_half_is_half_the_absolute_error():
    from fastbp._losses import output_loss

    rng = np.random.RandomState(1)
    outputs, targets = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    absolute = output_loss(outputs, targets, None, "absolute_error")
    half = output_loss(outputs, targets, None, "quantile", {"quantile": 0.5})
    assert_allclose(half, absolute / 2)


def test_adamw_step_is_decoupled_weight_decay_then_adam(monkeypatch):
    """One AdamW step (one full batch) equals the textbook formula from the initial
    weights and the gradient: coefficients shrink by 1 - lr * weight_decay, then
    take Adam's bias-corrected step; intercepts are not decayed."""
    from fastbp import _kernels

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -1.0, 0.5]
    params = dict(
        hidden_layer_sizes=(5,),
        alpha=1e-3,
        batch_size=40,
        max_iter=1,
        shuffle=False,
        random_state=0,
        learning_rate_init=0.05,
        weight_decay=0.3,
    )
    initial = []
    real = _kernels.run_epochs
    monkeypatch.setattr(_kernels, "run_epochs", lambda *a: initial.append(a[4].copy()) or real(*a))
    reg = BackpropRegressor(solver="adamw", **params).fit(X, y)
    monkeypatch.undo()
    w = initial[0]
    layout = NetworkLayout([3, 5, 1])
    _, gradient = FullBatchObjective(
        layout, X, y.reshape(-1, 1), None, "relu", "squared_error", 1e-3, chunk_rows=40
    )(w)  # fmt: skip
    m, v = 0.1 * gradient, 0.001 * gradient**2
    lr = 0.05 * np.sqrt(1 - 0.999) / (1 - 0.9)
    n_coefs = layout.n_coefs
    keep = np.ones_like(w)
    keep[:n_coefs] = 1 - 0.05 * 0.3
    expected = keep * w - lr * m / (np.sqrt(v) + 1e-8)
    got = layout.pack(reg.coefs_, reg.intercepts_, np.float64)
    assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # without decay, AdamW is Adam, bit for bit
    adamw = BackpropRegressor(solver="adamw", **{**params, "weight_decay": 0.0, "max_iter": 20})
    adam = BackpropRegressor(solver="adam", **{**params, "max_iter": 20})
    for a, b in zip(adamw.fit(X, y).coefs_, adam.fit(X, y).coefs_):
        assert_array_equal(a, b)


def test_adamw_shrinks_the_weights_more_than_adam():
    X, y = make_classification(n_samples=300, n_features=10, random_state=0)
    # weight_decay 5 at step size 1e-3: each step keeps 99.5% of the weights
    common = dict(hidden_layer_sizes=(20,), max_iter=60, random_state=0, alpha=0.0,
                  weight_decay=5.0)  # fmt: skip
    norm = {
        solver: sum(
            np.square(c).sum() for c in BackpropClassifier(solver=solver, **common).fit(X, y).coefs_
        )  # fmt: skip
        for solver in ("adam", "adamw")
    }
    assert norm["adamw"] < 0.9 * norm["adam"]
