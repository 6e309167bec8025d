"""The losses of the kernels, in numpy, from the network's outputs (for reporting,
as the validation loss of early stopping; training uses the compiled ones)."""

import numpy as np
from scipy.special import xlogy


def output_loss(outputs, targets, sample_weight, loss, huber_delta=1.0):
    """Weighted mean over samples of the per-sample loss summed over outputs.

    Parameters
    ----------
    outputs : ndarray of shape (n_samples, n_outputs)
        Output-layer activations (probabilities, rates or values).
    targets : ndarray of shape (n_samples, n_outputs)
        Targets as the output layer sees them (one-hot or 0/1 for classifiers).
    sample_weight : ndarray of shape (n_samples,) or None
    loss : str
        A name of ``fastbp._kernels.LOSS_CODES``.
    huber_delta : float, default=1.0

    Returns
    -------
    loss : numpy.float64
    """
    p = outputs.astype(np.float64)
    t = np.asarray(targets, dtype=np.float64).reshape(p.shape)
    eps = np.finfo(outputs.dtype).eps
    if loss == "squared_error":
        per_sample = 0.5 * ((t - p) ** 2).sum(axis=1)
    elif loss == "poisson":
        with np.errstate(divide="ignore", invalid="ignore"):
            per_sample = (xlogy(t, t / p) - t + p).sum(axis=1)
    elif loss == "log_loss":
        per_sample = -xlogy(t, np.clip(p, eps, 1 - eps)).sum(axis=1)
    elif loss == "binary_log_loss":
        q = np.clip(p, eps, 1 - eps)
        per_sample = -(xlogy(t, q) + xlogy(1 - t, 1 - q)).sum(axis=1)
    elif loss == "absolute_error":
        per_sample = np.abs(p - t).sum(axis=1)
    elif loss == "huber":
        size = np.abs(p - t)
        quadratic = size <= huber_delta
        per_sample = np.where(
            quadratic, 0.5 * size**2, huber_delta * (size - 0.5 * huber_delta)
        ).sum(axis=1)
    else:
        raise ValueError(f"Unknown loss {loss!r}.")
    return np.float64(np.average(per_sample, weights=sample_weight))
