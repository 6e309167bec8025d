"""The per-layer mathematics of the kernels: hidden activations and their
derivatives (side by side, one branch per code), the output activations, and the
losses with their output deltas; and vectorised exp and tanh, which they use.

All are compiled helpers, called only from the kernels in :mod:`fastbp._kernels`.
Derivatives are written from the activation's *output*, as scikit-learn does, so
no pre-activation values are kept (swish and gelu, whose derivatives need them,
excepted).
"""

import math

import numpy as np
from numba import njit

from fastbp._kernel_cache import _HELPER, prepare_caches
from fastbp._kernel_codes import (
    ABSOLUTE_ERROR,
    BINARY_LOG_LOSS,
    ELU,
    EXP_OUTPUT,
    GELU,
    HUBER,
    IDENTITY,
    IDENTITY_OUTPUT,
    LEAKY_RELU,
    LEAKY_RELU_SLOPE,
    LOG_LOSS,
    LOGISTIC,
    LOGISTIC_OUTPUT,
    OUTPUT_OF_LOSS,
    P_HUBER_DELTA,
    P_QUANTILE,
    POISSON,
    QUANTILE,
    RELU,
    SOFTMAX_OUTPUT,
    SOFTPLUS,
    SQUARED_ERROR,
    SWISH,
    TANH,
)

# ---------------------------------------------------------------------------------
# exp and tanh over a row, written so that LLVM vectorises them. numba's math.exp
# and math.tanh call the scalar C library, which made tanh and logistic layers
# slower than scikit-learn's numpy (SIMD) versions. Both are Cephes' algorithms,
# accurate to about 1 ulp, like numpy's.
# ---------------------------------------------------------------------------------
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93145751953125e-1
_LN2_LO = 1.42860682030941723212e-6
_EXP_P0 = 1.26177193074810590878e-4
_EXP_P1 = 3.02994407707441961300e-2
_EXP_P2 = 9.99999999999999999910e-1
_EXP_Q0 = 3.00198505138664455042e-6
_EXP_Q1 = 2.52448340349684104192e-3
_EXP_Q2 = 2.27265548208155028766e-1
_EXP_Q3 = 2.00000000000000000009e0
_TANH_P0 = -9.64399179425052238628e-1
_TANH_P1 = -9.92877231001918586564e1
_TANH_P2 = -1.61468768441708447952e3
_TANH_Q0 = 1.12811678491632931402e2
_TANH_Q1 = 2.23548839060100448583e3
_TANH_Q2 = 4.84406305325125486048e3


#: The machine epsilons that clip probabilities in the cross-entropies, as numba
#: constants (np.finfo inside a kernel compiles an overload of its own: start-up time).
FLOAT64_EPS = float(np.finfo(np.float64).eps)
FLOAT32_EPS = float(np.finfo(np.float32).eps)

_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)

_BLOCK = 256  # values per exp block: the scale bits stay in L1, rows of any width


def scratch_sizes(batch_rows, layer_units):
    """Lengths of the two scratch buffers of a workspace: the int64 ``bits`` of the
    exp blocks and the ``temp`` buffer (one hidden layer's worth, at least a block),
    allocated once per fit so that no minibatch allocates."""
    widest = max([int(units) for units in layer_units[1:]] + [1])
    return 2 * _BLOCK, max(_BLOCK, batch_rows * widest)


@njit(**_HELPER)
def _exp_all(values, bits):
    """values <- exp(values) for a contiguous array, in float64 arithmetic, in blocks
    of ``_BLOCK`` values; ``bits`` (int64, ``2 * _BLOCK``) is scratch.

    exp(x) = 2**k * exp(r) with r = x - k ln 2 in [-ln2/2, ln2/2] and a Pade form
    for exp(r). 2**k is built from its bits in two halves, so that results down in
    the subnormal range come out right.
    """
    flat = values.reshape(-1)
    scale_bits_1 = bits[:_BLOCK]
    scale_bits_2 = bits[_BLOCK : 2 * _BLOCK]
    scale_1 = scale_bits_1.view(np.float64)
    scale_2 = scale_bits_2.view(np.float64)
    for start in range(0, flat.shape[0], _BLOCK):
        block = flat[start : start + _BLOCK]
        n = block.shape[0]
        for j in range(n):
            original = float(block[j])
            # min(max(x, -746), 710) as conditionals (min/max compile a function
            # each); beyond: 0 and inf
            x = -746.0 if -746.0 > original else original
            x = 710.0 if 710.0 < x else x
            k = math.floor(x * _LOG2E + 0.5)
            r = x - k * _LN2_HI - k * _LN2_LO
            rr = r * r
            p = r * ((_EXP_P0 * rr + _EXP_P1) * rr + _EXP_P2)
            q = ((_EXP_Q0 * rr + _EXP_Q1) * rr + _EXP_Q2) * rr + _EXP_Q3
            mantissa = 1.0 + 2.0 * (p / (q - p))
            # NaN passes through (the clamp above would have turned it into a number).
            mantissa = mantissa if original == original else original
            k_int = np.int64(k)
            half = k_int >> 1
            scale_bits_1[j] = (half + 1023) << 52
            scale_bits_2[j] = (k_int - half + 1023) << 52
            block[j] = mantissa
        for j in range(n):
            block[j] = float(block[j]) * scale_1[j] * scale_2[j]


