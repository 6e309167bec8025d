"""The compiled kernels' entry points: epochs of training, the full-batch gradient,
prediction; the named tuples that cross into them, and the optimizer steps.

Every public kernel here is compiled once per dtype (float32, float64) and cached on
disk. Options (activation, loss, solver) arrive as integer codes and are dispatched
with ``if`` inside the kernels, so adding an option never adds a specialisation.
The helpers a cached kernel calls live in this same file on purpose: numba checks a
cached kernel against its own file only, and would miss an edit elsewhere.

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
from typing import NamedTuple

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
from fastbp._batch_passes import _backward, _forward, _gather
from fastbp._common_path import _adam_update, _sgd_update, common_epochs, no_improvement
from fastbp._kernel_cache import (
    _HELPER,
    _JIT,
    argument_position,
    cached_signatures,
    pause_gc_while_compiling,
    prepare_caches,
)
from fastbp._kernel_codes import (
    ADAM,
    ADAMW,
    H_ALPHA,
    H_BETA_1,
    H_BETA_2,
    H_EPSILON,
    H_LEARNING_RATE,
    H_MOMENTUM,
    H_WEIGHT_DECAY,
    N_HYPER,
    N_LOSS_PARAMS,
    N_STOPPING,
    S_BEST_LOSS,
    S_CHECK,
    S_N_ITER_NO_CHANGE,
    S_NO_IMPROVEMENT_COUNT,
    S_TOL,
    SGD,
)
from fastbp._layer_math import _BLOCK, _output_delta_and_loss


# ---------------------------------------------------------------------------------
# What crosses into a kernel, by name. numba types these tuples; each is built once
# per fit (or per prediction) by one helper in fastbp._network.
# ---------------------------------------------------------------------------------
class Network(NamedTuple):
    """The layout a kernel indexes with. ``hidden_codes`` and ``dropout_rates`` have
    one entry per layer (those of the input and output layers are unused)."""

    units: np.ndarray
    coef_offsets: np.ndarray
    intercept_offsets: np.ndarray
    hidden_codes: np.ndarray
    dropout_rates: np.ndarray
    n_coefs: int


class Workspace(NamedTuple):
    """Buffers of one minibatch (or chunk), allocated once per fit. ``activations``
    and ``deltas`` hold layers 1..L-1 back to back, layer ``l`` of ``m`` rows at
    ``[layer_offsets[l], layer_offsets[l] + m * units[l])``; ``bits`` is the int64
    scratch of the exp blocks."""

    activations: np.ndarray
    deltas: np.ndarray
    layer_offsets: np.ndarray
    bits: np.ndarray
    x_batch: np.ndarray
    y_batch: np.ndarray
    sw_batch: np.ndarray
    grads: np.ndarray


class RarePaths(NamedTuple):
    """What only the rarely used options need: sparse input (the CSR triple), dropout
    (masks and dropped activations, laid out as ``activations``) and the exp-based
    hidden activations (``temp``; and ``pre_activations``, laid out as
    ``activations``, for swish, whose derivative cannot be written from its output).
    A kernel called with ``None`` in its place compiles without any of that code:
    the common path, compiled first and fast."""

    is_sparse: bool
    csr_data: np.ndarray
    csr_indices: np.ndarray
    csr_indptr: np.ndarray
    masks: np.ndarray
    dropped: np.ndarray
    temp: np.ndarray
    pre_activations: np.ndarray


class Data(NamedTuple):
    """Training data as the kernels read it (read-only). With sparse input ``X`` is
    an empty ``(0, n_features)`` placeholder and the rows live in ``RarePaths``."""

    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray
    use_weights: bool


class Settings(NamedTuple):
    """The options of a fit: loss and solver codes, Nesterov momentum, gradient
    clipping (0 for none), and two dtype-typed vectors, ``hyper`` (indexed by the
    ``H_*`` constants, updated in place between epochs) and ``loss_params`` (indexed
    by the ``P_*`` constants)."""

    loss_code: int
    solver_code: int
    nesterov: bool
    max_grad_norm: float
    hyper: np.ndarray
    loss_params: np.ndarray


# ---------------------------------------------------------------------------------
# Optimizer steps: element-wise over the flat vector, with the L2 term and the
# normalisation by the weight sum fused in (no separate gradient pass).
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
def _step(params, grads, state, n_coefs, settings, weight_sum, step):
    """One optimizer step from the raw gradient; the L2 term applies to the
    coefficients only. Two branch-free loops (coefficients, then intercepts) so
    that each vectorises."""
    hyper = settings.hyper
    dtype = params.dtype.type
    divisor = dtype(weight_sum)
    alpha = hyper[H_ALPHA]
    end = params.shape[0]
    if settings.solver_code == SGD:  # with (Nesterov) momentum
        learning_rate = hyper[H_LEARNING_RATE]
        momentum = hyper[H_MOMENTUM]
        velocity = state[0]
        nesterov = settings.nesterov
        _sgd_update(params, grads, velocity, np.intp(0), n_coefs, alpha, divisor,
                    learning_rate, momentum, nesterov)  # fmt: skip
        _sgd_update(params, grads, velocity, n_coefs, end, dtype(0), divisor,
                    learning_rate, momentum, nesterov)  # fmt: skip
    elif settings.solver_code == ADAM or settings.solver_code == ADAMW:  # at time ``step``
        beta_1 = hyper[H_BETA_1]
        beta_2 = hyper[H_BETA_2]
        # Bias-corrected step size, computed in float64 as scikit-learn does.
        corrected = (
            float(hyper[H_LEARNING_RATE])
            * math.sqrt(1 - float(beta_2) ** step)
            / (1 - float(beta_1) ** step)
        )
        learning_rate = dtype(corrected)
        epsilon = hyper[H_EPSILON]
        # AdamW decays the coefficients (not the intercepts, like the L2 term) by the
        # scheduled, uncorrected step size times weight_decay, as PyTorch does.
        keep = dtype(1)
        if settings.solver_code == ADAMW:
            keep = dtype(1 - float(hyper[H_LEARNING_RATE]) * float(hyper[H_WEIGHT_DECAY]))
        _adam_update(params, grads, state[0], state[1], np.intp(0), n_coefs, alpha, divisor,
                     learning_rate, beta_1, beta_2, epsilon, keep)  # fmt: skip
        _adam_update(params, grads, state[0], state[1], n_coefs, end, dtype(0), divisor,
                     learning_rate, beta_1, beta_2, epsilon, dtype(1))  # fmt: skip
    else:
        raise ValueError("fastbp: unknown solver code")


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


# ---------------------------------------------------------------------------------
# The bodies of the compiled entry points (inlined into them). The entry points
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
        if settings.solver_code != SGD:
            step += 1
        _step(params, work.grads, state, n_coefs, settings, divisor, step)
        batch_loss = batch_loss_sum / weight_sum + 0.5 * alpha * squared_norm / weight_sum
        loss_sum += batch_loss * n_rows
        if not math.isfinite(batch_loss):
            return loss_sum, False, step
    for k in range(params.shape[0]):
        if not math.isfinite(params[k]):
            return loss_sum, False, step
    return loss_sum, True, step


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


@njit(**_HELPER, inline="always")
def _predict_rows(X, rare, n_samples, params, net, loss_code, out):
    """The body of :func:`predict_forward` (arguments and results there)."""
    is_sparse = False if rare is None else rare.is_sparse
    if not is_sparse:
        for i in range(n_samples):
            for j in range(X.shape[1]):
                if not math.isfinite(X[i, j]):
                    return 0, False
    units = net.units
    n_layers = units.shape[0]
    chunk_rows = min(n_samples, 1024)
    layer_offsets = np.empty(n_layers, dtype=np.intp)
    layer_offsets[0] = 0
    total = 0
    for layer in range(1, n_layers):
        layer_offsets[layer] = total
        total += chunk_rows * units[layer]
    activations = np.empty(total, dtype=params.dtype)
    bits = np.empty(2 * _BLOCK, dtype=np.int64)
    # Row indices matter to sparse input only (dense rows are sliced from X).
    all_rows = np.arange(n_samples) if is_sparse else layer_offsets[:0]
    n_outputs = units[n_layers - 1]
    outputs_finite = True
    for start in range(0, n_samples, chunk_rows):
        stop = min(start + chunk_rows, n_samples)
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


# ---------------------------------------------------------------------------------
# The compiled entry points. Their arguments are arrays and scalars only, not the
# named tuples themselves: numba's dispatcher types arrays and scalars in C but a
# tuple element by element in Python, which cost a one-row prediction tens of
# microseconds. The tuples are rebuilt inside, where they cost nothing; the Python
# wrappers take the tuples.
# ---------------------------------------------------------------------------------
@njit(**_JIT)
def epoch_kernel(X, Y, sample_weight, use_weights, units, coef_offsets, intercept_offsets,
                 hidden_codes, dropout_rates, n_coefs, activations, deltas, layer_offsets,
                 bits, x_batch, y_batch, sw_batch, grads, rare, params, state_1, state_2,
                 orders, batch_size, loss_code, solver_code, nesterov, max_grad_norm, hyper,
                 loss_params, adam_step, dropout_seeds, loss_sums, steps, stopping):  # fmt: skip
    """:func:`run_epochs` on the fields of its named tuples."""
    data = Data(X, Y, sample_weight, use_weights)
    net = Network(units, coef_offsets, intercept_offsets, hidden_codes, dropout_rates, n_coefs)
    work = Workspace(activations, deltas, layer_offsets, bits, x_batch, y_batch, sw_batch,
                     grads)  # fmt: skip
    settings = Settings(loss_code, solver_code, nesterov, max_grad_norm, hyper, loss_params)
    state = (state_1, state_2)
    # The last line of defence (fastbp._argument_checks): nothing is indexed unless
    # every length fits the layout.
    with_dropout = False
    for rate in dropout_rates:
        with_dropout = with_dropout or rate > 0
    if not (
        network_fits(units, coef_offsets, intercept_offsets, hidden_codes, n_coefs, params)
        and dropout_rates.shape[0] >= units.shape[0]
        and workspace_fits(
            X, Y, sample_weight, use_weights, rare.is_sparse, units, activations, deltas,
            layer_offsets, bits, x_batch, y_batch, sw_batch, grads, params, batch_size,
        )
        and epochs_fit(params, state_1, state_2, solver_code, orders.shape[0], hyper,
                       loss_sums, steps, stopping)
        and orders_fit(orders, Y.shape[0])
        and rare_paths_fit(rare, Y.shape[0], units, batch_size, True, with_dropout)
        and dropout_seeds.shape[0] >= orders.shape[0]
        and loss_params.shape[0] >= N_LOSS_PARAMS
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
            count, best_loss = no_improvement(loss_sum / n_samples, best_loss, tol, count)
            if count > patience:
                return epoch + 1, True
    return orders.shape[0], True


def run_epochs(data, net, work, rare, params, state, orders, batch_size, settings, adam_step,
               dropout_seeds, loss_sums, steps, stopping):  # fmt: skip
    """Epochs of minibatch training, one per row of ``orders`` (the row order of each).

    For each minibatch: gather, forward, loss, backward, update. ``state`` is the
    optimizer's pair of flat arrays (SGD: velocity and unused; Adam: first and
    second moments); ``adam_step`` the Adam time step before the first epoch;
    ``dropout_seeds[e]`` (>= 0) seeds the dropout masks of epoch ``e``.

    ``rare=None`` runs the flat common-path kernel, which takes only the options of
    :func:`fastbp._common_path.is_common` (and raises on any other); every other fit
    passes its :class:`RarePaths` and runs the full kernel.

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
    if rare is None:  # the common path: its own flat kernel (fastbp._common_path)
        X, Y, sample_weight, use_weights = data
        result = common_epochs(
            X, Y, sample_weight, use_weights, net.units, net.coef_offsets,
            net.intercept_offsets, net.hidden_codes, net.n_coefs, *work, params, *state,
            orders, batch_size, settings.loss_code, settings.solver_code, settings.nesterov,
            settings.hyper, adam_step, loss_sums, steps, stopping, False,
            _placeholders(params.dtype).out,
        )  # fmt: skip
    else:
        result = epoch_kernel(*data, *net, *work, rare, params, *state, orders, batch_size,
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


class _Placeholders(NamedTuple):
    """Arrays of the types the common-path kernel is compiled for, never read or
    written: what its call passes where the other mode's arrays would go (a
    different type would compile a second variant)."""

    Y: np.ndarray
    sample_weight: np.ndarray
    work: Workspace
    state: np.ndarray
    orders: np.ndarray
    hyper: np.ndarray
    loss_sums: np.ndarray
    steps: np.ndarray
    stopping: np.ndarray
    out: np.ndarray


_placeholders_by_dtype = {}


def _placeholders(dtype):
    placeholders = _placeholders_by_dtype.get(dtype)
    if placeholders is None:
        empty = np.empty(0, dtype=dtype)
        read_only = empty.reshape(0, 0).view()
        read_only.flags.writeable = False
        read_only_vector = empty.view()
        read_only_vector.flags.writeable = False
        placeholders = _Placeholders(
            read_only, read_only_vector,
            Workspace(empty, empty, np.zeros(1, dtype=np.intp), np.empty(0, dtype=np.int64),
                      empty.reshape(0, 0), empty.reshape(0, 0), empty, empty),
            empty, np.empty((1, 0), dtype=np.intp), empty, np.empty(0), np.empty(0, np.int64),
            np.zeros(N_STOPPING), empty.reshape(0, 0),
        )  # fmt: skip
        _placeholders_by_dtype[dtype] = placeholders
    return placeholders


# Which kernel predicts for a common-path network, decided once per dtype and process:
# the prediction kernel when it is compiled here or in the cache; the common-path
# kernel when only that one is compiled, in this process (after a first fit: the
# first prediction compiles nothing); the prediction kernel otherwise. The prediction
# kernel is the quicker to call (11 arguments instead of 30: one-row predict_proba
# 13 against 20 us, measured), so a process that only predicts compiles it once
# (cached for every later process) rather than use the common-path kernel.
_prediction_route = {}


def predicts_through_common_path(dtype):
    """True when predictions of ``dtype`` for common-path networks go through
    :func:`predict_common` in this process (see above); both give the same bits."""
    name = np.dtype(dtype).name
    route = _prediction_route.get(name)
    if route is None:

        def has(signatures, rare_position, params_position):
            return any(
                str(getattr(signature[params_position], "dtype", "")) == name
                and (rare_position is None or str(signature[rare_position]) == "none")
                for signature in signatures
            )

        rare = argument_position(predict_forward, "rare")
        params = argument_position(predict_forward, "params")
        prediction_ready = has(predict_forward.signatures, rare, params) or has(
            cached_signatures(predict_forward), rare, params
        )
        params = argument_position(common_epochs, "params")
        common_ready = has(common_epochs.signatures, None, params)
        route = "common" if common_ready and not prediction_ready else "forward"
        _prediction_route[name] = route
    return route == "common"


def predict_common(X, params, net, loss_code, out):
    """:func:`predict_forward` for a network of the common path (dense input, common
    activations and loss), through the common-path kernel: after a first fit, the
    first prediction then compiles nothing. Same results, same returns."""
    p = _placeholders(params.dtype)
    return common_epochs(
        X, p.Y, p.sample_weight, False, net.units, net.coef_offsets, net.intercept_offsets,
        net.hidden_codes, net.n_coefs, *p.work, params, p.state, p.state, p.orders,
        1, loss_code, SGD, False, p.hyper, 0, p.loss_sums, p.steps, p.stopping, True, out,
    )  # fmt: skip


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


@njit(**_JIT)
def predict_forward(X, rare, params, units, coef_offsets, intercept_offsets, hidden_codes,
                    dropout_rates, n_coefs, loss_code, out):  # fmt: skip
    """Output-layer values for every row of ``X`` (or of the CSR matrix of ``rare``)
    into ``out``, in row chunks. The network arrives as the fields of a
    :class:`Network` (arrays and scalars type in C at the boundary: a one-row
    prediction costs microseconds).

    Returns
    -------
    inputs_finite : int
        1; 0 if dense X holds a NaN or an infinity (nothing is computed then), so a
        caller that skipped validation can fall back to it for the error message;
        ``REFUSED`` (-1) if the arguments do not fit the layout (nothing computed).
    outputs_finite : bool
        False if some output overflowed.
    """
    net = Network(units, coef_offsets, intercept_offsets, hidden_codes, dropout_rates, n_coefs)
    n_rows = out.shape[0]
    n_layers = units.shape[0]
    if not layout_lengths_fit(
        n_layers, coef_offsets.shape[0], intercept_offsets.shape[0], hidden_codes.shape[0]
    ):
        return REFUSED, False
    last = n_layers - 1
    if not prediction_fits(
        X.shape[0], X.shape[1], n_rows, out.shape[0], out.shape[1], units[0], units[last],
        params.shape[0], intercept_offsets[last - 1] + units[last],
    ):  # fmt: skip
        return REFUSED, False
    chunk_rows = min(n_rows, 1024)  # _predict_rows's chunks
    if rare is not None and not rare_paths_fit(rare, n_rows, units, chunk_rows, False, False):
        return REFUSED, False
    return _predict_rows(X, rare, n_rows, params, net, loss_code, out)


prepare_caches(globals())
pause_gc_while_compiling(epoch_kernel)
pause_gc_while_compiling(predict_forward)
pause_gc_while_compiling(_full_gradient)
