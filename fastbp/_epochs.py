"""Epochs of minibatch training, written once: both training kernels run them.

:func:`checked_train_epochs` (the argument checks, then :func:`train_epochs`) is
the body of both training entry points: the common path's
(:data:`fastbp._common_path.common_epochs`, ``rare=None``: dense input, no dropout,
the common hidden activations) and the full kernel's
(:data:`fastbp._kernels.epoch_kernel`, with :class:`fastbp._kernel_arguments.RarePaths`).
numba compiles it once for each (``rare=None`` prunes every branch of the rare
paths), so a reader of the common path reads the code the full kernel runs.

One epoch (:func:`train_epoch`) is, per minibatch: gather, forward pass, output
delta and loss, backward pass, optimizer step (:mod:`fastbp._batch_passes`,
:mod:`fastbp._layer_math`, :mod:`fastbp._optimizer_steps`); the convergence rule
between epochs is :func:`no_improvement_rule`, the one Python also runs.
"""

import math

import numpy as np
from numba import njit

from fastbp._argument_checks import (
    REFUSED,
    epochs_fit,
    layout_lengths_fit,
    network_fits,
    orders_fit,
    rare_paths_fit,
    workspace_fits,
)
from fastbp._batch_passes import _backward, _forward, _gather, _matrix
from fastbp._kernel_cache import _HELPER, prepare_caches
from fastbp._kernel_codes import (
    H_ALPHA,
    N_LOSS_PARAMS,
    S_BEST_LOSS,
    S_CHECK,
    S_N_ITER_NO_CHANGE,
    S_NO_IMPROVEMENT_COUNT,
    S_TOL,
)
from fastbp._layer_math import _output_delta_and_loss
from fastbp._optimizer_steps import optimizer_step


# ---------------------------------------------------------------------------------
# The convergence rule.
# ---------------------------------------------------------------------------------
def no_improvement_rule(loss, best_loss, tol, count, margin):
    """The convergence rule, the one definition (Python and the kernels run it): after
    an epoch of loss ``loss`` (for a validation score, its negation), the updated
    count of epochs without an improvement of more than ``tol`` over the best loss,
    and the best loss.

    ``margin`` widens the "no improvement" test by that fraction of the magnitudes:
    0 in Python, which decides; :data:`KERNEL_MARGIN` in the kernels, which compute
    the loss in float64 while Python compares in the loss's own precision (float32
    for a float32 regressor), so that their count stays at or above Python's and a
    kernel returns at or before the epoch where Python stops.
    """
    threshold = best_loss - tol
    if margin > 0 and math.isfinite(best_loss):
        threshold -= margin * (abs(best_loss) + abs(tol))
    if loss > threshold:
        count += 1
    else:
        count = 0
    # Conditional expressions rather than min/max: those compile a function per type.
    return count, (loss if loss < best_loss else best_loss)


#: The kernels' margin (see :func:`no_improvement_rule`): a few float32 roundings.
KERNEL_MARGIN = 1e-6

#: :func:`no_improvement_rule`, compiled for the kernels.
no_improvement = njit(**_HELPER)(no_improvement_rule)


# ---------------------------------------------------------------------------------
# One epoch; the L2 penalty's value and gradient clipping (the steps: fastbp._optimizer_steps).
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def _squared_coef_norm(params, net):
    """Sum of squared coefficients, one dot product per layer as scikit-learn does."""
    total = 0.0
    units = net.units
    for layer in range(units.shape[0] - 1):
        start = net.coef_offsets[layer]
        coefs = params[start : start + units[layer] * units[layer + 1]]
        total += float(np.dot(coefs, coefs))
    return total


@njit(**_HELPER)
def _clipped_weight_sum(params, grads, n_coefs, alpha, weight_sum, max_norm):
    """The divisor that scales the step's gradient (raw + alpha w) / weight_sum down
    to a global norm of at most ``max_norm`` (gradient clipping)."""
    squared = 0.0
    for k in range(params.shape[0]):
        g = float(grads[k])
        if k < n_coefs:
            g += alpha * float(params[k])
        squared += g * g
    norm = math.sqrt(squared) / weight_sum
    if norm > max_norm:
        return weight_sum * norm / max_norm
    return weight_sum