@njit(**_HELPER)
def _tanh_all(values, bits, temp):
    """values <- tanh(values) for a contiguous array: 1 - 2 / (exp(2|x|) + 1) for
    |x| > 0.625, a rational approximation nearer zero (where the first form would
    cancel); ``bits`` and ``temp`` (at least ``_BLOCK`` values) are scratch."""
    flat = values.reshape(-1)
    for start in range(0, flat.shape[0], _BLOCK):
        block = flat[start : start + _BLOCK]
        n = block.shape[0]
        doubled = temp[:n]
        for j in range(n):
            doubled[j] = 2.0 * abs(float(block[j]))
        _exp_all(doubled, bits)
        for j in range(n):
            x = float(block[j])
            large = 1.0 - 2.0 / (doubled[j] + 1.0)
            large = large if x >= 0 else -large
            s = x * x
            ratio = ((_TANH_P0 * s + _TANH_P1) * s + _TANH_P2) / (
                ((s + _TANH_Q0) * s + _TANH_Q1) * s + _TANH_Q2
            )
            small = x + x * s * ratio
            block[j] = large if abs(x) > 0.625 else small


# ---------------------------------------------------------------------------------
# Activations: forward rule and derivative side by side, one branch per code. The
# common ones come first; the others need the scratch of ``rare`` and compile only
# into kernels that are handed it.
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def _exp_of_negated(values, temp, bits):
    """exp(-values), in the front of the scratch ``temp``, shaped like ``values``."""
    n_rows, n_units = values.shape
    decay = temp[: n_rows * n_units].reshape(n_rows, n_units)
    for i in range(n_rows):
        for j in range(n_units):
            decay[i, j] = -values[i, j]
    _exp_all(decay, bits)
    return decay


@njit(**_HELPER, inline="always")
def _exp(values, bits, exact):
    """values <- exp(values) for a 2-D array: with ``exact`` (prediction), by the C
    library's ``exp`` one value at a time, numpy's and scipy's results; else by the
    vectorised :func:`_exp_all` (training: an ulp apart, and faster)."""
    if exact:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                values[i, j] = math.exp(values[i, j])
    else:
        _exp_all(values, bits)


