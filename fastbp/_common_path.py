"""The common path of training, compiled as one flat kernel: what most fits use.

Dense input, no dropout, no gradient clipping; hidden layers 'identity', 'relu',
'leaky_relu' or 'logistic'; the squared error or the (binary) cross-entropy; sgd,
adam or adamw. That covers scikit-learn's defaults and most of its users' options.
Every other fit runs the full kernel (:func:`fastbp._kernels.epoch_kernel`, built
from the helpers of :mod:`fastbp._layer_math` and :mod:`fastbp._batch_passes`),
compiled the first time a fit needs it.

Why a second, flat copy of most of that arithmetic: numba compiles each helper as a
library of its own, then links and optimises it again inside each caller, and
inlining helpers at numba's level costs more than it saves (both measured). One
function with the loops written out compiles faster, which is what a new user waits
for on the first fit. The hidden activations and their derivatives, and the
optimizer steps (defined here, called by the full kernel too), are shared helpers:
the activations written out here trained 2-4% slower (measured). Each
operation is the full kernel's, in the same order, so both give the same bits:
``tests/test_common_path.py`` checks every option this kernel takes against the
full kernel, weight for weight. A new option goes into the full kernel only (the
router, :func:`is_common`, sends it there).
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
    workspace_fits,
)
from fastbp._batch_passes import _matrix, _segment
from fastbp._kernel_cache import _HELPER, _JIT, pause_gc_while_compiling, prepare_caches
from fastbp._kernel_codes import (
    ADAM,
    ADAMW,
    BINARY_LOG_LOSS,
    H_ALPHA,
    H_BETA_1,
    H_BETA_2,
    H_EPSILON,
    H_LEARNING_RATE,
    H_MOMENTUM,
    H_WEIGHT_DECAY,
    IDENTITY,
    LEAKY_RELU,
    LOG_LOSS,
    LOGISTIC,
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
    _BLOCK,
    FLOAT32_EPS,
    FLOAT64_EPS,
    _activate,
    _exp_all,
    _multiply_by_derivative,
    _xlogy,
)

#: What the common path takes; anything else runs the full kernel.
COMMON_ACTIVATIONS = frozenset({IDENTITY, RELU, LEAKY_RELU, LOGISTIC})
COMMON_LOSSES = frozenset({SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS})
COMMON_SOLVERS = frozenset({SGD, ADAM, ADAMW})


def is_common(hidden_codes, loss_code, solver_code, max_grad_norm):
    """True when a fit of dense input without dropout can run the common path."""
    return (
        all(int(code) in COMMON_ACTIVATIONS for code in hidden_codes[1:-1])
        and int(loss_code) in COMMON_LOSSES
        and int(solver_code) in COMMON_SOLVERS
        and not max_grad_norm > 0
    )


@njit(**_HELPER)
def no_improvement(loss, best_loss, tol, count):
    """The convergence rule after an epoch of mean loss ``loss``: the updated count of
    epochs without improvement, and the best loss.

    The caller's rule compares in the loss's own precision (float32 for a float32
    regressor); widening its "no improvement" test by a few float32 roundings keeps
    this count at or above the caller's, so a kernel returns at or before the epoch
    where the caller stops.
    """
    threshold = best_loss - tol
    if math.isfinite(best_loss):
        threshold -= 1e-6 * (abs(best_loss) + abs(tol))
    if loss > threshold:
        count += 1
    else:
        count = 0
    # Conditional expressions rather than min/max: those compile a function per type.
    return count, (loss if loss < best_loss else best_loss)


# The optimizer steps, shared with the full kernel's ``_step``.
@njit(**_HELPER)
def _sgd_update(params, grads, velocity, start, stop, alpha, weight_sum, learning_rate,
                momentum, nesterov):  # fmt: skip
    # One division per step, then multiplications: division is the slowest vector
    # operation here, and the result differs from scikit-learn's by at most an ulp.
    inverse_weight_sum = params.dtype.type(1) / weight_sum
    # Slices indexed from 0: with range(start, stop) numba cannot tell the index is
    # never negative, and the wrap-around check it keeps stops LLVM vectorising the
    # loop (3.8x slower in float64, 12x in float32, for the Adam step; measured).
    params, grads = params[start:stop], grads[start:stop]
    velocity = velocity[start:stop]
    for k in range(params.shape[0]):
        w = params[k]
        g = (grads[k] + alpha * w) * inverse_weight_sum
        v = momentum * velocity[k] - learning_rate * g
        velocity[k] = v
        if nesterov:
            params[k] = w + (momentum * v - learning_rate * g)
        else:
            params[k] = w + v


@njit(**_HELPER)
def _adam_update(params, grads, first_moment, second_moment, start, stop, alpha, weight_sum,
                 learning_rate, beta_1, beta_2, epsilon, keep):  # fmt: skip
    """Adam's step; ``keep`` scales the weights first (AdamW's decoupled decay,
    ``1 - learning_rate * weight_decay``; exactly 1 for Adam, which changes no bit)."""
    one = params.dtype.type(1)
    inverse_weight_sum = one / weight_sum  # see _sgd_update
    # Slices indexed from 0, so that the loop vectorises (see _sgd_update).
    params, grads = params[start:stop], grads[start:stop]
    first_moment, second_moment = first_moment[start:stop], second_moment[start:stop]
    for k in range(params.shape[0]):
        w = params[k]
        g = (grads[k] + alpha * w) * inverse_weight_sum
        m = beta_1 * first_moment[k] + (one - beta_1) * g
        v = beta_2 * second_moment[k] + (one - beta_2) * (g * g)
        first_moment[k] = m
        second_moment[k] = v
        params[k] = keep * w + (-learning_rate * m) / (math.sqrt(v) + epsilon)


@njit(**_JIT)
def common_epochs(X, Y, sample_weight, use_weights, units, coef_offsets, intercept_offsets,
                  hidden_codes, n_coefs, activations, deltas, layer_offsets, bits, x_batch,
                  y_batch, sw_batch, grads, params, state_1, state_2, orders, batch_size,
                  loss_code, solver_code, nesterov, hyper, adam_step, loss_sums, steps,
                  stopping, predicting, out):  # fmt: skip
    """:func:`fastbp._kernels.run_epochs` for the common path (same arguments, as the
    fields of its named tuples, less those the common path does not read); or, with
    ``predicting``, :func:`fastbp._kernels.predict_forward` (the forward pass of
    every row of ``X`` into ``out``; the training arguments are then placeholders).

    Prediction shares this kernel so that the first prediction after a first fit
    compiles nothing more. It returns ``(inputs_finite, outputs_finite)`` then, as
    predict_forward does (as an int and a bool).
    """
    if not layout_lengths_fit(
        units.shape[0], coef_offsets.shape[0], intercept_offsets.shape[0], hidden_codes.shape[0]
    ):
        return REFUSED, False
    if predicting:
        last = units.shape[0] - 1
        if not prediction_fits(
            X.shape[0], X.shape[1], X.shape[0], out.shape[0], out.shape[1], units[0],
            units[last], params.shape[0], intercept_offsets[last - 1] + units[last],
        ):  # fmt: skip
            return REFUSED, False
    elif not (
        network_fits(units, coef_offsets, intercept_offsets, hidden_codes, n_coefs, params)
        and workspace_fits(
            X, Y, sample_weight, use_weights, False, units, activations, deltas,
            layer_offsets, bits, x_batch, y_batch, sw_batch, grads, params, batch_size,
        )
        and epochs_fit(params, state_1, state_2, solver_code, orders.shape[0], hyper,
                       loss_sums, steps, stopping)
        and orders_fit(orders, Y.shape[0])
    ):  # fmt: skip
        return REFUSED, False
    n_layers = units.shape[0]
    last = n_layers - 1
    n_outputs = units[last]
    n_features = X.shape[1]
    n_params = params.shape[0]
    n_samples = orders.shape[1]
    n_epochs = orders.shape[0]
    outputs_finite = True
    if predicting:  # X's rows in order, in chunks of 1024 as predict_forward reads them
        for i in range(X.shape[0]):
            for j in range(n_features):
                if not math.isfinite(X[i, j]):
                    return 0, False
        n_samples, n_epochs = X.shape[0], 1
        # The chunk buffers, allocated here: from the Python caller they cost a one-row
        # predict_proba 67-81 us instead of 20-22 us (measured).
        batch_size = n_samples if n_samples < 1024 else 1024
        layer_offsets = np.empty(n_layers, dtype=np.intp)
        layer_offsets[0] = 0
        size = 0  # not "total": that name is the softmax's sum, in the model's dtype
        for layer in range(1, n_layers):
            layer_offsets[layer] = size
            size += batch_size * units[layer]
        activations = np.empty(size, dtype=params.dtype)
        bits = np.empty(2 * _BLOCK, dtype=np.int64)
        x_batch = np.empty((batch_size, n_features), dtype=params.dtype)
    out_start = layer_offsets[last]
    dtype = params.dtype.type
    zero = dtype(0)
    eps = FLOAT64_EPS if params.itemsize == 8 else FLOAT32_EPS
    alpha = float(hyper[H_ALPHA])
    beta_1, beta_2 = hyper[H_BETA_1], hyper[H_BETA_2]
    step = adam_step
    check_stopping = stopping[S_CHECK] > 0
    best_loss, tol = stopping[S_BEST_LOSS], stopping[S_TOL]
    count, patience = stopping[S_NO_IMPROVEMENT_COUNT], stopping[S_N_ITER_NO_CHANGE]
    for epoch in range(n_epochs):
        order = orders[epoch]
        loss_sum = 0.0
        finite = True
        for start in range(0, n_samples, batch_size):
            stop = start + batch_size
            n_rows = (n_samples if n_samples < stop else stop) - start
            # Gather the batch's rows (element loops: a slice per row costs more).
            weight_sum = 0.0
            for k in range(n_rows):
                row = start + k if predicting else order[start + k]
                for j in range(n_features):
                    x_batch[k, j] = X[row, j]
                if predicting:
                    continue
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
            z = _matrix(activations, 0, 0, 1)  # typed before the loop
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
                code = hidden_codes[layer]
                if layer == last:
                    # The output activation paired with the loss: identity, softmax
                    # (exp of z + b - row max, normalised) or logistic (1/(1+exp(-z-b))).
                    for i in range(n_rows):
                        if loss_code == LOG_LOSS:
                            row_max = z[i, 0] + bias[0]
                            for j in range(fan_out):
                                z[i, j] += bias[j]
                                value = z[i, j]
                                row_max = value if value > row_max else row_max
                            for j in range(fan_out):
                                z[i, j] -= row_max
                        elif loss_code == BINARY_LOG_LOSS:
                            for j in range(fan_out):
                                z[i, j] = -(z[i, j] + bias[j])
                        else:
                            for j in range(fan_out):
                                z[i, j] += bias[j]
                    if loss_code == SQUARED_ERROR:
                        continue
                    _exp_all(z, bits)
                    if loss_code == BINARY_LOG_LOSS:
                        for i in range(n_rows):
                            for j in range(fan_out):
                                z[i, j] = 1.0 / (1.0 + z[i, j])
                    else:
                        for i in range(n_rows):
                            total = zero
                            for j in range(fan_out):
                                total += z[i, j]
                            for j in range(fan_out):
                                z[i, j] /= total
                else:
                    # The hidden activations are the full kernel's own helper (with no
                    # rare paths it compiles only the common codes, and raises on any
                    # other): the same loops written out here trained 2-4% slower.
                    _activate(z, bias, code, bits, None, z)

            if predicting:
                for i in range(n_rows):
                    for j in range(n_outputs):
                        value = z[i, j]
                        out[start + i, j] = value
                        if not math.isfinite(value):
                            outputs_finite = False
                continue

            # Output delta (prediction - target, times the sample weight) and loss.
            delta = _matrix(deltas, out_start, n_rows, n_outputs)
            batch_loss_sum = 0.0
            for i in range(n_rows):
                row_loss = 0.0
                for j in range(n_outputs):
                    p = z[i, j]
                    t = y_batch[i, j]
                    delta[i, j] = p - t
                    if loss_code == SQUARED_ERROR:
                        row_loss += 0.5 * (float(t) - float(p)) ** 2
                        continue
                    # min(max(p, eps), 1 - eps), as the full kernel's
                    clipped = float(p)
                    clipped = eps if eps > clipped else clipped
                    clipped = (1 - eps) if (1 - eps) < clipped else clipped
                    if loss_code == LOG_LOSS:
                        row_loss -= _xlogy(float(t), clipped)
                    elif loss_code == BINARY_LOG_LOSS:
                        row_loss -= _xlogy(float(t), clipped) + _xlogy(1 - float(t), 1 - clipped)
                    else:
                        raise ValueError("fastbp: not a loss of the common path")
                if use_weights:
                    weight = sw_batch[i]
                    for j in range(n_outputs):
                        delta[i, j] *= weight
                    row_loss *= float(weight)
                batch_loss_sum += row_loss

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
                # f'(z_{l-1}) from the output a_{l-1}, by the full kernel's helper
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

            # The optimizer step (the full kernel's helpers); the L2 term for the
            # coefficients only, so coefficients and intercepts are two calls.
            divisor = dtype(weight_sum)
            learning_rate = hyper[H_LEARNING_RATE]
            coefs_end, alpha_dtype = np.intp(n_coefs), hyper[H_ALPHA]
            if solver_code == SGD:  # with (Nesterov) momentum
                momentum = hyper[H_MOMENTUM]
                _sgd_update(params, grads, state_1, np.intp(0), coefs_end, alpha_dtype,
                            divisor, learning_rate, momentum, nesterov)  # fmt: skip
                _sgd_update(params, grads, state_1, coefs_end, n_params, zero, divisor,
                            learning_rate, momentum, nesterov)  # fmt: skip
            elif solver_code == ADAM or solver_code == ADAMW:
                step += 1
                # Bias-corrected step size, computed in float64 as scikit-learn does.
                corrected = (
                    float(learning_rate)
                    * math.sqrt(1 - float(beta_2) ** step)
                    / (1 - float(beta_1) ** step)
                )
                epsilon = hyper[H_EPSILON]
                # AdamW decays the coefficients by the uncorrected step size.
                keep = dtype(1)
                if solver_code == ADAMW:
                    keep = dtype(1 - float(learning_rate) * float(hyper[H_WEIGHT_DECAY]))
                _adam_update(params, grads, state_1, state_2, np.intp(0), coefs_end,
                             alpha_dtype, divisor, dtype(corrected), beta_1, beta_2, epsilon,
                             keep)  # fmt: skip
                _adam_update(params, grads, state_1, state_2, coefs_end, n_params, zero,
                             divisor, dtype(corrected), beta_1, beta_2, epsilon,
                             dtype(1))  # fmt: skip
            else:
                raise ValueError("fastbp: not a solver of the common path")
            batch_loss = batch_loss_sum / weight_sum + 0.5 * alpha * squared_norm / weight_sum
            loss_sum += batch_loss * n_rows
            if not math.isfinite(batch_loss):
                finite = False
                break
        if finite:
            for k in range(n_params):
                if not math.isfinite(params[k]):
                    finite = False
                    break
        if predicting:
            return 1, outputs_finite
        loss_sums[epoch] = loss_sum
        steps[epoch] = step
        if not finite:
            return epoch + 1, False
        if check_stopping:
            count, best_loss = no_improvement(loss_sum / n_samples, best_loss, tol, count)
            if count > patience:
                return epoch + 1, True
    return orders.shape[0], True


prepare_caches(globals())
pause_gc_while_compiling(common_epochs)
