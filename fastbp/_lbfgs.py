"""L-BFGS: the fit, and the full-batch objective it minimises, chosen by a memory
budget.

L-BFGS's line search amplifies differences in the last bits of the loss and the
gradient: an objective that rounds differently from scikit-learn's drifts to other
iterates within a hundred iterations, and ends with another ``n_iter_`` and other
weights. So while the whole batch fits :data:`EXACT_BUDGET_BYTES`, the objective is
computed with scikit-learn's own arithmetic — its activation, derivative and loss
functions, its order of operations, the same GEMM shapes and numpy reductions — and
L-BFGS follows scikit-learn's iterates. Above the budget (for instance 60000 x 784
inputs into 256 units: ~1.5 GB of activations and deltas, which scikit-learn
allocates), the compiled kernel computes the same objective in row chunks, in
bounded memory; its results then agree with scikit-learn's only closely.
"""

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from fastbp._callbacks import fit_callbacks
from fastbp._logging import LOGGER, detail_wanted
from fastbp._losses import loss_parameters
from fastbp._optimizers import FullBatchObjective
from fastbp._stochastic import divergence_error
from fastbp._warnings import warn_as_sklearn_mlp

try:  # scikit-learn's own functions: their rounding is the point
    from sklearn.neural_network._base import ACTIVATIONS, DERIVATIVES, LOSS_FUNCTIONS
    from sklearn.utils.extmath import safe_sparse_dot
except ImportError:  # pragma: no cover - a scikit-learn that moved them
    ACTIVATIONS = DERIVATIVES = LOSS_FUNCTIONS = {}

#: Largest workspace (activations, deltas and their temporaries for every sample)
#: for which L-BFGS uses scikit-learn's arithmetic; above it, the chunked kernel.
EXACT_BUDGET_BYTES = 64 * 2**20

# Rows per chunk of the compiled full-batch gradient: values per chunk, divided by
# the units of all layers, bounds its workspace whatever the data size.
_CHUNK_VALUES = 1 << 21


def _squared_loss_summed(y_true, y_pred, sample_weight=None):
    """scikit-learn's squared loss, summed over outputs instead of averaged: the
    loss whose gradient the backward pass computes (identical for one output)."""
    return 0.5 * np.average((y_true - y_pred) ** 2, weights=sample_weight, axis=0).sum()


def exact_workspace_bytes(layer_units, n_samples, itemsize):
    """Bytes scikit-learn's arithmetic holds at once: activations, deltas and one
    temporary per layer, for every sample."""
    return 3 * n_samples * int(np.sum(layer_units[1:])) * itemsize


