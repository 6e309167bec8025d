"""An independent, plain-numpy forward pass and loss, written from the textbook
formulas, to check the compiled kernels against."""

import numpy as np

HIDDEN = {
    "identity": lambda z: z,
    "logistic": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


OUTPUT = {
    "squared_error": lambda z: z,
    "poisson": np.exp,
    "log_loss": _softmax,
    "binary_log_loss": lambda z: 1 / (1 + np.exp(-z)),
}


def forward(coefs, intercepts, X, activation, loss):
    """``activation``: a name in HIDDEN, or the function itself."""
    hidden = HIDDEN[activation] if isinstance(activation, str) else activation
    a = X
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ W + b
        a = OUTPUT[loss](z) if i == len(coefs) - 1 else hidden(z)
    return a


def objective(coefs, intercepts, X, y, sample_weight, activation, loss, alpha):
    """Weighted mean per-sample loss (summed over outputs) plus the L2 penalty."""
    p = forward(coefs, intercepts, X, activation, loss)
    eps = np.finfo(p.dtype).eps
    if loss == "squared_error":
        per_sample = 0.5 * ((y - p) ** 2).sum(axis=1)
    elif loss == "poisson":
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / p), 0.0)
        per_sample = (ylogy - y + p).sum(axis=1)
    elif loss == "log_loss":
        per_sample = -(y * np.log(np.clip(p, eps, 1 - eps))).sum(axis=1)
    else:
        q = np.clip(p, eps, 1 - eps)
        per_sample = -(y * np.log(q) + (1 - y) * np.log(1 - q)).sum(axis=1)
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    penalty = 0.5 * alpha * sum((W**2).sum() for W in coefs)
    return (per_sample @ w + penalty) / w.sum()


def finite_difference_gradient(objective, params, step=1e-6):
    """Central differences of ``objective(params)[0]`` along every parameter."""
    numeric = np.empty_like(params)
    for k in range(params.size):
        shifted = params.copy()
        shifted[k] += step
        plus = objective(shifted)[0]
        shifted[k] -= 2 * step
        numeric[k] = (plus - objective(shifted)[0]) / (2 * step)
    return numeric
