"""The losses: one table row each, and their numpy formulas.

A row says everything outside the compiled kernels needs to know of a loss: the
kernels' code, the output activation it pairs with, the estimator parameters it
reads (each a slot of the kernels' ``loss_params`` vector), what scikit-learn's MLP
calls the same model (for ``to_sklearn``: same output activation, same predictions),
and its per-sample formula in numpy (for the validation loss of early stopping and
for the tests; training uses the compiled one,
``fastbp._layer_math._output_delta_and_loss``).

Adding a loss: a code in ``_kernel_codes.LOSS_CODES`` and its output activation
in ``_kernel_codes.LOSS_OUTPUT_ACTIVATIONS``, its branch in
``_layer_math._output_delta_and_loss``, a row here, its parameter in the estimator's
``__init__`` and constraints when it has one (see docs/user_guide/extending.rst);
the gradient and loss tests read this table.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import xlogy

from fastbp import _kernel_codes


class LossParameter(NamedTuple):
    slot: int  #: index in the kernels' ``loss_params`` vector
    default: float


#: Estimator parameters that losses read, by name.
LOSS_PARAMETERS = {
    "huber_delta": LossParameter(_kernel_codes.P_HUBER_DELTA, 1.0),
    "quantile": LossParameter(_kernel_codes.P_QUANTILE, 0.5),
}


class Loss(NamedTuple):
    code: int  #: the kernels' code
    classification: bool
    parameters: tuple  #: names in LOSS_PARAMETERS that it reads
    sklearn: str  #: the scikit-learn MLP loss with the same output (predictions)
    #: (prediction, target, parameters, eps) -> per-sample, per-output losses, where
    #: eps is the machine epsilon of the outputs' dtype (the probability clip)
    per_sample: Callable

    @property
    def output_activation(self):
        """``out_activation_``: the loss's partner, named in
        ``_kernel_codes.LOSS_OUTPUT_ACTIVATIONS`` (which the kernels read)."""
        return _kernel_codes.LOSS_OUTPUT_ACTIVATIONS[_NAMES[self.code]]


_NAMES = {code: name for name, code in _kernel_codes.LOSS_CODES.items()}


def _squared_error(p, t, parameters, eps):
    return 0.5 * (t - p) ** 2


def _poisson(p, t, parameters, eps):
    with np.errstate(divide="ignore", invalid="ignore"):
        return xlogy(t, t / p) - t + p


def _log_loss(p, t, parameters, eps):
    return -xlogy(t, np.clip(p, eps, 1 - eps))


def _binary_log_loss(p, t, parameters, eps):
    q = np.clip(p, eps, 1 - eps)
    return -(xlogy(t, q) + xlogy(1 - t, 1 - q))


def _absolute_error(p, t, parameters, eps):
    return np.abs(p - t)


def _huber(p, t, parameters, eps):
    delta = parameters["huber_delta"]
    size = np.abs(p - t)
    return np.where(size <= delta, 0.5 * size**2, delta * (size - 0.5 * delta))


def _quantile(p, t, parameters, eps):
    q = parameters["quantile"]
    residual = t - p
    return np.maximum(q * residual, (q - 1) * residual)


LOSSES = {
    "squared_error": Loss(_kernel_codes.SQUARED_ERROR, False, (), "squared_error", _squared_error),
    "poisson": Loss(_kernel_codes.POISSON, False, (), "poisson", _poisson),
    "log_loss": Loss(_kernel_codes.LOG_LOSS, True, (), "log_loss", _log_loss),
    "binary_log_loss": Loss(_kernel_codes.BINARY_LOG_LOSS, True, (), "log_loss", _binary_log_loss),
    "absolute_error": Loss(
        _kernel_codes.ABSOLUTE_ERROR, False, (), "squared_error", _absolute_error
    ),
    "huber": Loss(_kernel_codes.HUBER, False, ("huber_delta",), "squared_error", _huber),
    "quantile": Loss(_kernel_codes.QUANTILE, False, ("quantile",), "squared_error", _quantile),
}

#: The ``loss`` options of BackpropRegressor.
REGRESSION_LOSSES = tuple(name for name, loss in LOSSES.items() if not loss.classification)


def loss_parameters(source):
    """The loss parameters of an estimator (or a dict), each with its default."""
    get = source.get if isinstance(source, dict) else functools.partial(getattr, source)
    return {name: float(get(name, p.default)) for name, p in LOSS_PARAMETERS.items()}


def loss_params_vector(parameters, dtype):
    """The kernels' ``loss_params`` vector (``P_*`` layout) from a dict of them
    (missing ones take their defaults)."""
    parameters = loss_parameters(parameters)
    vector = np.empty(_kernel_codes.N_LOSS_PARAMS, dtype=dtype)
    for name, parameter in LOSS_PARAMETERS.items():
        vector[parameter.slot] = parameters[name]
    return vector


def output_loss(outputs, targets, sample_weight, loss, parameters=None):
    """Weighted mean over samples of the per-sample loss summed over outputs.

    Parameters
    ----------
    outputs : ndarray of shape (n_samples, n_outputs)
        Output-layer activations (probabilities, rates or values).
    targets : ndarray of shape (n_samples, n_outputs)
        Targets as the output layer sees them (one-hot or 0/1 for classifiers).
    sample_weight : ndarray of shape (n_samples,) or None
    loss : str
        A key of :data:`LOSSES`.
    parameters : dict, default=None
        Loss parameters by name (see :data:`LOSS_PARAMETERS`); defaults otherwise.

    Returns
    -------
    loss : numpy.float64
    """
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}.")
    p = outputs.astype(np.float64)
    t = np.asarray(targets, dtype=np.float64).reshape(p.shape)
    eps = np.finfo(outputs.dtype).eps
    per_output = LOSSES[loss].per_sample(p, t, loss_parameters(parameters or {}), eps)
    per_sample = per_output.sum(axis=1)
    return np.float64(np.average(per_sample, weights=sample_weight))
