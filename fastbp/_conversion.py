"""Conversion between fastbp estimators and scikit-learn's fitted MLPs."""

import numpy as np
from sklearn.base import is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils.validation import check_is_fitted

from fastbp._fitted import publish_lock
from fastbp._losses import LOSSES

# Fitted attributes that mean the same in both libraries.
_SHARED_ATTRIBUTES = (
    "n_iter_",
    "t_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "n_features_in_",
    "feature_names_in_",
    "classes_",
    "_label_binarizer",
)
_SKLEARN_ACTIVATIONS = {"identity", "logistic", "tanh", "relu"}


def to_sklearn(estimator):
    """A fitted MLPClassifier/MLPRegressor with ``estimator``'s weights."""
    check_is_fitted(estimator)
    # One consistent state: the fitted network (with the options it was fitted with,
    # whatever set_params said since) and the attributes committed with it.
    with publish_lock():
        network = estimator._fitted_network()
        state = dict(estimator.__dict__)
    target = MLPClassifier if is_classifier(estimator) else MLPRegressor
    activations = set(network.activations) or {estimator.activation}
    activation = activations.pop() if len(activations) == 1 else list(network.activations)
    if not isinstance(activation, str) or activation not in _SKLEARN_ACTIVATIONS:
        raise ValueError(
            f"scikit-learn's MLP has no activation {activation!r}: to_sklearn needs one "
            f"of {sorted(_SKLEARN_ACTIVATIONS)} for every hidden layer."
        )
    names = set(target().get_params())
    params = {key: value for key, value in estimator.get_params().items() if key in names}
    params["activation"] = activation
    if params.get("solver") == "adamw":
        params["solver"] = "adam"  # a training-only difference, like the losses below
    if "loss" in params:
        # fastbp's own losses map to scikit-learn's loss with the same output
        # activation (a training-only difference), so predictions match.
        params["loss"] = LOSSES[network.loss].sklearn
    model = target(**params)
    model.coefs_ = [np.array(coef) for coef in network.coefs]
    model.intercepts_ = [np.array(intercept) for intercept in network.intercepts]
    for name in _SHARED_ATTRIBUTES:
        if name in state:
            value = state[name]
            setattr(model, name, list(value) if isinstance(value, list) else value)
    model.out_activation_ = network.out_activation
    # What scikit-learn's partial_fit and warm start read besides (they continue with
    # fresh optimizer state, as from_sklearn does the other way).
    model._no_improvement_count = state.get("_no_improvement_count", 0)
    if state.get("best_loss_") is None and not getattr(model, "early_stopping", False):
        model.best_loss_ = np.inf
    if getattr(model, "loss_curve_", None) is None and model.solver != "lbfgs":
        model.loss_curve_ = []
    model.t_ = state.get("t_", 0)
    return model


def from_sklearn(estimator_class, model):
    """A fitted ``estimator_class`` (fastbp) with a fitted scikit-learn MLP's weights."""
    # By the estimator's own tags (a subclass of BackpropClassifier is a classifier).
    expected = MLPClassifier if is_classifier(estimator_class()) else MLPRegressor
    if not isinstance(model, expected):
        raise TypeError(
            f"{estimator_class.__name__}.from_sklearn takes a fitted {expected.__name__}, "
            f"got {type(model).__name__}."
        )
    check_is_fitted(model)
    estimator = estimator_class(**model.get_params())
    for name in _SHARED_ATTRIBUTES:
        if hasattr(model, name):
            value = getattr(model, name)
            setattr(estimator, name, list(value) if isinstance(value, list) else value)
    # Checked, then copied into one flat buffer behind coefs_ and intercepts_.
    estimator._set_weights(model.coefs_, model.intercepts_)
    estimator._best_params = estimator._model.params.copy()
    estimator._no_improvement_count = 0
    if not hasattr(estimator, "loss_curve_") and estimator.solver != "lbfgs":
        estimator.loss_curve_ = []
    return estimator