@njit(**_HELPER)
def _activate(z, bias, code, bits, rare, pre, exact):
    """z <- activation(z + bias), row by row, for a hidden layer; swish keeps
    z + bias in ``pre`` (which may be z itself when no derivative follows);
    ``exact`` as in :func:`_output_activate` (the logistic's exp)."""
    n_rows, n_units = z.shape
    if code == LOGISTIC:  # 1 / (1 + exp(-x)), as scipy's expit
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = -(z[i, j] + bias[j])
        _exp(z, bits, exact)
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = 1.0 / (1.0 + z[i, j])
        return
    for i in range(n_rows):
        for j in range(n_units):
            z[i, j] += bias[j]
    if code == IDENTITY:
        return
    if code == RELU:  # written so that NaN propagates like np.maximum does
        zero = z.dtype.type(0)
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = zero if z[i, j] < 0 else z[i, j]
        return
    if code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_RELU_SLOPE)
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = z[i, j] if z[i, j] >= 0 else slope * z[i, j]
        return
    if rare is None:
        raise ValueError("fastbp: this activation needs the full kernel")
    temp = rare.temp
    if code == TANH:
        _tanh_all(z, bits, temp)
    elif code == ELU:  # x for x > 0, exp(x) - 1 below
        # explicit loops, not np.minimum/np.abs: array ufuncs cost compile time
        negative = temp[: n_rows * n_units].reshape(n_rows, n_units)
        for i in range(n_rows):
            for j in range(n_units):
                negative[i, j] = min(z[i, j], 0)
        _exp_all(negative, bits)
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = z[i, j] if z[i, j] > 0 else negative[i, j] - 1
    elif code == SOFTPLUS:  # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), stably
        decay = temp[: n_rows * n_units].reshape(n_rows, n_units)
        for i in range(n_rows):
            for j in range(n_units):
                decay[i, j] = -abs(z[i, j])
        _exp_all(decay, bits)
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = max(z[i, j], 0) + math.log1p(decay[i, j])
    elif code == SWISH:  # x / (1 + exp(-x)): 0 for x -> -inf, x for x -> +inf
        for i in range(n_rows):
            for j in range(n_units):
                pre[i, j] = z[i, j]
        decay = _exp_of_negated(z, temp, bits)
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = pre[i, j] / (1 + decay[i, j])
    elif code == GELU:  # x Phi(x) = x (1 + erf(x / sqrt(2))) / 2: PyTorch's exact GELU
        for i in range(n_rows):
            for j in range(n_units):
                x = float(z[i, j])
                pre[i, j] = z[i, j]
                z[i, j] = 0.5 * x * (1.0 + math.erf(x * _SQRT_HALF))
    else:
        raise ValueError("fastbp: unknown activation code")


@njit(**_HELPER)
def _multiply_by_derivative(delta, activation, code, bits, rare, pre):
    """delta <- delta * f'(z), with f'(z) written from the output a = f(z) (from the
    kept pre-activation z in ``pre`` for swish)."""
    n_rows, n_units = delta.shape
    if code == IDENTITY:
        return
    if code == RELU:  # f' = 0 where the unit was clipped (a == 0), 1 elsewhere
        zero = delta.dtype.type(0)
        for i in range(n_rows):
            for j in range(n_units):
                # a select rather than a conditional store, so the loop vectorises
                delta[i, j] = zero if activation[i, j] == 0 else delta[i, j]
        return
    if code == LEAKY_RELU:  # f' = 1 where a > 0, the slope elsewhere
        slope = delta.dtype.type(LEAKY_RELU_SLOPE)
        for i in range(n_rows):
            for j in range(n_units):
                delta[i, j] = delta[i, j] if activation[i, j] > 0 else slope * delta[i, j]
        return
    if code == LOGISTIC:  # f' = a (1 - a)
        for i in range(n_rows):
            for j in range(n_units):
                a = activation[i, j]
                delta[i, j] = delta[i, j] * a * (1 - a)
        return
    if rare is None:
        raise ValueError("fastbp: this activation needs the full kernel")
    if code == TANH:  # f' = 1 - a^2
        for i in range(n_rows):
            for j in range(n_units):
                a = activation[i, j]
                delta[i, j] = delta[i, j] * (1 - a * a)
    elif code == ELU:  # f' = 1 where a > 0, exp(z) = a + 1 elsewhere
        for i in range(n_rows):
            for j in range(n_units):
                a = activation[i, j]
                delta[i, j] = delta[i, j] if a > 0 else delta[i, j] * (a + 1)
    elif code == SOFTPLUS:  # f' = sigmoid(z) = 1 - exp(-a)
        decay = _exp_of_negated(activation, rare.temp, bits)
        for i in range(n_rows):
            for j in range(n_units):
                delta[i, j] = delta[i, j] * (1 - decay[i, j])
    elif code == SWISH:  # f' = s (1 + z (1 - s)), s = sigmoid(z)
        decay = _exp_of_negated(pre, rare.temp, bits)
        for i in range(n_rows):
            for j in range(n_units):
                s = 1 / (1 + decay[i, j])
                delta[i, j] = delta[i, j] * (s * (1 + pre[i, j] * (1 - s)))
    elif code == GELU:  # f' = Phi(z) + z phi(z), phi the standard normal density
        for i in range(n_rows):
            for j in range(n_units):
                x = float(pre[i, j])
                cdf = 0.5 * (1.0 + math.erf(x * _SQRT_HALF))
                density = math.exp(-0.5 * x * x) * _INV_SQRT_2PI
                delta[i, j] = delta[i, j] * (cdf + x * density)
    else:
        raise ValueError("fastbp: unknown activation code")


