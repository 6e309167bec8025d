"""The compiled kernels' entry points: epochs of training (the full kernel; the
common path's, :data:`fastbp._common_epochs.common_epochs`, is written out from
this one's code by ``tools/generate_common_path.py``), the full-batch gradient,
prediction.

Every public kernel here is compiled once per dtype (float32, float64) and cached on
disk (and once more with the rare paths). Options (activation, loss, solver) arrive
as integer codes and are dispatched with ``if`` inside the kernels, so adding an
option never adds a specialisation. The named tuples that cross into them are in
:mod:`fastbp._kernel_arguments` (and importable from here); every rule of the
mathematics has one definition, in :mod:`fastbp._layer_math` (activations, output
activations, losses) and :mod:`fastbp._optimizer_steps` (optimizer steps).

Conventions shared by all kernels
---------------------------------
* ``params`` is the flat parameter vector of :class:`fastbp._network.NetworkLayout`:
  all coefficient matrices first (row-major), then all intercepts.
* ``activations`` / ``deltas`` are flat workspaces; layer ``l`` of a batch of ``m``
  rows lives at ``[layer_offsets[l], layer_offsets[l] + m * units[l])``.
* Derivatives are written from the activation's *output*, as scikit-learn does, so no
  pre-activation values are kept.
* Inputs that the kernels only read (``X``, ``Y``, sample weights, the row order)
  are passed as read-only arrays so that one compiled signature serves all callers.
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
    prediction_fits,
    rare_paths_fit,
    workspace_fits,
)
from fastbp._batch_passes import (
    _backward,
    _clipped_weight_sum,
    _forward,
    _gather,
    _squared_coef_norm,
)
from fastbp._common_epochs import common_epochs
from fastbp._convergence import KERNEL_MARGIN, no_improvement
from fastbp._kernel_arguments import Data, Network, RarePaths, Settings, Workspace, entry_point
from fastbp._kernel_cache import _HELPER, _JIT, pause_gc_while_compiling, prepare_caches
from fastbp._kernel_codes import (
    H_ALPHA,
    N_HYPER,
    N_LOSS_PARAMS,
    S_BEST_LOSS,
    S_CHECK,
    S_N_ITER_NO_CHANGE,
    S_NO_IMPROVEMENT_COUNT,
    S_TOL,
)
from fastbp._layer_math import _BLOCK, _output_delta_and_loss
from fastbp._optimizer_steps import optimizer_step

__all__ = ["Data", "Network", "RarePaths", "Settings", "Workspace"]  # named here too


# ---------------------------------------------------------------------------------
# One epoch of the full kernel (inlined into it) and the full-batch gradient. They
# compile once per dtype with ``rare=None`` (the common path: dense input, no
# dropout, identity/relu/leaky_relu/logistic hidden layers) and once more, on first
# use, with ``RarePaths`` (everything).
# ---------------------------------------------------------------------------------
@njit(**_HELPER, inline="always")
def _train_epoch(data, net, work, rare, params, state, order, batch_size, settings, adam_step,
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
    finite = True
    step = adam_step
    if rare is not None:
        if dropout_seed >= 0:
            np.random.seed(dropout_seed)
    for start in range(0, n_samples, batch_size):
        stop = min(start + batch_size, n_samples)
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
        output_delta = work.deltas[out_start : out_start + n_rows * n_outputs]
        batch_loss_sum = _output_delta_and_loss(
            prediction, work.y_batch[:n_rows], work.sw_batch[:n_rows], data.use_weights,
            output_delta.reshape(n_rows, n_outputs), settings.loss_code, settings.loss_params,
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
            finite = False
            break
    if finite:
        for k in range(params.shape[0]):
            if not math.isfinite(params[k]):
                finite = False
                break
    # One return, at the end: tools/generate_common_path.py writes this body out
    # in place of its call.
    return loss_sum, finite, step


@njit(**_JIT)
def _full_gradient(data, net, work, rare, order, chunk_rows, params, chunk_grads, settings,
                   dropout_seed):  # fmt: skip
    """Full-batch loss and gradient (for L-BFGS above its exact-arithmetic budget,
    and for the gradient tests), computed in row chunks so memory stays bounded by
    ``chunk_rows``; ``work.grads`` receives the final gradient. A ``dropout_seed``
    >= 0 fixes the dropout masks (for gradient checks)."""
    units = net.units
    with_dropout = False
    for rate in net.dropout_rates:
        with_dropout = with_dropout or rate > 0
    is_sparse = False if rare is None else rare.is_sparse
    if not (
        network_fits(units, net.coef_offsets, net.intercept_offsets, net.hidden_codes,
                     net.n_coefs, params)
        and net.dropout_rates.shape[0] >= units.shape[0]
        and chunk_grads.shape[0] == params.shape[0]
        and workspace_fits(
            data.X, data.Y, data.sample_weight, data.use_weights, is_sparse, units,
            work.activations, work.deltas, work.layer_offsets, work.bits, work.x_batch,
            work.y_batch, work.sw_batch, work.grads, params, chunk_rows,
        )
        and orders_fit(order.reshape(1, -1), data.Y.shape[0])
        and settings.hyper.shape[0] >= N_HYPER
        and (rare is None or rare_paths_fit(rare, data.Y.shape[0], units, chunk_rows, True,
                                            with_dropout))
        and settings.loss_params.shape[0] >= N_LOSS_PARAMS
    ):  # fmt: skip
        return float(REFUSED)
    n_samples = order.shape[0]
    n_coefs = net.n_coefs
    grads = work.grads
    offsets = work.layer_offsets
    last = net.units.shape[0] - 1
    out_start, n_outputs = offsets[last], net.units[last]
    is_sparse = False if rare is None else rare.is_sparse
    alpha = float(settings.hyper[H_ALPHA])
    loss_sum = 0.0
    total_weight = 0.0
    if rare is not None:
        if dropout_seed >= 0:
            np.random.seed(dropout_seed)
    for start in range(0, n_samples, chunk_rows):
        stop = min(start + chunk_rows, n_samples)
        n_rows = stop - start
        rows = order[start:stop]
        total_weight += _gather(data, rows, work, is_sparse)
        target = grads if start == 0 else chunk_grads
        x = work.x_batch[:n_rows]
        prediction = _forward(
            x, rows, n_rows, params, net, work.activations, offsets, work.bits,
            settings.loss_code, rare, True,
        )  # fmt: skip
        output_delta = work.deltas[out_start : out_start + n_rows * n_outputs]
        loss_sum += _output_delta_and_loss(
            prediction, work.y_batch[:n_rows], work.sw_batch[:n_rows], data.use_weights,
            output_delta.reshape(n_rows, n_outputs), settings.loss_code, settings.loss_params,
        )  # fmt: skip
        _backward(x, rows, n_rows, params, target, net, work, rare)
        if start > 0:
            for k in range(grads.shape[0]):
                grads[k] += chunk_grads[k]
    weight_sum = grads.dtype.type(total_weight)
    alpha_t = grads.dtype.type(alpha)
    squared_norm = 0.0
    for k in range(grads.shape[0]):
        if k < n_coefs:
            w = params[k]
            squared_norm += float(w) * float(w)
            grads[k] = (grads[k] + alpha_t * w) / weight_sum
        else:
            grads[k] = grads[k] / weight_sum
    return loss_sum / total_weight + 0.5 * alpha * squared_norm / total_weight


# ---------------------------------------------------------------------------------
# The compiled entry points: each body (plain Python) takes the named tuples, and its
# entry point, written from it by fastbp._kernel_arguments.entry_point, takes their
# fields (arrays and scalars type in C at the boundary: a one-row prediction costs
# microseconds).
# ---------------------------------------------------------------------------------
def _epoch_kernel(data, net, work, rare, params, state, orders, batch_size, settings,
                  adam_step, dropout_seeds, loss_sums, steps, stopping):  # fmt: skip
    """:func:`run_epochs` in the full kernel (arguments and results there)."""
    # The last line of defence (fastbp._argument_checks): nothing is indexed unless
    # every length fits the layout.
    units = net.units
    with_dropout = False
    for rate in net.dropout_rates:
        with_dropout = with_dropout or rate > 0
    is_sparse = False if rare is None else rare.is_sparse
    if not (
        network_fits(units, net.coef_offsets, net.intercept_offsets, net.hidden_codes,
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
        and dropout_seeds.shape[0] >= orders.shape[0]
        and settings.loss_params.shape[0] >= N_LOSS_PARAMS
    ):  # fmt: skip
        return REFUSED, False
    step = adam_step
    check_stopping = stopping[S_CHECK] > 0
    best_loss, tol = stopping[S_BEST_LOSS], stopping[S_TOL]
    count, patience = stopping[S_NO_IMPROVEMENT_COUNT], stopping[S_N_ITER_NO_CHANGE]
    n_samples = orders.shape[1]
    for epoch in range(orders.shape[0]):
        loss_sum, finite, step = _train_epoch(
            data, net, work, rare, params, state, orders[epoch], batch_size, settings, step,
            dropout_seeds[epoch],
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


#: The full training kernel's entry point (the fields of the named tuples).
epoch_kernel = njit(**_JIT)(
    entry_point(_epoch_kernel, Data, Network, Workspace, "rare", "params", "state", "orders",
                "batch_size", Settings, "adam_step", "dropout_seeds", "loss_sums", "steps",
                "stopping")
)  # fmt: skip


def _predict_forward(X, rare, params, net, loss_code, out):
    """Output-layer values for every row of ``X`` (or of the CSR matrix of ``rare``)
    into ``out``, in row chunks; ``rare`` is None for a dense input and a network of
    the common hidden activations (:func:`fastbp._common_path.takes_common_path`).

    Returns
    -------
    inputs_finite : int
        1; 0 if dense X holds a NaN or an infinity (nothing is computed then), so a
        caller that skipped validation can fall back to it for the error message;
        ``REFUSED`` (-1) if the arguments do not fit the layout (nothing computed).
    outputs_finite : bool
        False if some output overflowed.
    """
    units = net.units
    n_rows = out.shape[0]
    n_layers = units.shape[0]
    if not layout_lengths_fit(
        n_layers, net.coef_offsets.shape[0], net.intercept_offsets.shape[0],
        net.hidden_codes.shape[0],
    ):  # fmt: skip
        return REFUSED, False
    last = n_layers - 1
    if not prediction_fits(
        X.shape[0], X.shape[1], n_rows, out.shape[0], out.shape[1], units[0], units[last],
        params.shape[0], net.intercept_offsets[last - 1] + units[last],
    ):  # fmt: skip
        return REFUSED, False
    chunk_rows = min(n_rows, 1024)
    if rare is not None and not rare_paths_fit(rare, n_rows, units, chunk_rows, False, False):
        return REFUSED, False
    is_sparse = False if rare is None else rare.is_sparse
    if not is_sparse:
        for i in range(n_rows):
            for j in range(X.shape[1]):
                if not math.isfinite(X[i, j]):
                    return 0, False
    # The forward pass over all rows, in chunks of chunk_rows.
    layer_offsets = np.empty(n_layers, dtype=np.intp)
    layer_offsets[0] = 0
    total = 0
    for layer in range(1, n_layers):
        layer_offsets[layer] = total
        total += chunk_rows * units[layer]
    activations = np.empty(total, dtype=params.dtype)
    bits = np.empty(2 * _BLOCK, dtype=np.int64)
    # Row indices matter to sparse input only (dense rows are sliced from X).
    all_rows = np.arange(n_rows) if is_sparse else layer_offsets[:0]
    n_outputs = units[n_layers - 1]
    outputs_finite = True
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        x = X[0:0] if is_sparse else X[start:stop]
        rows = all_rows[start:stop] if is_sparse else all_rows
        result = _forward(
            x, rows, stop - start, params, net, activations, layer_offsets, bits, loss_code,
            rare, False,
        )  # fmt: skip
        for i in range(stop - start):
            for j in range(n_outputs):
                value = result[i, j]
                out[start + i, j] = value
                if not math.isfinite(value):
                    outputs_finite = False
    return 1, outputs_finite


#: The prediction kernel's entry point (X, the rare paths or None, the parameters,
#: the fields of the Network, the loss code, the output array).
predict_forward = njit(**_JIT)(
    entry_point(_predict_forward, "X", "rare", "params", Network, "loss_code", "out")
)


def run_epochs(data, net, work, rare, params, state, orders, batch_size, settings, adam_step,
               dropout_seeds, loss_sums, steps, stopping):  # fmt: skip
    """Epochs of minibatch training, one per row of ``orders`` (the row order of each).

    For each minibatch: gather, forward, loss, backward, update. ``state`` is the
    optimizer's ``(n_state, n_params)`` matrix (the state arrays it declares, in
    :data:`fastbp._optimizer_steps.STATE_ARRAYS`); ``adam_step`` the Adam time step
    before the first epoch; ``dropout_seeds[e]`` (>= 0) seeds the dropout masks of
    epoch ``e``.

    ``rare`` is None exactly when :func:`fastbp._common_path.takes_common_path`
    said so for this training call: the common path's kernel runs (this kernel's
    code with ``rare=None``, written out); every other fit passes its
    :class:`RarePaths` and runs the full kernel.

    Several epochs in one call spare short epochs the cost of returning to Python.
    ``stopping`` (``S_*`` layout) says whether to return early, after the first epoch
    at which the convergence rule (``n_iter_no_change`` epochs without an
    improvement of ``tol`` over the best loss) could fire, so that the caller sees
    every epoch at which it must decide.

    ``loss_sums[e]`` receives epoch ``e``'s sum over batches of ``batch_loss *
    batch_rows`` (scikit-learn's accumulation), ``steps[e]`` the Adam time step
    after it (batches whose weights sum to zero take no step).

    Returns
    -------
    n_epochs : int
        Epochs run.
    finite : bool
        False when the last epoch run met a non-finite batch loss or parameter (it
        stopped there).
    """
    if rare is None:
        result = common_epochs(*data, *net, *work, params, state, orders, batch_size, *settings,
                               adam_step, dropout_seeds, loss_sums, steps, stopping)  # fmt: skip
    else:
        result = epoch_kernel(*data, *net, *work, rare, params, state, orders, batch_size,
                              *settings, adam_step, dropout_seeds, loss_sums, steps,
                              stopping)  # fmt: skip
    if result[0] == REFUSED:
        refused("epoch", net.units)
    return result


def refused(kernel, units):
    """The error for a kernel that refused its arguments (see
    fastbp._argument_checks): a bug in fastbp, or a state changed behind its back."""
    raise RuntimeError(
        f"fastbp: the {kernel} kernel refused arguments that do not fit the network "
        f"{np.asarray(units).tolist()} (and computed nothing). Please report this bug."
    )


def full_loss_and_gradient(data, net, work, rare, order, chunk_rows, params, chunk_grads,
                           settings, dropout_seed):  # fmt: skip
    """Full-batch loss and gradient (for L-BFGS above its exact-arithmetic budget,
    and for the gradient tests), in row chunks of ``chunk_rows``; ``work.grads``
    receives the gradient, ``chunk_grads`` is scratch of the same size. A
    ``dropout_seed`` >= 0 fixes the dropout masks (for gradient checks)."""
    loss = _full_gradient(data, net, work, rare, order, chunk_rows, params, chunk_grads,
                          settings, dropout_seed)  # fmt: skip
    if loss == REFUSED:  # a loss is never negative
        refused("full-gradient", net.units)
    return loss


prepare_caches(globals())
pause_gc_while_compiling(epoch_kernel)
pause_gc_while_compiling(predict_forward)
pause_gc_while_compiling(_full_gradient)
