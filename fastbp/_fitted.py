"""The fitted network that prediction reads: one immutable snapshot.

Everything a prediction kernel indexes with (the flat parameters, the layer sizes,
the activation and loss codes) and everything that turns its outputs into answers
(the output activation, the classes) lives in one :class:`FittedNetwork`. Fitting
builds a complete new snapshot and publishes it with :func:`publish`; a prediction
takes one reference to the snapshot and uses nothing else. A prediction that runs
while another thread refits the same estimator therefore sees the old model or the
new one, never a mix of the two (a mix is what let a kernel read past the end of a
parameter buffer).

Weights a user assigns to ``coefs_`` / ``intercepts_`` are honoured: the snapshot
remembers the exact array objects it published, and when those lists no longer hold
them, :func:`from_arrays` derives every shape from the new arrays and checks them
before any kernel sees them.
"""

import threading
from typing import NamedTuple

import numpy as np

from fastbp._common_path import COMMON_LOSSES
from fastbp._network import (
    NetworkLayout,
    needs_rare_paths,
    network,
)

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
    whether a hidden activation needs the full prediction kernel;
    ``common_path`` whether the common-path kernel can predict with it (dense input);
    ``predict_arguments`` what :func:`fastbp._kernels.predict_forward` takes after
    X and the rare paths.
    """

    params: np.ndarray
    layout: NetworkLayout
    net: tuple
    loss_code: int
    coefs: tuple
    intercepts: tuple
    decoding: object
    rare_activations: bool
    common_path: bool
    predict_arguments: tuple
    n_features: int
    n_outputs: int

    @property
    def dtype(self):
        return self.params.dtype

    def describes(self, coefs, intercepts):
        """True when ``coefs`` / ``intercepts`` are exactly the published arrays."""
        if (
            type(coefs) is not list
            or type(intercepts) is not list
            or len(coefs) != len(self.coefs)
            or len(intercepts) != len(self.intercepts)
        ):
            return False
        for published, current in zip(self.coefs, coefs):
            if published is not current:
                return False
        for published, current in zip(self.intercepts, intercepts):
            if published is not current:
                return False
        return True


def build(layout, params, hidden_codes, dropout_rates, loss_code, decoding):
    """A snapshot over ``params`` (which it adopts, not copies)."""
    if params.shape != (layout.n_params,):
        raise ValueError(
            f"The parameter vector has shape {params.shape}; the layout "
            f"{layout.layer_units.tolist()} needs ({layout.n_params},)."
        )
    coefs, intercepts = layout.views(params)
    net = network(layout, hidden_codes, dropout_rates)
    rare_activations = needs_rare_paths(net, is_sparse=False, training=False)
    # The common-path kernel can predict (dense input) with this network's options.
    common_path = not rare_activations and int(loss_code) in COMMON_LOSSES
    # What predict_forward takes after X and the rare paths, in its order.
    predict_arguments = (params, *net, int(loss_code))
    return FittedNetwork(
        params, layout, net, int(loss_code), tuple(coefs), tuple(intercepts), decoding,
        rare_activations, common_path, predict_arguments, int(layout.layer_units[0]),
        int(layout.layer_units[-1]),
    )  # fmt: skip


def publish(estimator, model):
    """Make ``model`` the estimator's fitted network, ``coefs_`` and ``intercepts_``.

    The snapshot is assigned first: a prediction that then reads the lists of the
    previous model sees that they do not match and waits for the lock, by which time
    the new lists are in place too.
    """
    with _PUBLISH_LOCK:
        estimator._model = model
        estimator.coefs_ = list(model.coefs)
        estimator.intercepts_ = list(model.intercepts)


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
        model = state.get("_model")
        coefs, intercepts = state.get("coefs_"), state.get("intercepts_")
        if model is not None and model.describes(coefs, intercepts):
            return model  # a concurrent fit published while we waited
        model = rebuild(coefs, intercepts)
        publish(estimator, model)
        return model


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
