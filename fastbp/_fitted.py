"""The fitted network that prediction reads: one immutable snapshot.

Everything a prediction kernel indexes with (the flat parameters, the layer sizes,
the activation and loss codes) and everything that turns its outputs into answers
(the output activation, the classes) lives in one :class:`FittedNetwork`. Fitting
builds a complete new snapshot and publishes it with :func:`publish`; a prediction
takes one reference to the snapshot and uses nothing else. A prediction that runs
while another thread refits the same estimator therefore sees the old model or the
new one, never a mix of the two (a mix is what let a kernel read past the end of a
parameter buffer).

The snapshot also holds the options the network was fitted with (its hidden
activations and its loss, hence its output activation): a fitted model predicts with
those, whatever ``set_params`` says afterwards (parameters affect the next fit only),
and every reader of the model (prediction, persistence, ``to_sklearn``, ONNX) reads
them from here.

Weights a user assigns to ``coefs_`` / ``intercepts_`` are honoured: the snapshot
remembers the exact array objects it published, and when those lists no longer hold
them, :func:`current` derives every shape from the new arrays and checks them
before any kernel sees them.

Fitting works on a copy of the estimator (:func:`training`) and, when it succeeds,
replaces the estimator's whole attribute dict by the copy's in one reference swap,
after :func:`check_state` has checked every invariant between the fitted attributes.
A reader (a prediction, a pickle) that takes the dict once therefore sees the old
model or the new one, never a mix; a failed call leaves the estimator untouched; and
fits of one estimator from several threads take turns (one lock per estimator).
Loading (pickle, joblib, skops) goes through :func:`check_state` too, so a file
cannot smuggle in an inconsistent state.
"""

import threading
import weakref
from contextlib import contextmanager
from operator import is_
from typing import NamedTuple

import numpy as np

from fastbp._kernel_codes import ACTIVATION_CODES, LOSS_CODES
from fastbp._losses import LOSSES
from fastbp._network import (
    NetworkLayout,
    needs_rare_paths,
    network,
)
from fastbp._optimizers import INTEGERS, REALS, per_hidden_layer

# Taken only to publish a snapshot (with the public coefs_/intercepts_ lists beside
# it) and to rebuild one from user-assigned arrays; never on the prediction fast path.
_PUBLISH_LOCK = threading.RLock()


class FittedNetwork(NamedTuple):
    """A complete, self-consistent description of a fitted network.

    ``params`` is the flat parameter vector of ``layout``; ``net`` the kernels' view
    of the layout (see :func:`fastbp._network.network_tuple`); ``coefs`` and
    ``intercepts`` the arrays published as ``coefs_`` / ``intercepts_`` (views into
    ``params``); ``decoding`` what the estimator needs to turn outputs into answers
    (for a classifier: the label binarizer and the classes); ``rare_activations``
    whether a hidden activation needs the rare paths in prediction (the routing
    decision, :func:`fastbp._common_path.takes_common_path`, for dense input, made
    once per model); ``predict_arguments`` what :func:`fastbp._kernels.predict_forward` takes after
    X and the rare paths; ``compiled`` holds one entry, None until the first prediction
    of plain rows finds the compiled variant of that kernel that these arguments have
    (:func:`fastbp._compiled_call.compiled_variant`), which later ones call directly.
    """

    params: np.ndarray
    layout: NetworkLayout
    net: tuple
    loss_code: int
    coefs: tuple
    intercepts: tuple
    decoding: object
    rare_activations: bool
    predict_arguments: tuple
    n_features: int
    n_outputs: int
    activation: object  #: the ``activation`` setting fitted with: a name or a tuple
    activations: tuple  #: the hidden layers' activation names, one per hidden layer
    loss: str  #: the kernels' loss name (a key of LOSSES), as fitted
    compiled: list  #: [the prediction kernel's variant for plain rows, or None]

    @property
    def dtype(self):
        return self.params.dtype

    @property
    def out_activation(self):
        """The output activation the loss pairs with (``out_activation_``)."""
        return LOSSES[self.loss].output_activation

    def options(self):
        """The fitted options as plain values (what persistence saves)."""
        activation = self.activation
        return {
            "activation": activation if isinstance(activation, str) else list(activation),
            "loss": self.loss,
        }

    def describes(self, coefs, intercepts):
        """True when ``coefs`` / ``intercepts`` are exactly the published arrays (the
        per-prediction check that no array was assigned since: identity only, in C)."""
        return (
            type(coefs) is list
            and type(intercepts) is list
            and len(coefs) == len(self.coefs)
            and len(intercepts) == len(self.intercepts)
            and all(map(is_, coefs, self.coefs))
            and all(map(is_, intercepts, self.intercepts))
        )


