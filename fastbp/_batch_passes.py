"""One batch through the network: the forward pass, the backward pass by the chain
rule, and gathering the batch's rows; sparse input and dropout, which only kernels
handed :class:`fastbp._kernels.RarePaths` compile.

Layer ``l``'s values for a batch of ``m`` rows are the flat slice
``[offsets[l], offsets[l] + m * units[l])`` of a workspace buffer; the coefficients
of layer ``l`` are ``params[coef_offsets[l]:][: fan_in * fan_out]``.
"""

import math

import numpy as np
from numba import njit

from fastbp._kernel_cache import _HELPER, prepare_caches
from fastbp._layer_math import _activate, _multiply_by_derivative, _output_activate


# ---------------------------------------------------------------------------------
# Views of the flat buffers through two small helpers rather than slicing (and
# reshaping) inline: numba writes a slice's bounds handling and a reshape's checks out
# at every site (the common-path kernel had 20 of them, a fifth of its unoptimised IR;
# its own compile time fell by about a second, 4.1-4.2 s instead of 5.0-5.5 s). A call
# is a few lines, and LLVM inlines the helper back: the machine code is the same.
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def _segment(buffer, start, length):
    """``buffer[start : start + length]``."""
    return buffer[start : start + length]


@njit(**_HELPER)
def _matrix(buffer, offset, rows, columns):
    """The rows x columns matrix stored at ``buffer[offset:]`` (a view). Called with
    integers, never literals: a literal argument compiles a copy of a helper for its
    value (this one's cost 0.25-0.3 s of a cold fit, measured)."""
    return buffer[offset : offset + rows * columns].reshape(rows, columns)


# ---------------------------------------------------------------------------------
# The L2 penalty's value and gradient clipping (the step itself: fastbp._optimizer_steps).
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


# ---------------------------------------------------------------------------------
# Sparse input and dropout: only in kernels handed ``RarePaths``.
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def _sparse_rows_dot(rare, rows, coef, out):
    """out = X[rows] @ coef for the CSR matrix of ``rare``, touching only the stored
    entries."""
    data, indices, indptr = rare.csr_data, rare.csr_indices, rare.csr_indptr
    out[:] = 0
    n_units = coef.shape[1]
    for k in range(rows.shape[0]):
        row = rows[k]
        for p in range(indptr[row], indptr[row + 1]):
            column = indices[p]
            value = data[p]
            for j in range(n_units):
                out[k, j] += value * coef[column, j]


@njit(**_HELPER)
def _sparse_rows_transpose_dot(rare, rows, delta, out):
    """out = X[rows]^T @ delta for the CSR matrix of ``rare``."""
    data, indices, indptr = rare.csr_data, rare.csr_indices, rare.csr_indptr
    out[:] = 0
    n_units = delta.shape[1]
    for k in range(rows.shape[0]):
        row = rows[k]
        for p in range(indptr[row], indptr[row + 1]):
            column = indices[p]
            value = data[p]
            for j in range(n_units):
                out[column, j] += value * delta[k, j]


@njit(**_HELPER)
def _drop_units(a, mask, dropped, rate):
    """Inverted dropout: keep each unit with probability 1 - rate, scaled by
    1 / (1 - rate) so that expectations match prediction time (no dropout)."""
    scale = a.dtype.type(1.0 / (1.0 - rate))
    zero = a.dtype.type(0)
    n_rows, n_units = a.shape
    for i in range(n_rows):
        for j in range(n_units):
            mask[i, j] = scale if np.random.random() >= rate else zero
            dropped[i, j] = a[i, j] * mask[i, j]


# ---------------------------------------------------------------------------------
# Forward and backward passes over one batch. Layer l's values of a batch of m rows
# are the flat slice [offsets[l], offsets[l] + m * units[l]) of a workspace buffer;
# the coefficients of layer l are params[coef_offsets[l]:][: fan_in * fan_out].
# ---------------------------------------------------------------------------------
@njit(**_HELPER, inline="always")
def _forward(x, rows, n_rows, params, net, activations, layer_offsets, bits, loss_code, rare,
             training):  # fmt: skip
    """Forward pass for one batch; returns the output layer's values.

    The batch is the dense rows ``x`` or, with sparse input, the rows ``rows`` of
    the CSR matrix in ``rare`` (multiplied without densifying). With ``training``,
    hidden layers with a dropout rate keep their activations (for the derivative)
    and pass the dropped ones to the next layer.
    """
    units = net.units
    n_layers = units.shape[0]
    z = _matrix(activations, np.intp(0), np.intp(0), np.intp(1))  # typed before the loop
    for layer in range(1, n_layers):
        fan_in, fan_out = units[layer - 1], units[layer]
        start = net.coef_offsets[layer - 1]
        coef = _matrix(params, start, fan_in, fan_out)
        start = layer_offsets[layer]
        z = _matrix(activations, start, n_rows, fan_out)
        if layer == 1:
            if rare is None:
                np.dot(x, coef, z)
            elif rare.is_sparse:
                _sparse_rows_dot(rare, rows, coef, z)
            else:
                np.dot(x, coef, z)
        else:
            start = layer_offsets[layer - 1]
            previous = _matrix(activations, start, n_rows, fan_in)
            if rare is not None:
                if training and net.dropout_rates[layer - 1] > 0:
                    previous = _matrix(rare.dropped, start, n_rows, fan_in)
            np.dot(previous, coef, z)
        start = net.intercept_offsets[layer - 1]
        bias = _segment(params, start, fan_out)
        if layer == n_layers - 1:
            _output_activate(z, bias, loss_code, bits, not training)
            continue
        pre = z  # swish's kept pre-activations: in the rare paths' buffer
        if rare is not None:
            if training:
                start = layer_offsets[layer]
                pre = _matrix(rare.pre_activations, start, n_rows, fan_out)
        _activate(z, bias, net.hidden_codes[layer], bits, rare, pre, not training)
        if rare is not None:
            if training and net.dropout_rates[layer] > 0:
                start = layer_offsets[layer]
                _drop_units(
                    z,
                    _matrix(rare.masks, start, n_rows, fan_out),
                    _matrix(rare.dropped, start, n_rows, fan_out),
                    net.dropout_rates[layer],
                )
    return z