@njit(**_HELPER, inline="always")
def train_epoch(data, net, work, rare, params, state, order, batch_size, settings, adam_step,
                 dropout_seed):  # fmt: skip
    """One epoch of :func:`run_epochs` on named tuples, in the row ``order``; returns
    ``(loss_sum, finite, adam_step)`` after it."""
    n_samples = order.shape[0]
    n_coefs = net.n_coefs
    alpha = float(settings.hyper[H_ALPHA])
    max_grad_norm = settings.max_grad_norm
    offsets = work.layer_offsets
    last = net.units.shape[0] - 1
    out_start, n_outputs = offsets[last], net.units[last]
    is_sparse = False if rare is None else rare.is_sparse
    loss_sum = 0.0
    step = adam_step
    if rare is not None:
        if dropout_seed >= 0:
            np.random.seed(dropout_seed)
    for start in range(0, n_samples, batch_size):
        stop = start + batch_size
        stop = n_samples if n_samples < stop else stop  # min() compiles a function per type
        n_rows = stop - start
        rows = order[start:stop]
        weight_sum = _gather(data, rows, work, is_sparse)
        if weight_sum == 0:
            continue  # every row weighs zero: nothing to learn from this batch
        # Forward, output delta and loss, backward (raw gradients into work.grads).
        x = work.x_batch[:n_rows]
        prediction = _forward(
            x, rows, n_rows, params, net, work.activations, offsets, work.bits,
            settings.loss_code, rare, True,
        )  # fmt: skip
        output_delta = _matrix(work.deltas, out_start, n_rows, n_outputs)
        batch_loss_sum = _output_delta_and_loss(
            prediction, work.y_batch[:n_rows], work.sw_batch[:n_rows], data.use_weights,
            output_delta, settings.loss_code, settings.loss_params,
        )  # fmt: skip
        _backward(x, rows, n_rows, params, work.grads, net, work, rare)
        # The reported loss uses the weights before this step's update.
        squared_norm = _squared_coef_norm(params, net)
        divisor = weight_sum
        if max_grad_norm > 0:
            divisor = _clipped_weight_sum(
                params, work.grads, n_coefs, alpha, weight_sum, max_grad_norm
            )
        step = optimizer_step(params, work.grads, state, n_coefs, settings.solver_code,
                              settings.nesterov, settings.hyper, divisor, step)  # fmt: skip
        batch_loss = batch_loss_sum / weight_sum + 0.5 * alpha * squared_norm / weight_sum
        loss_sum += batch_loss * n_rows
        if not math.isfinite(batch_loss):
            return loss_sum, False, step
    for k in range(params.shape[0]):
        if not math.isfinite(params[k]):
            return loss_sum, False, step
    return loss_sum, True, step


# ---------------------------------------------------------------------------------
# A run of epochs, with the convergence rule between them.
# ---------------------------------------------------------------------------------
@njit(**_HELPER, inline="always")
def train_epochs(data, net, work, rare, params, state, orders, batch_size, settings,
                 adam_step, dropout_seeds, loss_sums, steps, stopping):  # fmt: skip
    """:func:`fastbp._kernels.run_epochs` after the entry point's checks (arguments
    and results there); ``dropout_seeds`` is None on the common path (no dropout)."""
    step = adam_step
    check_stopping = stopping[S_CHECK] > 0
    best_loss, tol = stopping[S_BEST_LOSS], stopping[S_TOL]
    count, patience = stopping[S_NO_IMPROVEMENT_COUNT], stopping[S_N_ITER_NO_CHANGE]
    n_samples = orders.shape[1]
    for epoch in range(orders.shape[0]):
        seed = -1 if dropout_seeds is None else dropout_seeds[epoch]
        loss_sum, finite, step = train_epoch(
            data, net, work, rare, params, state, orders[epoch], batch_size, settings, step,
            seed,
        )  # fmt: skip
        loss_sums[epoch] = loss_sum
        steps[epoch] = step
        if not finite:
            return epoch + 1, False
        if check_stopping:
            count, best_loss = no_improvement(
                loss_sum / n_samples, best_loss, tol, count, KERNEL_MARGIN
            )
            if count > patience:
                return epoch + 1, True
    return orders.shape[0], True


@njit(**_HELPER, inline="always")
def checked_train_epochs(data, net, work, rare, params, state, orders, batch_size, settings,
                         adam_step, dropout_seeds, loss_sums, steps, stopping):  # fmt: skip
    """Both training entry points' body: :func:`train_epochs` once the arguments pass
    the last line of defence (:mod:`fastbp._argument_checks`: nothing is indexed
    unless every length fits the layout); ``(REFUSED, False)`` otherwise, with
    nothing computed."""
    units = net.units
    with_dropout = False
    is_sparse = False
    if rare is not None:
        is_sparse = rare.is_sparse
        for rate in net.dropout_rates:
            with_dropout = with_dropout or rate > 0
    if not (
        layout_lengths_fit(
            units.shape[0], net.coef_offsets.shape[0], net.intercept_offsets.shape[0],
            net.hidden_codes.shape[0],
        )
        and network_fits(units, net.coef_offsets, net.intercept_offsets, net.hidden_codes,
                         net.n_coefs, params)
        and net.dropout_rates.shape[0] >= units.shape[0]
        and workspace_fits(
            data.X, data.Y, data.sample_weight, data.use_weights, is_sparse, units,
            work.activations, work.deltas, work.layer_offsets, work.bits, work.x_batch,
            work.y_batch, work.sw_batch, work.grads, params, batch_size,
        )
        and epochs_fit(params, state, settings.solver_code, orders.shape[0], settings.hyper,
                       loss_sums, steps, stopping)
        and orders_fit(orders, data.Y.shape[0])
        and (rare is None or rare_paths_fit(rare, data.Y.shape[0], units, batch_size, True,
                                            with_dropout))
        and (dropout_seeds is None or dropout_seeds.shape[0] >= orders.shape[0])
        and settings.loss_params.shape[0] >= N_LOSS_PARAMS
    ):  # fmt: skip
        return REFUSED, False
    return train_epochs(data, net, work, rare, params, state, orders, batch_size, settings,
                        adam_step, dropout_seeds, loss_sums, steps, stopping)  # fmt: skip


prepare_caches(globals())