def build(layout, params, activation, dropout_rates, loss, decoding):
    """A snapshot over ``params`` (which it adopts, not copies).

    ``activation`` is the estimator's setting (one name, or one per hidden layer),
    ``dropout_rates`` has one rate per layer (edges 0), ``loss`` is a key of
    ``LOSSES``; each is checked against the layout (ValueError).
    """
    if not isinstance(params, np.ndarray) or params.dtype not in (np.float32, np.float64):
        raise ValueError("The parameters must be a float32 or float64 array.")
    if params.shape != (layout.n_params,):
        raise ValueError(
            f"The parameter vector has shape {params.shape}; the layout "
            f"{layout.layer_units.tolist()} needs ({layout.n_params},)."
        )
    if not isinstance(activation, str):
        if not isinstance(activation, (list, tuple)):
            raise ValueError(f"activation must be a name or a list of names, got {activation!r}.")
        activation = tuple(activation)
    activations = tuple(per_hidden_layer(activation, layout.n_layers, None)[1:-1])
    for name in activations:
        if not isinstance(name, str) or name not in ACTIVATION_CODES:
            raise ValueError(
                f"Unknown activation {name!r}; choose from {sorted(ACTIVATION_CODES)}."
            )
    if not isinstance(loss, str) or loss not in LOSS_CODES:
        raise ValueError(f"Unknown loss {loss!r}; choose from {sorted(LOSS_CODES)}.")
    loss_code = LOSS_CODES[loss]
    hidden_codes = [0, *(ACTIVATION_CODES[name] for name in activations), 0]
    coefs, intercepts = layout.views(params)
    net = network(layout, hidden_codes, dropout_rates)
    rare_activations = needs_rare_paths(net, is_sparse=False, training=False)
    # What predict_forward takes after X and the rare paths, in its order.
    predict_arguments = (params, *net, loss_code)
    return FittedNetwork(
        params, layout, net, loss_code, tuple(coefs), tuple(intercepts), decoding,
        rare_activations, predict_arguments, int(layout.layer_units[0]),
        int(layout.layer_units[-1]), activation, activations, loss, [None],
    )  # fmt: skip


def publish_lock():
    """The lock under which snapshots are published and attribute dicts swapped: a
    reader that must see one consistent state (persistence) holds it."""
    return _PUBLISH_LOCK


def publish(estimator, model):
    """Make ``model`` the estimator's fitted network, ``coefs_`` and ``intercepts_``
    (and the attributes that describe its shape), in the estimator's current dict.

    The snapshot is assigned first: a prediction that then reads the lists of the
    previous model sees that they do not match and waits for the lock, by which time
    the new lists are in place too. Optimizer state and kept best parameters of
    another layout belong to weights that are gone: they are dropped, so the next
    ``partial_fit`` or warm start starts them afresh.
    """
    with _PUBLISH_LOCK:
        state = estimator.__dict__
        state["_model"] = model
        state["coefs_"] = list(model.coefs)
        state["intercepts_"] = list(model.intercepts)
        state["n_outputs_"] = model.n_outputs
        state["n_layers_"] = model.layout.n_layers
        state["out_activation_"] = model.out_activation
        optimizer = state.get("_optimizer")
        if optimizer is not None and optimizer.problem(model.layout.n_params, model.dtype):
            del state["_optimizer"]
        best = state.get("_best_params")
        if best is not None and _array_problem(best, model.layout.n_params, model.dtype):
            del state["_best_params"]


