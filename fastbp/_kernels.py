"""Compiled kernels: activations, losses, forward and backward passes, one epoch.

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

import gc
import math
import os
import warnings
from typing import NamedTuple

import numpy as np
from numba import njit

# Hidden-layer activations.
IDENTITY = 0
LOGISTIC = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
SWISH = 7  # x * sigmoid(x), also called SiLU
ACTIVATION_CODES = {
    "identity": IDENTITY,
    "logistic": LOGISTIC,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "softplus": SOFTPLUS,
    "swish": SWISH,
}
LEAKY_RELU_SLOPE = 0.01

# Losses. Each is paired with its canonical output activation (identity, exp,
# softmax, logistic), which makes the output delta simply ``prediction - target``
# (absolute error, Huber and quantile, with an identity output, take that
# difference's sign, its clipped value, and its sign weighted by the quantile). The
# Python side of each loss (its parameters, its numpy formula, its scikit-learn
# counterpart) is its row in fastbp._losses.LOSSES.
SQUARED_ERROR = 0
POISSON = 1
LOG_LOSS = 2
BINARY_LOG_LOSS = 3
ABSOLUTE_ERROR = 4
HUBER = 5
QUANTILE = 6
LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "poisson": POISSON,
    "log_loss": LOG_LOSS,
    "binary_log_loss": BINARY_LOG_LOSS,
    "absolute_error": ABSOLUTE_ERROR,
    "huber": HUBER,
    "quantile": QUANTILE,
}

# Optimizers (the Python side of each is its class in fastbp._optimizers.OPTIMIZERS).
SGD = 0
ADAM = 1
ADAMW = 2  # Adam with decoupled weight decay (Loshchilov & Hutter, 2019)

# Layout of the ``hyper`` vector handed to the epoch kernel (one dtype-typed array
# instead of many scalars keeps float32 arithmetic in float32).
H_LEARNING_RATE = 0
H_MOMENTUM = 1
H_BETA_1 = 2
H_BETA_2 = 3
H_EPSILON = 4
H_ALPHA = 5
H_WEIGHT_DECAY = 6
N_HYPER = 7

# Layout of the ``loss_params`` vector: the parameters of the losses that have one.
P_HUBER_DELTA = 0
P_QUANTILE = 1
N_LOSS_PARAMS = 2

# Layout of the float64 ``stopping`` vector of run_epochs: whether to check the
# convergence rule between epochs, and the rule's state and parameters.
S_CHECK = 0
S_BEST_LOSS = 1
S_TOL = 2
S_N_ITER_NO_CHANGE = 3
S_NO_IMPROVEMENT_COUNT = 4
N_STOPPING = 5


def _cache_probe():  # pragma: no cover - only decorated, never called
    return 0


def _numba_cache_location():
    """Where numba caches this file's kernels, or None when no location is writable.

    With ``cache=True`` numba raises at decoration time when no location is writable
    (a read-only install and home directory), which would make ``import fastbp``
    fail. Probe once with a function of this file, and fall back to compiling
    without a cache.
    """
    try:
        return njit(cache=True)(_cache_probe)._cache.cache_path
    except RuntimeError:
        return None


def _cache_warning(location):
    """The warning to give about the cache location, or None when all is well.

    numba tries NUMBA_CACHE_DIR first, then the package directory, then a user-wide
    cache directory, silently skipping those it cannot write to: name the ones
    that failed, so the right one gets fixed.
    """
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    package_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    if location is not None:
        if user_dir and not os.path.abspath(location).startswith(os.path.abspath(user_dir)):
            return (
                f"fastbp: NUMBA_CACHE_DIR ({user_dir}) is not writable, so numba caches "
                f"fastbp's compiled kernels in {location} instead."
            )
        return None
    tried = ([f"NUMBA_CACHE_DIR ({user_dir})"] if user_dir else []) + [
        f"the package directory ({package_dir})",
        "numba's user cache directory",
    ]
    return (
        "fastbp: numba found no writable cache location for its compiled kernels ("
        + ", ".join(tried)
        + " are not writable), so they are compiled anew in every process. Set "
        "NUMBA_CACHE_DIR to a writable directory to cache them."
    )


CACHE_LOCATION = _numba_cache_location()
CACHE_ENABLED = CACHE_LOCATION is not None
if _cache_warning(CACHE_LOCATION) is not None:
    warnings.warn(_cache_warning(CACHE_LOCATION), RuntimeWarning, stacklevel=2)

# error_model="numpy": float division by zero gives inf/NaN as in numpy (which the
# epoch kernel detects) instead of a per-division check that also stops LLVM from
# vectorising the loops.
_JIT = dict(cache=CACHE_ENABLED, nogil=True, error_model="numpy")
# Internal helpers have no Python or C entry points: they are only called from other
# kernels, and the wrappers cost compile time (start-up time) for nothing.
_HELPER = dict(_JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)


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
            x = min(max(original, -746.0), 710.0)  # beyond: 0 and inf
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


@njit(**_HELPER)
def _activate(z, bias, code, bits, rare, pre):
    """z <- activation(z + bias), row by row, for a hidden layer; swish keeps
    z + bias in ``pre`` (which may be z itself when no derivative follows)."""
    n_rows, n_units = z.shape
    if code == LOGISTIC:  # 1 / (1 + exp(-x)), as scipy's expit
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = -(z[i, j] + bias[j])
        _exp_all(z, bits)
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
    else:
        raise ValueError("fastbp: unknown activation code")


@njit(**_HELPER)
def _output_activate(z, bias, loss_code, bits):
    """z <- output_activation(z + bias): identity, exp, softmax or logistic, the
    canonical partner of each loss."""
    n_rows, n_units = z.shape
    if (
        loss_code == SQUARED_ERROR
        or loss_code == ABSOLUTE_ERROR
        or loss_code == HUBER
        or loss_code == QUANTILE
    ):
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] += bias[j]
        return
    if loss_code != POISSON and loss_code != LOG_LOSS and loss_code != BINARY_LOG_LOSS:
        raise ValueError("fastbp: unknown loss code")
    # Bring every case to one exp call (each call site costs compile time):
    # exp(z + b) for poisson, exp(-(z + b)) for the logistic, exp(z + b - row max)
    # for the softmax.
    for i in range(n_rows):
        if loss_code == LOG_LOSS:
            row_max = z[i, 0] + bias[0]
            for j in range(n_units):
                z[i, j] += bias[j]
                row_max = max(row_max, z[i, j])
            for j in range(n_units):
                z[i, j] -= row_max
        elif loss_code == BINARY_LOG_LOSS:
            for j in range(n_units):
                z[i, j] = -(z[i, j] + bias[j])
        else:
            for j in range(n_units):
                z[i, j] += bias[j]
    _exp_all(z, bits)
    if loss_code == BINARY_LOG_LOSS:
        for i in range(n_rows):
            for j in range(n_units):
                z[i, j] = 1.0 / (1.0 + z[i, j])
    elif loss_code == LOG_LOSS:
        for i in range(n_rows):
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
    eps = np.finfo(prediction.dtype).eps
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
    z = activations[:0].reshape(0, 1)  # typed before the loop; every layer sets it
    for layer in range(1, n_layers):
        fan_in, fan_out = units[layer - 1], units[layer]
        start = net.coef_offsets[layer - 1]
        coef = params[start : start + fan_in * fan_out].reshape(fan_in, fan_out)
        start = layer_offsets[layer]
        z = activations[start : start + n_rows * fan_out].reshape(n_rows, fan_out)
        if layer == 1:
            if rare is None:
                np.dot(x, coef, z)
            elif rare.is_sparse:
                _sparse_rows_dot(rare, rows, coef, z)
            else:
                np.dot(x, coef, z)
        else:
            start = layer_offsets[layer - 1]
            previous = activations[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
            if rare is not None:
                if training and net.dropout_rates[layer - 1] > 0:
                    previous = rare.dropped[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
            np.dot(previous, coef, z)
        start = net.intercept_offsets[layer - 1]
        bias = params[start : start + fan_out]
        if layer == n_layers - 1:
            _output_activate(z, bias, loss_code, bits)
            continue
        pre = z  # swish's kept pre-activations: in the rare paths' buffer
        if rare is not None:
            if training:
                start = layer_offsets[layer]
                pre = rare.pre_activations[start : start + n_rows * fan_out].reshape(
                    n_rows, fan_out
                )
        _activate(z, bias, net.hidden_codes[layer], bits, rare, pre)
        if rare is not None:
            if training and net.dropout_rates[layer] > 0:
                start = layer_offsets[layer]
                _drop_units(
                    z,
                    rare.masks[start : start + n_rows * fan_out].reshape(n_rows, fan_out),
                    rare.dropped[start : start + n_rows * fan_out].reshape(n_rows, fan_out),
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
        delta = deltas[start : start + n_rows * fan_out].reshape(n_rows, fan_out)
        start = net.coef_offsets[layer - 1]
        coef_grad = grads[start : start + fan_in * fan_out].reshape(fan_in, fan_out)
        start = net.intercept_offsets[layer - 1]
        intercept_grad = grads[start : start + fan_out]
        intercept_grad[:] = 0
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
        previous = activations[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
        layer_input = previous
        with_dropout = False
        if rare is not None:
            with_dropout = net.dropout_rates[below] > 0
            if with_dropout:
                layer_input = rare.dropped[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
        np.dot(layer_input.T, delta, coef_grad)
        # delta_{l-1} = (delta_l W_l^T) * mask * f'(z_{l-1}); the input layer needs none.
        previous_delta = deltas[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
        coef_start = net.coef_offsets[below]
        coef = params[coef_start : coef_start + fan_in * fan_out].reshape(fan_in, fan_out)
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
                mask = rare.masks[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
                for i in range(n_rows):
                    for j in range(fan_in):
                        previous_delta[i, j] *= mask[i, j]
        pre = previous
        if rare is not None:
            pre = rare.pre_activations[start : start + n_rows * fan_in].reshape(n_rows, fan_in)
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
                    return False, False
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
    return True, outputs_finite


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
            loss = loss_sum / n_samples
            # The caller's rule compares in the loss's own precision (float32 for a
            # float32 regressor); widening its "no improvement" test by a few float32
            # roundings keeps this count at or above the caller's, so the kernel
            # returns at or before the epoch where the caller stops.
            threshold = best_loss - tol
            if math.isfinite(best_loss):
                threshold -= 1e-6 * (abs(best_loss) + abs(tol))
            if loss > threshold:
                count += 1
            else:
                count = 0
            best_loss = min(best_loss, loss)
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
    return epoch_kernel(*data, *net, *work, rare, params, *state, orders, batch_size,
                        *settings, adam_step, dropout_seeds, loss_sums, steps,
                        stopping)  # fmt: skip


def full_loss_and_gradient(data, net, work, rare, order, chunk_rows, params, chunk_grads,
                           settings, dropout_seed):  # fmt: skip
    """Full-batch loss and gradient (for L-BFGS above its exact-arithmetic budget,
    and for the gradient tests), in row chunks of ``chunk_rows``; ``work.grads``
    receives the gradient, ``chunk_grads`` is scratch of the same size. A
    ``dropout_seed`` >= 0 fixes the dropout masks (for gradient checks)."""
    return _full_gradient(data, net, work, rare, order, chunk_rows, params, chunk_grads,
                          settings, dropout_seed)  # fmt: skip


@njit(**_JIT)
def predict_forward(X, rare, params, units, coef_offsets, intercept_offsets, hidden_codes,
                    dropout_rates, n_coefs, loss_code, out):  # fmt: skip
    """Output-layer values for every row of ``X`` (or of the CSR matrix of ``rare``)
    into ``out``, in row chunks. The network arrives as the fields of a
    :class:`Network` (arrays and scalars type in C at the boundary: a one-row
    prediction costs microseconds).

    Returns
    -------
    inputs_finite : bool
        False if dense X holds a NaN or an infinity (nothing is computed then), so a
        caller that skipped validation can fall back to it for the error message.
    outputs_finite : bool
        False if some output overflowed.
    """
    net = Network(units, coef_offsets, intercept_offsets, hidden_codes, dropout_rates, n_coefs)
    return _predict_rows(X, rare, out.shape[0], params, net, loss_code, out)


# ---------------------------------------------------------------------------------
# A cache that heals. numba loads a cached kernel by unpickling its index and data
# files; one truncated or corrupted file (a full disk, a killed process, machines
# sharing a directory) makes that raise in every later process, forever. Each
# kernel's cache is wrapped so that a failed load drops the function's cache entries,
# warns once, and compiles instead; a failed save only warns.
# ---------------------------------------------------------------------------------
_cache_warnings_given = set()


def _warn_once(kind, message):
    if kind not in _cache_warnings_given:
        _cache_warnings_given.add(kind)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


class _SelfHealingCache:
    """Wraps one dispatcher's numba cache (delegating everything else to it)."""

    def __init__(self, cache):
        self._cache = cache

    def __getattr__(self, name):
        return getattr(self._cache, name)

    def load_overload(self, sig, target_context):
        try:
            return self._cache.load_overload(sig, target_context)
        except Exception as exc:  # unpickling a damaged file raises almost anything
            try:
                self._cache.flush()  # rewrites the index empty: the entries are dropped
            except OSError:
                self._cache.disable()
            _warn_once(
                "load",
                f"fastbp: a damaged file in numba's cache of compiled kernels "
                f"({self._cache.cache_path}) could not be loaded ({type(exc).__name__}: "
                f"{exc}); its entries were dropped and the kernels are compiled anew, to "
                "be cached again. Where this repeats, give each machine or worker its "
                "own NUMBA_CACHE_DIR on local disk.",
            )
            return None

    def save_overload(self, sig, data):
        try:
            self._cache.save_overload(sig, data)
        except Exception as exc:  # a full disk, a vanished directory
            _warn_once(
                "save",
                f"fastbp: numba could not save a compiled kernel to its cache "
                f"({self._cache.cache_path}: {type(exc).__name__}: {exc}); it works, but "
                "will be compiled again in the next process. Check the disk, or set "
                "NUMBA_CACHE_DIR to a writable directory.",
            )


def _make_caches_self_healing(namespace):
    from numba.core.caching import Cache
    from numba.core.registry import CPUDispatcher

    for value in list(namespace.values()):
        if isinstance(value, CPUDispatcher) and isinstance(value._cache, Cache):
            value._cache = _SelfHealingCache(value._cache)


_make_caches_self_healing(globals())


# ---------------------------------------------------------------------------------
# Python's cyclic garbage collector runs again and again during a compilation, over
# the many short-lived objects numba and LLVM make: pausing it while a kernel
# compiles saves about a tenth of the time. It is restored however compilation ends.
# ---------------------------------------------------------------------------------
def _pause_gc_while_compiling(dispatcher):
    compile_signature = dispatcher.compile

    def compile(sig):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return compile_signature(sig)
        finally:
            if was_enabled:
                gc.enable()

    dispatcher.compile = compile


_pause_gc_while_compiling(epoch_kernel)
_pause_gc_while_compiling(predict_forward)
_pause_gc_while_compiling(_full_gradient)
