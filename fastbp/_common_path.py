"""The common path: the one routing decision, and the flat training kernel most fits use.

:func:`takes_common_path` decides, for every kernel call, whether it runs without
the rare paths (``rare=None``: dense input, no dropout, the common hidden
activations) and, in training, in the flat kernel of this module (also: the
squared error or the (binary) cross-entropy, sgd, adam or adamw, no gradient
clipping). That covers scikit-learn's defaults and most of its users' options.
Every other fit runs the full kernel (:func:`fastbp._kernels.epoch_kernel`, built
from the passes of :mod:`fastbp._batch_passes`), compiled the first time a fit
needs it.

The flat kernel writes out only the plumbing of a batch (gather, the matrix
products of the forward and backward passes): numba compiles each helper as a
library of its own, then links and optimises it again inside each caller, so one
function with those loops written out compiles faster (about a second less than the
full kernel with ``rare=None``, measured), which is what a new user waits for on the
first fit. Every rule of the mathematics is a call to its one definition, the same
one the full kernel calls: the hidden activations and their derivatives and the
output activations and losses (:mod:`fastbp._layer_math`), the optimizer steps
(:mod:`fastbp._optimizer_steps`) and the convergence rule (:func:`no_improvement`).
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
    workspace_fits,
)
from fastbp._batch_passes import _matrix, _segment
from fastbp._kernel_arguments import Data, Network, Settings, Workspace, entry_point
from fastbp._kernel_cache import _HELPER, _JIT, pause_gc_while_compiling, prepare_caches
from fastbp._kernel_codes import (
    ADAM,
    ADAMW,
    BINARY_LOG_LOSS,
    H_ALPHA,
    IDENTITY,
    LEAKY_RELU,
    LOG_LOSS,
    LOGISTIC,
    N_LOSS_PARAMS,
    RELU,
    S_BEST_LOSS,
    S_CHECK,
    S_N_ITER_NO_CHANGE,
    S_NO_IMPROVEMENT_COUNT,
    S_TOL,
    SGD,
    SQUARED_ERROR,
)
from fastbp._layer_math import (
    _activate,
    _multiply_by_derivative,
    _output_activate,
    _output_delta_and_loss,
)
from fastbp._optimizer_steps import optimizer_step

#: What the common path takes; anything else runs the full kernel.
COMMON_ACTIVATIONS = frozenset({IDENTITY, RELU, LEAKY_RELU, LOGISTIC})
COMMON_LOSSES = frozenset({SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS})
COMMON_SOLVERS = frozenset({SGD, ADAM, ADAMW})


def takes_common_path(net, is_sparse, training, settings=None):
    """The routing decision, made here only: True when a kernel call runs the common
    path, without the rare paths (``rare=None``); False when it needs them.

    Every call: dense input and the common hidden activations; in training, no
    dropout. A training call of the epoch kernels (``settings`` given) also needs a
    common loss and solver and no gradient clipping: then :data:`common_epochs`
    trains, otherwise the full kernel. (Prediction and the full-batch gradient take
    every loss with ``rare=None``.)
    """
    if is_sparse or (training and bool((net.dropout_rates > 0).any())):
        return False
    if any(int(code) not in COMMON_ACTIVATIONS for code in net.hidden_codes[1:-1]):
        return False
    if settings is None:
        return True
    return (
        int(settings.loss_code) in COMMON_LOSSES
        and int(settings.solver_code) in COMMON_SOLVERS
        and not settings.max_grad_norm > 0
    )


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


def _common_epochs(data, net, work, params, state, orders, batch_size, settings, adam_step,
                   loss_sums, steps, stopping):  # fmt: skip
    """:func:`fastbp._kernels.run_epochs` for the common path: the same arguments,
    less the rare paths and the dropout seeds (its entry point, :data:`common_epochs`,
    takes the named tuples' fields)."""
    X, Y, sample_weight, use_weights = data.X, data.Y, data.sample_weight, data.use_weights
    units, coef_offsets, intercept_offsets = net.units, net.coef_offsets, net.intercept_offsets
    hidden_codes, n_coefs = net.hidden_codes, net.n_coefs
    activations, deltas, layer_offsets, bits = (
        work.activations,
        work.deltas,
        work.layer_offsets,
        work.bits,
    )
    x_batch, y_batch, sw_batch, grads = work.x_batch, work.y_batch, work.sw_batch, work.grads
    loss_code, solver_code, hyper = settings.loss_code, settings.solver_code, settings.hyper
    if not (
        layout_lengths_fit(
            units.shape[0], coef_offsets.shape[0], intercept_offsets.shape[0],
            hidden_codes.shape[0],
        )
        and network_fits(units, coef_offsets, intercept_offsets, hidden_codes, n_coefs, params)
        and workspace_fits(
            X, Y, sample_weight, use_weights, False, units, activations, deltas,
            layer_offsets, bits, x_batch, y_batch, sw_batch, grads, params, batch_size,
        )
        and epochs_fit(params, state, solver_code, orders.shape[0], hyper, loss_sums, steps,
                       stopping)
        and orders_fit(orders, Y.shape[0])
        and settings.loss_params.shape[0] >= N_LOSS_PARAMS
    ):  # fmt: skip
        return REFUSED, False
    n_layers = units.shape[0]
    last = n_layers - 1
    n_outputs = units[last]
    n_features = X.shape[1]
    n_samples = orders.shape[1]
    out_start = layer_offsets[last]
    alpha = float(hyper[H_ALPHA])
    step = adam_step
    check_stopping = stopping[S_CHECK] > 0
    best_loss, tol = stopping[S_BEST_LOSS], stopping[S_TOL]
    count, patience = stopping[S_NO_IMPROVEMENT_COUNT], stopping[S_N_ITER_NO_CHANGE]
    for epoch in range(orders.shape[0]):
        order = orders[epoch]
        loss_sum = 0.0
        finite = True
        for start in range(0, n_samples, batch_size):
            stop = start + batch_size
            n_rows = (n_samples if n_samples < stop else stop) - start
            # Gather the batch's rows (element loops: a slice per row costs more).
            weight_sum = 0.0
            for k in range(n_rows):
                row = order[start + k]
                for j in range(n_features):
                    x_batch[k, j] = X[row, j]
                for j in range(n_outputs):
                    y_batch[k, j] = Y[row, j]
                if use_weights:
                    sw_batch[k] = sample_weight[row]
                    weight_sum += sample_weight[row]
            if not use_weights:
                weight_sum = float(n_rows)
            if weight_sum == 0:
                continue  # every row weighs zero: nothing to learn from this batch
            x = x_batch[:n_rows]

            # Forward pass: z_l = a_{l-1} W_l + b_l, a_l = f_l(z_l).
            z = _matrix(activations, np.intp(0), np.intp(0), np.intp(1))  # typed before the loop
            for layer in range(1, n_layers):
                fan_in, fan_out = units[layer - 1], units[layer]
                offset = coef_offsets[layer - 1]
                coef = _matrix(params, offset, fan_in, fan_out)
                offset = layer_offsets[layer]
                z = _matrix(activations, offset, n_rows, fan_out)
                if layer == 1:
                    np.dot(x, coef, z)
                else:
                    below = _matrix(activations, layer_offsets[layer - 1], n_rows, fan_in)
                    np.dot(below, coef, z)
                offset = intercept_offsets[layer - 1]
                bias = _segment(params, offset, fan_out)
                # not exact: training's exp; a bool, not a literal (see _output_activate)
                exact = np.bool_(False)
                if layer == last:  # the output activation paired with the loss
                    _output_activate(z, bias, loss_code, bits, exact)
                else:  # with no rare paths, only the common activations compile
                    _activate(z, bias, hidden_codes[layer], bits, None, z, exact)

            # Output delta (prediction - target, times the sample weight) and loss.
            delta = _matrix(deltas, out_start, n_rows, n_outputs)
            batch_loss_sum = _output_delta_and_loss(
                z, y_batch[:n_rows], sw_batch[:n_rows], use_weights, delta, loss_code,
                settings.loss_params,
            )  # fmt: skip

            # Backward pass: raw gradients a_{l-1}^T delta_l and sum_rows delta_l, and
            # delta_{l-1} = (delta_l W_l^T) * f'(z_{l-1}) from the output a_{l-1}.
            for layer in range(last, 0, -1):
                fan_in, fan_out = units[layer - 1], units[layer]
                offset = layer_offsets[layer]
                delta = _matrix(deltas, offset, n_rows, fan_out)
                offset = coef_offsets[layer - 1]
                coef_grad = _matrix(grads, offset, fan_in, fan_out)
                coef = _matrix(params, offset, fan_in, fan_out)
                offset = intercept_offsets[layer - 1]
                intercept_grad = _segment(grads, offset, fan_out)
                for j in range(fan_out):
                    intercept_grad[j] = 0
                for i in range(n_rows):
                    for j in range(fan_out):
                        intercept_grad[j] += delta[i, j]
                if layer == 1:
                    np.dot(x.T, delta, coef_grad)
                    continue
                offset = layer_offsets[layer - 1]
                previous = _matrix(activations, offset, n_rows, fan_in)
                np.dot(previous.T, delta, coef_grad)
                previous_delta = _matrix(deltas, offset, n_rows, fan_in)
                if fan_out == 1:  # an outer product: a loop beats a BLAS call
                    for i in range(n_rows):
                        d = delta[i, 0]
                        for j in range(fan_in):
                            previous_delta[i, j] = d * coef[j, 0]
                else:
                    np.dot(delta, coef.T, previous_delta)
                # f'(z_{l-1}) from the output a_{l-1}
                _multiply_by_derivative(
                    previous_delta, previous, hidden_codes[layer - 1], bits, None, previous
                )

            # The reported loss uses the weights before this step's update: the L2
            # penalty's sum of squares, one dot product per layer as scikit-learn does.
            squared_norm = 0.0
            for layer in range(n_layers - 1):
                offset = coef_offsets[layer]
                layer_coefs = _segment(params, offset, units[layer] * units[layer + 1])
                squared_norm += float(np.dot(layer_coefs, layer_coefs))

            step = optimizer_step(params, grads, state, n_coefs, solver_code,
                                  settings.nesterov, hyper, weight_sum, step)  # fmt: skip
            batch_loss = batch_loss_sum / weight_sum + 0.5 * alpha * squared_norm / weight_sum
            loss_sum += batch_loss * n_rows
            if not math.isfinite(batch_loss):
                finite = False
                break
        if finite:
            for k in range(params.shape[0]):
                if not math.isfinite(params[k]):
                    finite = False
                    break
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


#: The common path's compiled entry point: the named tuples' fields.
common_epochs = njit(**_JIT)(
    entry_point(_common_epochs, Data, Network, Workspace, "params", "state", "orders",
                "batch_size", Settings, "adam_step", "loss_sums", "steps", "stopping")
)  # fmt: skip


prepare_caches(globals())
pause_gc_while_compiling(common_epochs)
