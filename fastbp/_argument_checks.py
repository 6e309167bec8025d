"""The compiled entry points' own checks: every length they index with, against the
layout they are given, before their loops.

Compiled code does not check bounds. Python checks every shape first (the fitted
model in :mod:`fastbp._fitted`, the training data in :mod:`fastbp._network`, the
kernel arguments in :func:`fastbp._kernels.check_training_arguments`); these checks
are the last line of defence, for a state that changed behind Python's back or a bug
in fastbp. An entry point whose arguments fail them computes nothing and returns a
refusal code (:data:`REFUSED`), which its Python caller turns into an exception.
They cost a loop over the layers (and one over the row orders in training).
"""

from numba import njit

from fastbp._kernel_cache import _HELPER
from fastbp._kernel_codes import N_HYPER, N_STOPPING
from fastbp._layer_math import _BLOCK
from fastbp._optimizer_steps import N_STATE_ARRAYS

#: What an entry point returns where the epoch count (or a status) would be, when its
#: arguments do not fit the layout.
REFUSED = -1


@njit(**_HELPER, inline="always")
def network_fits(units, coef_offsets, intercept_offsets, hidden_codes, n_coefs, params):
    """True when the offsets chain as :class:`fastbp._network.NetworkLayout` builds
    them (every coefficient matrix, then every intercept vector) and ``params`` holds
    exactly the layout's parameters."""
    n_layers = units.shape[0]
    if (
        n_layers < 2
        or coef_offsets.shape[0] < n_layers - 1
        or intercept_offsets.shape[0] < n_layers - 1
        or hidden_codes.shape[0] < n_layers
    ):
        return False
    coef_end = 0
    intercept_end = n_coefs
    for layer in range(n_layers - 1):
        fan_in, fan_out = units[layer], units[layer + 1]
        if fan_in < 1 or fan_out < 1:
            return False
        if coef_offsets[layer] != coef_end or intercept_offsets[layer] != intercept_end:
            return False
        coef_end += fan_in * fan_out
        intercept_end += fan_out
    return coef_end == n_coefs and intercept_end == params.shape[0]


@njit(**_HELPER, inline="always")
def layout_lengths_fit(n_layers, n_coef_offsets, n_intercept_offsets, n_codes):
    """True when the layout's arrays have an entry for every layer they describe
    (lengths only: scalars, so that the check costs nothing per prediction)."""
    return (
        n_layers >= 2
        and n_coef_offsets >= n_layers - 1
        and n_intercept_offsets >= n_layers - 1
        and n_codes >= n_layers
    )


@njit(**_HELPER, inline="always")
def prediction_fits(x_rows, x_columns, n_rows, out_rows, out_columns, n_inputs, n_outputs,
                    n_params, layout_params):  # fmt: skip
    """True when the input (``x_rows`` 0: the placeholder of sparse input), the output
    buffer and the parameter vector have the lengths the layout gives: ``n_inputs``
    and ``n_outputs`` its end layers' units, ``layout_params`` the end of its last
    intercept vector.

    Scalars only: a helper that takes arrays costs about 60-90 ns a call in
    reference counting (measured), a prediction's whole budget for its checks. The
    offsets' values come from the fitted network that Python built and checked; the
    training kernels check them too (:func:`network_fits`).
    """
    return (
        x_columns == n_inputs
        and (x_rows == n_rows or x_rows == 0)
        and out_rows == n_rows
        and out_columns == n_outputs
        and n_params == layout_params
    )


@njit(**_HELPER, inline="always")
def workspace_fits(X, Y, sample_weight, use_weights, is_sparse, units, activations, deltas,
                   layer_offsets, bits, x_batch, y_batch, sw_batch, grads, params,
                   batch_size):  # fmt: skip
    """True when the data and the workspace of ``batch_size`` rows fit the layout
    (``X`` is the empty placeholder of sparse input)."""
    n_layers = units.shape[0]
    last = n_layers - 1
    n_data_rows = Y.shape[0]
    if grads.shape[0] != params.shape[0]:
        return False
    if X.shape[1] != units[0] or X.shape[0] != (0 if is_sparse else n_data_rows):
        return False
    if Y.shape[1] != units[last] or (use_weights and sample_weight.shape[0] != n_data_rows):
        return False
    if batch_size < 1 or x_batch.shape[0] < batch_size or x_batch.shape[1] != units[0]:
        return False
    if y_batch.shape[0] < batch_size or y_batch.shape[1] != units[last]:
        return False
    if (use_weights and sw_batch.shape[0] < batch_size) or bits.shape[0] < 2 * _BLOCK:
        return False
    if layer_offsets.shape[0] < n_layers:
        return False
    for layer in range(1, n_layers):
        end = layer_offsets[layer] + batch_size * units[layer]
        if layer_offsets[layer] < 0 or end > activations.shape[0] or end > deltas.shape[0]:
            return False
    return True


@njit(**_HELPER, inline="always")
def orders_fit(orders, n_data_rows):
    """True when every entry of the row orders (one row per epoch) indexes a row."""
    for epoch in range(orders.shape[0]):
        for i in range(orders.shape[1]):
            row = orders[epoch, i]
            if row < 0 or row >= n_data_rows:
                return False
    return True


@njit(**_HELPER, inline="always")
def epochs_fit(params, state, solver_code, n_epochs, hyper, loss_sums, steps, stopping):
    """True when the optimizer state and the per-epoch outputs fit: ``state`` holds
    (at least) the rows the optimizer declares
    (:data:`fastbp._optimizer_steps.N_STATE_ARRAYS`), of one entry per parameter."""
    if solver_code < 0 or solver_code >= len(N_STATE_ARRAYS):
        return False
    if state.shape[0] < N_STATE_ARRAYS[solver_code] or state.shape[1] != params.shape[0]:
        return False
    if loss_sums.shape[0] < n_epochs or steps.shape[0] < n_epochs:
        return False
    return hyper.shape[0] >= N_HYPER and stopping.shape[0] >= N_STOPPING


@njit(**_HELPER, inline="always")
def rare_paths_fit(rare, n_rows, units, batch_rows, training, with_dropout):
    """True when the full kernel's extra buffers fit: a well-formed CSR matrix of
    ``n_rows`` rows and ``units[0]`` columns (sparse input), the scratch of one layer
    of ``batch_rows`` rows and, in training, the pre-activation (and dropout)
    buffers of that many rows (prediction does not use them)."""
    hidden_size = 0
    widest = 1
    for layer in range(1, units.shape[0]):
        hidden_size += batch_rows * units[layer]
        widest = units[layer] if units[layer] > widest else widest
    if training and rare.pre_activations.shape[0] < hidden_size:
        return False
    if rare.temp.shape[0] < _BLOCK or rare.temp.shape[0] < batch_rows * widest:
        return False
    if with_dropout and (rare.masks.shape[0] < hidden_size or rare.dropped.shape[0] < hidden_size):
        return False
    if not rare.is_sparse:
        return True
    indptr, indices = rare.csr_indptr, rare.csr_indices
    if (
        indptr.shape[0] != n_rows + 1
        or indptr[0] != 0
        or rare.csr_data.shape[0] != indices.shape[0]
    ):
        return False
    for row in range(n_rows):
        if indptr[row + 1] < indptr[row]:
            return False
    if indptr[n_rows] > indices.shape[0]:
        return False
    for k in range(indptr[n_rows]):
        if indices[k] < 0 or indices[k] >= units[0]:
            return False
    return True