def full_batch_objective(layout, X, y, sample_weight, activations, loss, alpha, loss_parameters):
    """The objective for L-BFGS: scikit-learn's arithmetic within the budget and for
    the options scikit-learn has, the chunked compiled kernel otherwise.

    ``activations`` holds one name per hidden layer; ``y`` is 2-D.
    """
    n_samples = X.shape[0]
    itemsize = np.dtype(X.dtype).itemsize
    uniform = len(set(activations)) <= 1
    name = activations[0] if activations else "identity"
    if (
        uniform
        and name in DERIVATIVES
        and loss in LOSS_FUNCTIONS
        and exact_workspace_bytes(layout.layer_units, n_samples, itemsize) <= EXACT_BUDGET_BYTES
    ):
        return SklearnArithmeticObjective(layout, X, y, sample_weight, name, loss, alpha)
    chunk_rows = max(256, _CHUNK_VALUES // int(layout.layer_units.sum()))
    return FullBatchObjective(
        layout, X, y, sample_weight, activations, loss, alpha, chunk_rows,
        loss_parameters=loss_parameters,
    )  # fmt: skip


def fit_lbfgs(estimator, model, X, y, sample_weight):
    """Train ``model`` (a network snapshot of ``estimator``) in place with scipy's
    L-BFGS-B on the full batch, as scikit-learn's ``_fit_lbfgs`` does."""
    layout, params = model.layout, model.params
    activations = estimator._hidden_activations(layout.n_layers)
    objective = full_batch_objective(
        layout, X, y, sample_weight, activations[1:-1], estimator._loss_name(),
        estimator.alpha, loss_parameters=loss_parameters(estimator),
    )  # fmt: skip

    def loss_and_gradient(packed):
        params[:] = packed
        loss, gradient = objective(params)
        return loss, gradient.astype(np.float64)

    callback = None
    callbacks = fit_callbacks(estimator)
    # scikit-learn prints nothing during L-BFGS at any verbose (scipy >= 1.15 dropped
    # iprint), and neither does fastbp; each iteration's loss goes to the "fastbp"
    # logger at DEBUG level instead.
    log_iterations = detail_wanted()
    if log_iterations or callbacks.listening:
        iteration = [0]

        def callback(intermediate_result):
            iteration[0] += 1
            if log_iterations:
                LOGGER.debug(
                    "L-BFGS iteration %d: loss %.8f", iteration[0], intermediate_result.fun
                )
            if callbacks.listening:
                params[:] = intermediate_result.x  # the next evaluation resets it
                callbacks.task_begins("lbfgs-iter")
                if callbacks.task_ends(estimator._snapshot_attributes(model)):
                    raise StopIteration  # a callback asked to stop

    result = scipy.optimize.minimize(
        loss_and_gradient,
        params.astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        callback=callback,
        options={"maxfun": estimator.max_fun, "maxiter": estimator.max_iter,
                 "gtol": estimator.tol},
    )  # fmt: skip
    if not np.isfinite(result.fun):
        raise divergence_error(f"in L-BFGS iteration {result.nit}")
    if result.status != 0:
        message = result.message
        if isinstance(message, bytes):
            message = message.decode("latin1")
        warn_as_sklearn_mlp(
            f"lbfgs failed to converge after {result.nit} iteration(s) "
            f"(status={result.status}):\n{message}\n\nIncrease the number of "
            f"iterations to improve the convergence (max_iter={estimator.max_iter}).\n"
            "You might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html",
            ConvergenceWarning,
            stacklevel=6,  # fit -> _fit -> _fit_unguarded -> here, under _fit_context
        )
    estimator.n_iter_ = min(result.nit, estimator.max_iter)
    estimator.loss_ = estimator._loss_type(params.dtype)(result.fun)
    params[:] = result.x


class SklearnArithmeticObjective:
    """Loss and gradient as scikit-learn's ``MLP._loss_grad_lbfgs`` computes them.

    Written operation for operation after scikit-learn's ``_backprop``: forward with
    ``safe_sparse_dot`` and in-place activations, the loss from ``LOSS_FUNCTIONS``
    plus ``0.5 * alpha * sum(w . w) / weight_sum``, the output delta
    ``prediction - y`` (times the sample weights), then layer by layer
    ``a^T delta``, ``+ alpha * W``, ``/ weight_sum`` and ``sum(delta, axis=0) /
    weight_sum``. Multi-output squared error sums over outputs (see
    :func:`_squared_loss_summed`).

    Parameters
    ----------
    layout : NetworkLayout
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,) or None
    activation : str
        One of scikit-learn's hidden activations.
    loss : str
        'squared_error', 'poisson', 'log_loss' or 'binary_log_loss'.
    alpha : float
    """

    def __init__(self, layout, X, y, sample_weight, activation, loss, alpha):
        self.layout = layout
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.activation = activation
        self.output_activation = {
            "squared_error": "identity",
            "poisson": "exp",
            "log_loss": "softmax",
            "binary_log_loss": "logistic",
        }[loss]
        self.loss_function = (
            _squared_loss_summed if loss == "squared_error" else LOSS_FUNCTIONS[loss]
        )
        self.alpha = alpha
        self.weight_sum = X.shape[0] if sample_weight is None else sample_weight.sum()

    def __call__(self, params):
        """Return ``(loss, gradient)`` at ``params`` (flat, the model's dtype)."""
        coefs, intercepts = self.layout.views(params)
        n_layers = len(coefs) + 1
        # Forward propagate
        activations = [self.X]
        for i in range(n_layers - 1):
            values = safe_sparse_dot(activations[i], coefs[i])
            values += intercepts[i]
            if i + 1 != n_layers - 1:
                ACTIVATIONS[self.activation](values)
            activations.append(values)
        ACTIVATIONS[self.output_activation](activations[-1])

        loss = self.loss_function(self.y, activations[-1], self.sample_weight)
        values = 0
        for s in coefs:
            s = s.ravel()
            values += np.dot(s, s)
        sw_sum = self.weight_sum
        loss += (0.5 * self.alpha) * values / sw_sum

        # Backward propagate: the canonical output activation makes the output delta
        # simply prediction - target.
        last = n_layers - 2
        deltas = [None] * (n_layers - 1)
        deltas[last] = activations[-1] - self.y
        if self.sample_weight is not None:
            deltas[last] *= self.sample_weight.reshape(-1, 1)
        coef_grads = [None] * (n_layers - 1)
        intercept_grads = [None] * (n_layers - 1)
        self._layer_gradient(last, coefs, activations, deltas, coef_grads, intercept_grads)
        derivative = DERIVATIVES[self.activation]
        for i in range(last, 0, -1):
            deltas[i - 1] = safe_sparse_dot(deltas[i], coefs[i].T)
            derivative(activations[i], deltas[i - 1])
            self._layer_gradient(i - 1, coefs, activations, deltas, coef_grads, intercept_grads)
        gradient = np.hstack([g.ravel() for g in coef_grads + intercept_grads])
        return loss, gradient

    def _layer_gradient(self, layer, coefs, activations, deltas, coef_grads, intercept_grads):
        sw_sum = self.weight_sum
        coef_grads[layer] = safe_sparse_dot(activations[layer].T, deltas[layer])
        coef_grads[layer] += self.alpha * coefs[layer]
        coef_grads[layer] /= sw_sum
        intercept_grads[layer] = np.sum(deltas[layer], axis=0) / sw_sum