@njit(**_HELPER)
def _pairwise_block(values, start, n):
    """numpy's pairwise sum of ``values[start:start + n]`` for ``n <= 128``: a plain
    loop below 8 values, else 8 running sums combined as a tree, then the rest.
    Not inlined: :func:`_pairwise_sum` calls it from two places, and numba compiled
    the two inlined copies 0.4-0.45 s slower than one helper (measured)."""
    if n < 8:
        total = values.dtype.type(0)
        for k in range(n):
            total += values[start + k]
        return total
    r0, r1 = values[start], values[start + 1]
    r2, r3 = values[start + 2], values[start + 3]
    r4, r5 = values[start + 4], values[start + 5]
    r6, r7 = values[start + 6], values[start + 7]
    whole = n - n % 8
    for k in range(start + 8, start + whole, 8):
        r0 += values[k]
        r1 += values[k + 1]
        r2 += values[k + 2]
        r3 += values[k + 3]
        r4 += values[k + 4]
        r5 += values[k + 5]
        r6 += values[k + 6]
        r7 += values[k + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for k in range(start + whole, start + n):
        total += values[k]
    return total


@njit(**_HELPER)
def _pairwise_sum(values):
    """The sum of a 1-D array in numpy's order (``pairwise_sum`` in
    numpy/_core/src/umath/loops_utils.h.src): blocks of up to 128 values summed by
    :func:`_pairwise_block`, longer runs split in halves (at a multiple of 8) and the
    halves' sums added. The halving is walked with an explicit stack, not recursion:
    numba's on-disk cache does not reload a recursive function safely."""
    n = values.shape[0]
    if n <= 128:
        return _pairwise_block(values, np.intp(0), n)  # not a literal 0: see _matrix
    # Depth first, left half before right; a segment's two sums are added when both
    # are known. 64 levels halve any array length.
    # (np.empty of intp and of the values' dtype, as the prediction kernel's buffers:
    # compiled once for both; a np.zeros of bools compiled two functions more.)
    starts = np.empty(64, dtype=np.intp)
    counts = np.empty(64, dtype=np.intp)
    split = np.empty(64, dtype=np.intp)  # 1 once the segment is split
    sums = np.empty(64, dtype=values.dtype)
    top, n_sums = 0, 0
    starts[0], counts[0], split[0] = 0, n, 0
    while top >= 0:
        start, count = starts[top], counts[top]
        if count <= 128:
            sums[n_sums] = _pairwise_block(values, start, count)
            n_sums += 1
            top -= 1
        elif split[top]:
            sums[n_sums - 2] = sums[n_sums - 2] + sums[n_sums - 1]
            n_sums -= 1
            top -= 1
        else:
            split[top] = 1
            half = count // 2
            half -= half % 8
            starts[top + 1], counts[top + 1], split[top + 1] = start + half, count - half, 0
            starts[top + 2], counts[top + 2], split[top + 2] = start, half, 0
            top += 2
    return sums[0]


@njit(**_HELPER)
def _output_activate(z, bias, loss_code, bits, exact):
    """z <- output_activation(z + bias): identity, exp, softmax or logistic, the
    canonical partner of each loss (``OUTPUT_OF_LOSS`` in fastbp._kernel_codes).

    ``exact`` (prediction) computes each exp with the C library's ``exp`` and sums a
    softmax row in numpy's pairwise order: scikit-learn's own arithmetic (scipy's
    expit, numpy's exp and sum), so that predictions from the same weights are its
    bits in float64 (``tests/test_prediction_bits.py``) where numpy's exp is the C
    library's; on CPUs with AVX-512, numpy's own vectorised exp rounds an ulp away in
    some values, and softmax outputs differ by a few ulp. Training keeps the
    vectorised :func:`_exp_all` (an ulp apart, and faster).

    ``exact`` is a bool decided at run time, never a literal ``True`` or ``False``:
    a literal compiles a copy of this helper (and of :func:`_activate`) for each
    value, so that the prediction kernel compiled after a first fit could not use
    the training kernel's (0.8 s and 0.65 s more, measured).
    """
    n_rows, n_units = z.shape
    if loss_code < 0 or loss_code >= len(OUTPUT_OF_LOSS):
        raise ValueError("fastbp: unknown loss code")
    output = OUTPUT_OF_LOSS[loss_code]
    if output == IDENTITY_OUTPUT:
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] += bias[j]
        return
    if output != EXP_OUTPUT and output != SOFTMAX_OUTPUT and output != LOGISTIC_OUTPUT:
        raise ValueError("fastbp: unknown output activation code")
    # Bring every case to one exp call (each call site costs compile time):
    # exp(z + b) for exp, exp(-(z + b)) for the logistic, exp(z + b - row max)
    # for the softmax.
    for i in range(n_rows):
        if output == SOFTMAX_OUTPUT:
            row_max = z[i, 0] + bias[0]
            for j in range(n_units):
                z[i, j] += bias[j]
                row_max = max(row_max, z[i, j])
            for j in range(n_units):
                z[i, j] -= row_max
        elif output == LOGISTIC_OUTPUT:
            for j in range(n_units):
                z[i, j] = -(z[i, j] + bias[j])
        else:
            for j in range(n_units):
                z[i, j] += bias[j]
    _exp(z, bits, exact)
    if output == LOGISTIC_OUTPUT:
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = 1.0 / (1.0 + z[i, j])
    elif output == SOFTMAX_OUTPUT:
        for i in range(n_rows):
            if exact:
                total = _pairwise_sum(z[i])
            else:
                total = z.dtype.type(0)
                for j in range(n_units):
                    total += z[i, j]
            for j in range(n_units):
                z[i, j] /= total