def current(estimator, rebuild):
    """The snapshot to predict with.

    The published one while ``coefs_`` / ``intercepts_`` still hold its arrays
    (a few identity checks); otherwise ``rebuild(coefs, intercepts)`` makes a checked
    snapshot from the arrays now there, which is published in their place (as views
    of one new flat buffer, with the same values).
    """
    state = estimator.__dict__
    model = state.get("_model")
    if model is not None and model.describes(state.get("coefs_"), state.get("intercepts_")):
        return model
    with _PUBLISH_LOCK:
        state = estimator.__dict__  # a fit may have committed a new dict meanwhile
        model = state.get("_model")
        coefs, intercepts = state.get("coefs_"), state.get("intercepts_")
        if model is not None and model.describes(coefs, intercepts):
            return model
        model = rebuild(coefs, intercepts)
        publish(estimator, model)
        return model


# ---------------------------------------------------------------------------------
# Fitting: on a copy, committed by one swap of the attribute dict.
# ---------------------------------------------------------------------------------
_FIT_LOCKS = weakref.WeakKeyDictionary()
_FIT_LOCKS_GUARD = threading.Lock()


def _fit_lock(estimator):
    """The estimator's own lock: fits of one estimator take turns (a fit and a
    partial_fit from two threads would otherwise both start from the same state,
    and one of them would be lost)."""
    with _FIT_LOCKS_GUARD:
        lock = _FIT_LOCKS.get(estimator)
        if lock is None:
            lock = _FIT_LOCKS[estimator] = threading.RLock()
        return lock


@contextmanager
def training(estimator):
    """Yield a copy of ``estimator`` to train; commit it when the block succeeds.

    The copy shares the estimator's arrays: training never writes into an array it
    did not create in the same call (parameters, optimizer state and curves are
    copied first). Nothing of the estimator changes until the commit, so a failed
    call leaves it exactly as it was, and predictions meanwhile use the old model.
    """
    with _fit_lock(estimator):
        with _PUBLISH_LOCK:
            trainee = object.__new__(type(estimator))
            trainee.__dict__.update(estimator.__dict__)
        yield trainee
        commit(estimator, trainee.__dict__)


def commit(estimator, state):
    """Check ``state`` (a complete attribute dict) and make it the estimator's, in
    one reference swap."""
    state = dict(state)
    # The curves were appended to by this fit's own code: checking every entry again
    # at each partial_fit would cost time in proportion to the whole history.
    check_state(state, curves=False)
    with _PUBLISH_LOCK:
        estimator.__dict__ = state


def _array_problem(array, length, dtype):
    """What is wrong with a state array that must be a flat vector of ``length``
    elements of ``dtype``, or None."""
    if not isinstance(array, np.ndarray):
        return f"is a {type(array).__name__}, not an array"
    if array.shape != (length,):
        return f"has shape {array.shape}; the network needs ({length},)"
    if array.dtype != dtype:
        return f"has dtype {array.dtype}; the network's parameters are {np.dtype(dtype)}"
    return None


def _check_count(state, name, expected=None):
    value = state.get(name)
    if value is None:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, INTEGERS) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")
    if expected is not None and value != expected:
        raise ValueError(f"{name} is {value!r}, but the fitted network has {expected}.")


def _check_number(state, name):
    value = state.get(name)
    if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, REALS)):
        raise ValueError(f"{name} must be a number or None; got {value!r}.")


def _check_numbers(state, name):
    values = state.get(name)
    if values is None:
        return
    if not isinstance(values, list):
        raise ValueError(f"{name} must be a list of numbers; got {type(values).__name__}.")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, REALS):
            raise ValueError(f"{name} must hold numbers only; it holds {value!r}.")


