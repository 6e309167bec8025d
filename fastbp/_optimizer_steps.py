"""The optimizers' steps, compiled: what one minibatch does to the weights.

An optimizer is one unit in two halves that name each other: its step here (the
element-wise update over the flat parameter vector, with the L2 term and the
normalisation by the batch's weight sum fused in), and its class in
:mod:`fastbp._optimizers` (its state between epochs, its learning-rate schedule, the
estimator parameters it reads). Each optimizer declares here the state arrays its
step reads and writes (:data:`STATE_ARRAYS`, one entry per parameter each, rows of
one ``(n_state, n_params)`` matrix in that order); its class's ``_STATE_ARRAYS``
is that declaration. Its branch in :func:`optimizer_step` says whether it counts
steps (Adam's bias correction does).

:func:`optimizer_step` is the one dispatch, called by every training kernel. The
steps are inlined into it, their one caller (numba compiles each other helper as a
library of its own, which LLVM optimises alone and again in every caller: two
libraries less, 0.3-0.5 s of a cold first fit); the updates, called twice each,
stay helpers.
"""

import math

import numpy as np
from numba import njit

from fastbp._kernel_cache import _HELPER, prepare_caches
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
    SGD,
)

#: The state arrays of each optimizer, by solver code: the rows of the ``state``
#: matrix its step reads, in this order.
STATE_ARRAYS = {
    SGD: ("velocity",),
    ADAM: ("first_moment", "second_moment"),
    ADAMW: ("first_moment", "second_moment"),
}
# The same, as a tuple indexed by solver code, for the kernels' checks.
N_STATE_ARRAYS = tuple(len(STATE_ARRAYS[code]) for code in range(len(STATE_ARRAYS)))


# ---------------------------------------------------------------------------------
# SGD with (Nesterov) momentum.
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def sgd_update(params, grads, velocity, start, stop, alpha, weight_sum, learning_rate,
               momentum, nesterov):  # fmt: skip
    """params[start:stop] one SGD step along (grads + alpha * params) / weight_sum."""
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


@njit(**_HELPER, inline="always")
def sgd_step(params, grads, state, n_coefs, hyper, nesterov, weight_sum):
    """SGD's step: the L2 term on the coefficients only, so coefficients and
    intercepts are two branch-free (vectorising) calls."""
    learning_rate, momentum = hyper[H_LEARNING_RATE], hyper[H_MOMENTUM]
    velocity = state[0]
    sgd_update(params, grads, velocity, np.intp(0), n_coefs, hyper[H_ALPHA], weight_sum,
               learning_rate, momentum, nesterov)  # fmt: skip
    sgd_update(params, grads, velocity, n_coefs, params.shape[0], params.dtype.type(0),
               weight_sum, learning_rate, momentum, nesterov)  # fmt: skip


# ---------------------------------------------------------------------------------
# Adam, and AdamW (Adam with decoupled weight decay).
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def adam_update(params, grads, first_moment, second_moment, start, stop, alpha, weight_sum,
                learning_rate, beta_1, beta_2, epsilon, keep):  # fmt: skip
    """Adam's step on params[start:stop]; ``keep`` scales the weights first (AdamW's
    decoupled decay, ``1 - learning_rate * weight_decay``; exactly 1 for Adam, which
    changes no bit)."""
    one = params.dtype.type(1)
    inverse_weight_sum = one / weight_sum  # see sgd_update
    # Slices indexed from 0, so that the loop vectorises (see sgd_update).
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


@njit(**_HELPER, inline="always")
def adam_step(params, grads, state, n_coefs, hyper, step, decoupled_decay, weight_sum):
    """Adam's step number ``step`` (counted from 1); with ``decoupled_decay``,
    AdamW's: the coefficients (not the intercepts, like the L2 term) first decay by
    the scheduled, uncorrected step size times weight_decay, as PyTorch does."""
    dtype = params.dtype.type
    beta_1, beta_2 = hyper[H_BETA_1], hyper[H_BETA_2]
    # Bias-corrected step size, computed in float64 as scikit-learn does.
    corrected = (
        float(hyper[H_LEARNING_RATE])
        * math.sqrt(1 - float(beta_2) ** step)
        / (1 - float(beta_1) ** step)
    )
    learning_rate = dtype(corrected)
    epsilon = hyper[H_EPSILON]
    keep = dtype(1)
    if decoupled_decay:
        keep = dtype(1 - float(hyper[H_LEARNING_RATE]) * float(hyper[H_WEIGHT_DECAY]))
    first_moment, second_moment = state[0], state[1]
    adam_update(params, grads, first_moment, second_moment, np.intp(0), n_coefs,
                hyper[H_ALPHA], weight_sum, learning_rate, beta_1, beta_2, epsilon,
                keep)  # fmt: skip
    adam_update(params, grads, first_moment, second_moment, n_coefs, params.shape[0],
                dtype(0), weight_sum, learning_rate, beta_1, beta_2, epsilon,
                dtype(1))  # fmt: skip


# ---------------------------------------------------------------------------------
# The dispatch: one branch per solver code, an unknown code raises.
# ---------------------------------------------------------------------------------
@njit(**_HELPER)
def optimizer_step(params, grads, state, n_coefs, solver_code, nesterov, hyper, weight_sum,
                   step):  # fmt: skip
    """One step of the optimizer ``solver_code`` from the raw gradient ``grads``
    (before the L2 term and the division by ``weight_sum``, a float64 that the step
    casts to the parameters' dtype); ``state`` is its ``(n_state, n_params)``
    matrix. Returns the optimizer's step count after it (``step`` before)."""
    divisor = params.dtype.type(weight_sum)
    if solver_code == SGD:
        sgd_step(params, grads, state, n_coefs, hyper, nesterov, divisor)
        return step
    # Adam and AdamW share one call of adam_step, the decay a bool at run time: two
    # calls, with a literal False and True, compiled it twice (0.5 s of a cold fit,
    # measured), and inlined would be two copies of it.
    if solver_code == ADAM:
        decoupled_decay = False
    elif solver_code == ADAMW:
        decoupled_decay = True
    else:  # (a new optimizer's branch goes above, with its own return)
        raise ValueError("fastbp: unknown solver code")
    adam_step(params, grads, state, n_coefs, hyper, step + 1, decoupled_decay, divisor)
    return step + 1


prepare_caches(globals())