@njit(**_HELPER, inline="always")
def _backward(x, rows, n_rows, params, grads, net, work, rare):
    """Backward pass by the chain rule, from the output delta already in ``deltas``.

    Writes the *raw* gradients into ``grads``: ``a_{l-1}^T delta_l`` for each
    coefficient matrix and ``sum_rows delta_l`` for each intercept, before the L2
    term and the division by the weight sum (the optimizer step fuses those).
    Dropout masks multiply the deltas of the units they dropped.
    """
    units = net.units
    activations, deltas, offsets = work.activations, work.deltas, work.layer_offsets
    for layer in range(units.shape[0] - 1, 0, -1):
        fan_in, fan_out = units[layer - 1], units[layer]
        start = offsets[layer]
        delta = _matrix(deltas, start, n_rows, fan_out)
        start = net.coef_offsets[layer - 1]
        coef_grad = _matrix(grads, start, fan_in, fan_out)
        start = net.intercept_offsets[layer - 1]
        intercept_grad = _segment(grads, start, fan_out)
        for j in range(fan_out):
            intercept_grad[j] = 0
        for i in range(n_rows):
            for j in range(fan_out):
                intercept_grad[j] += delta[i, j]
        if layer == 1:
            if rare is None:
                np.dot(x.T, delta, coef_grad)
            elif rare.is_sparse:
                _sparse_rows_transpose_dot(rare, rows, delta, coef_grad)
            else:
                np.dot(x.T, delta, coef_grad)
            continue
        below = layer - 1
        start = offsets[below]
        previous = _matrix(activations, start, n_rows, fan_in)
        layer_input = previous
        with_dropout = False
        if rare is not None:
            with_dropout = net.dropout_rates[below] > 0
            if with_dropout:
                layer_input = _matrix(rare.dropped, start, n_rows, fan_in)
        np.dot(layer_input.T, delta, coef_grad)
        # delta_{l-1} = (delta_l W_l^T) * mask * f'(z_{l-1}); the input layer needs none.
        previous_delta = _matrix(deltas, start, n_rows, fan_in)
        coef_start = net.coef_offsets[below]
        coef = _matrix(params, coef_start, fan_in, fan_out)
        if fan_out == 1:
            # An outer product (one output unit: binary classification, one target):
            # as a loop it takes a third of the time of a BLAS call (measured).
            for i in range(n_rows):
                d = delta[i, 0]
                for j in range(fan_in):
                    previous_delta[i, j] = d * coef[j, 0]
        else:
            np.dot(delta, coef.T, previous_delta)
        if rare is not None:
            if with_dropout:
                mask = _matrix(rare.masks, start, n_rows, fan_in)
                for i in range(n_rows):
                    for j in range(fan_in):
                        previous_delta[i, j] *= mask[i, j]
        pre = previous
        if rare is not None:
            pre = _matrix(rare.pre_activations, start, n_rows, fan_in)
        _multiply_by_derivative(
            previous_delta, previous, net.hidden_codes[below], work.bits, rare, pre
        )


@njit(**_HELPER)
def _gather(data, rows, work, is_sparse):
    """Copy the given rows into the batch buffers (sparse X stays where it is: the
    first layer reads its rows in place); return the weight sum of the batch (the
    row count when there are no weights)."""
    X, Y, sample_weight = data.X, data.Y, data.sample_weight
    x_batch, y_batch, sw_batch = work.x_batch, work.y_batch, work.sw_batch
    weight_sum = 0.0
    n_features = x_batch.shape[1]
    n_outputs = y_batch.shape[1]
    for k in range(rows.shape[0]):
        row = rows[k]
        # element loops: a slice assignment per row costs more than the copy itself
        if not is_sparse:
            for j in range(n_features):
                x_batch[k, j] = X[row, j]
        for j in range(n_outputs):
            y_batch[k, j] = Y[row, j]
        if data.use_weights:
            sw_batch[k] = sample_weight[row]
            weight_sum += sample_weight[row]
    if not data.use_weights:
        weight_sum = float(rows.shape[0])
    return weight_sum


prepare_caches(globals())