@njit(**_HELPER)
def _xlogy(x, y):
    return 0.0 if x == 0 else x * math.log(y)


@njit(**_HELPER)
def _output_delta_and_loss(prediction, target, sample_weight, use_weights, delta, loss_code,
                           loss_params):  # fmt: skip
    """Write the output delta d loss / d z (times the sample weight) and return the
    weighted sum of per-sample losses (float64).

    The losses are scikit-learn's: half squared error, Poisson deviance, and the
    (binary) cross-entropy with probabilities clipped to [eps, 1 - eps]; and beyond
    it, absolute error (delta: the sign of the residual), Huber (delta: the
    residual clipped to [-huber_delta, huber_delta]) and the quantile (pinball) loss
    ``max(q (t - p), (1 - q) (p - t))`` (delta: ``1 - q`` above the target, ``-q``
    below, 0 on it, as for the absolute error, which is twice the q = 0.5 case).
    """
    n_rows, n_outputs = prediction.shape
    eps = FLOAT64_EPS if prediction.itemsize == 8 else FLOAT32_EPS
    huber_delta = float(loss_params[P_HUBER_DELTA])
    clip = prediction.dtype.type(huber_delta)
    quantile = float(loss_params[P_QUANTILE])
    above, below = prediction.dtype.type(1 - quantile), prediction.dtype.type(-quantile)
    total = 0.0
    for i in range(n_rows):
        row_loss = 0.0
        for j in range(n_outputs):
            p = prediction[i, j]
            t = target[i, j]
            residual = p - t
            delta[i, j] = residual
            if loss_code == SQUARED_ERROR:
                row_loss += 0.5 * (float(t) - float(p)) ** 2
            elif loss_code == POISSON:
                row_loss += _xlogy(float(t), float(t) / float(p)) - float(t) + float(p)
            elif loss_code == LOG_LOSS:
                clipped = min(max(float(p), eps), 1 - eps)
                row_loss -= _xlogy(float(t), clipped)
            elif loss_code == BINARY_LOG_LOSS:
                clipped = min(max(float(p), eps), 1 - eps)
                row_loss -= _xlogy(float(t), clipped) + _xlogy(1 - float(t), 1 - clipped)
            elif loss_code == ABSOLUTE_ERROR:
                row_loss += abs(float(residual))
                delta[i, j] = (residual > 0) - (residual < 0)
            elif loss_code == HUBER:
                size = abs(float(residual))
                if size <= huber_delta:
                    row_loss += 0.5 * size * size
                else:
                    row_loss += huber_delta * (size - 0.5 * huber_delta)
                delta[i, j] = min(max(residual, -clip), clip)
            elif loss_code == QUANTILE:
                if residual > 0:
                    row_loss += (1 - quantile) * float(residual)
                    delta[i, j] = above
                elif residual < 0:
                    row_loss -= quantile * float(residual)
                    delta[i, j] = below
                else:
                    delta[i, j] = 0
            else:
                raise ValueError("fastbp: unknown loss code")
        if use_weights:
            weight = sample_weight[i]
            for j in range(n_outputs):
                delta[i, j] *= weight
            row_loss *= float(weight)
        total += row_loss
    return total


prepare_caches(globals())