def check_state(state, curves=True):
    """Raise a ValueError naming the first fitted attribute of ``state`` (an
    estimator's attribute dict) that contradicts the fitted network or is not of its
    type. An unfitted state (no ``coefs_``) passes. ``curves=False`` skips the
    entries of the loss and score curves (a loaded state has them all checked)."""
    model = state.get("_model")
    if model is None:
        if "coefs_" in state or "intercepts_" in state:
            raise ValueError("coefs_ and intercepts_ are set but no network was built from them.")
        return
    if not isinstance(model, FittedNetwork):
        raise ValueError(f"_model must be a fitted network, got {type(model).__name__}.")
    if not model.describes(state.get("coefs_"), state.get("intercepts_")):
        raise ValueError("coefs_ and intercepts_ are not the fitted network's arrays.")
    n_params, dtype = model.layout.n_params, model.dtype
    _check_count(state, "n_features_in_", model.n_features)
    _check_count(state, "n_outputs_", model.n_outputs)
    _check_count(state, "n_layers_", model.layout.n_layers)
    for name in ("n_iter_", "t_", "_no_improvement_count"):
        _check_count(state, name)
    out_activation = state.get("out_activation_")
    if out_activation is not None and out_activation != model.out_activation:
        raise ValueError(
            f"out_activation_ is {out_activation!r}, but the network was fitted with the "
            f"{model.loss!r} loss, whose output activation is {model.out_activation!r}."
        )
    for name in ("loss_", "best_loss_", "best_validation_score_"):
        _check_number(state, name)
    for name in ("loss_curve_", "validation_scores_", "validation_loss_curve_"):
        if curves:
            _check_numbers(state, name)
    names = state.get("feature_names_in_")
    if names is not None and (
        not isinstance(names, np.ndarray) or names.shape != (model.n_features,)
    ):
        raise ValueError(f"feature_names_in_ must be an array of {model.n_features} names.")
    best = state.get("_best_params")
    if best is not None:
        problem = _array_problem(best, n_params, dtype)
        if problem:
            raise ValueError(f"The kept best parameters (_best_params) {problem}.")
    optimizer = state.get("_optimizer")
    if optimizer is not None:
        problem = (
            optimizer.problem(n_params, dtype)
            if hasattr(optimizer, "problem")
            else (f"is a {type(optimizer).__name__}")
        )
        if problem:
            raise ValueError(f"The optimizer state does not fit the network: it {problem}.")
    if model.decoding is not None:
        binarizer, classes = model.decoding
        if state.get("classes_") is not classes or state.get("_label_binarizer") is not binarizer:
            raise ValueError("classes_ and the label binarizer are not the fitted network's.")


def checked_layer_units(coefs, intercepts, n_features):
    """Layer sizes implied by user-supplied weights, and the arrays as floats.

    Raises a ValueError that names the first array that does not fit: consecutive
    coefficient matrices must chain, each intercept must match its layer, and the
    first layer must take ``n_features`` inputs.
    """
    if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)):
        raise ValueError(
            "coefs_ and intercepts_ must be lists of arrays (one per layer); got "
            f"{type(coefs).__name__} and {type(intercepts).__name__}."
        )
    if len(coefs) == 0 or len(coefs) != len(intercepts):
        raise ValueError(
            f"coefs_ has {len(coefs)} array(s) and intercepts_ {len(intercepts)}: they "
            "need one entry per layer each (at least one)."
        )
    floats_coefs, floats_intercepts = [], []
    for name, arrays, out in (
        ("coefs_", coefs, floats_coefs),
        ("intercepts_", intercepts, floats_intercepts),
    ):
        for index, array in enumerate(arrays):
            try:
                array = np.asarray(array)
                if array.dtype not in (np.float32, np.float64):
                    array = array.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}[{index}] is not an array of numbers: {exc}") from None
            if not np.isfinite(array).all():
                raise ValueError(f"{name}[{index}] contains NaN or infinity.")
            out.append(array)
    units = [n_features]
    for index, (coef, intercept) in enumerate(zip(floats_coefs, floats_intercepts)):
        if coef.ndim != 2:
            raise ValueError(
                f"coefs_[{index}] must be a 2-D matrix (fan_in, fan_out); it has shape "
                f"{coef.shape}."
            )
        if coef.shape[0] != units[-1]:
            what = "the number of features" if index == 0 else f"coefs_[{index - 1}]'s outputs"
            raise ValueError(
                f"coefs_[{index}] has shape {coef.shape}, but layer {index} receives "
                f"{units[-1]} inputs ({what}): its first dimension must be {units[-1]}."
            )
        if coef.shape[1] == 0:
            raise ValueError(f"coefs_[{index}] has shape {coef.shape}: a layer needs units.")
        if intercept.shape != (coef.shape[1],):
            raise ValueError(
                f"intercepts_[{index}] has shape {intercept.shape}, but coefs_[{index}] "
                f"has {coef.shape[1]} outputs: it must have shape ({coef.shape[1]},)."
            )
        units.append(coef.shape[1])
    return units, floats_coefs, floats_intercepts
