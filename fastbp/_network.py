"""Network layout: layer sizes to one flat parameter buffer, and training workspaces.

Everything the compiled kernels touch is a flat, C-contiguous array. The layout is
the one scikit-learn's ``_pack`` uses for L-BFGS: every coefficient matrix (row-major,
``fan_in x fan_out``) first, then every intercept vector. ``coefs_`` and ``intercepts_``
are views into that buffer, so the optimizers can work element-wise on it.
"""

import numpy as np
import scipy.sparse as sp

from fastbp import _kernels
from fastbp._common_path import takes_common_path
from fastbp._layer_math import scratch_sizes


def network(layout, hidden_codes, dropout_rates):
    """The :class:`fastbp._kernels.Network` of a layout; codes and rates are
    indexed by layer (entries for the input and output layers are unused)."""
    return _kernels.Network(
        layout.layer_units,
        layout.coef_offsets,
        layout.intercept_offsets,
        np.asarray(hidden_codes, dtype=np.intp),
        np.asarray(dropout_rates, dtype=np.float64),
        layout.n_coefs,
    )


def needs_rare_paths(net, is_sparse, training):
    """True when a kernel call needs its :class:`fastbp._kernels.RarePaths`: the
    negation of the one routing decision,
    :func:`fastbp._common_path.takes_common_path` (arguments there)."""
    return not takes_common_path(net, is_sparse, training)


class NetworkLayout:
    """Offsets of each layer's parameters inside the flat parameter vector.

    Parameters
    ----------
    layer_units : sequence of int
        Units per layer, input first and output last.
    """

    def __init__(self, layer_units):
        self.layer_units = np.asarray(layer_units, dtype=np.intp)
        fan_in = self.layer_units[:-1]
        fan_out = self.layer_units[1:]
        coef_sizes = fan_in * fan_out
        self.coef_offsets = np.concatenate(([0], np.cumsum(coef_sizes)[:-1])).astype(np.intp)
        n_coefs = int(coef_sizes.sum())
        self.intercept_offsets = (n_coefs + np.concatenate(([0], np.cumsum(fan_out)[:-1]))).astype(
            np.intp
        )
        self.n_coefs = n_coefs
        self.n_params = n_coefs + int(fan_out.sum())

    @property
    def n_layers(self):
        return len(self.layer_units)

    def views(self, params):
        """Return ``(coefs, intercepts)``: lists of views into ``params``."""
        coefs, intercepts = [], []
        for i in range(self.n_layers - 1):
            fan_in, fan_out = int(self.layer_units[i]), int(self.layer_units[i + 1])
            start = self.coef_offsets[i]
            coefs.append(params[start : start + fan_in * fan_out].reshape(fan_in, fan_out))
            start = self.intercept_offsets[i]
            intercepts.append(params[start : start + fan_out])
        return coefs, intercepts

    def pack(self, coefs, intercepts, dtype):
        """Copy per-layer arrays into a new flat buffer of ``dtype``."""
        params = np.empty(self.n_params, dtype=dtype)
        target_coefs, target_intercepts = self.views(params)
        for target, source in zip(target_coefs + target_intercepts, coefs + intercepts):
            source = np.asarray(source)
            if source.shape != target.shape:
                raise ValueError(
                    f"A parameter array has shape {source.shape}; the network layout "
                    f"{self.layer_units.tolist()} needs {target.shape}."
                )
            target[...] = source
        return params

    def initialize(self, random_state, activation, dtype):
        """Glorot-uniform initial parameters, drawn exactly as scikit-learn draws them.

        scikit-learn draws, layer by layer, the coefficient matrix and then the
        intercept vector from ``uniform(-bound, bound)`` in float64 and casts them;
        drawing in the same order from the same ``RandomState`` gives the same network.
        ``activation`` is a name, or one name per layer (edges unused): the weights
        into a hidden layer follow its activation, the output weights the last
        hidden layer's.
        """
        if isinstance(activation, str):
            activation = [activation] * self.n_layers
        params = np.empty(self.n_params, dtype=dtype)
        coefs, intercepts = self.views(params)
        for layer, (coef, intercept) in enumerate(zip(coefs, intercepts)):
            name = activation[min(layer + 1, self.n_layers - 2)]
            # Glorot et al. recommend a factor of 2 for the logistic sigmoid, 6 otherwise.
            factor = 2.0 if name == "logistic" else 6.0
            fan_in, fan_out = coef.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef[...] = random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept[...] = random_state.uniform(-bound, bound, fan_out)
        return params


def workspace(layout, batch_rows, dtype):
    """A :class:`fastbp._kernels.Workspace` for batches of up to ``batch_rows`` rows,
    allocated once per fit and reused by every batch (layer 0's slot is unused: the
    input layer is the gathered ``x_batch``)."""
    units = layout.layer_units
    sizes = batch_rows * units
    sizes[0] = 0
    layer_offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    total = int(sizes.sum())
    bits_size, _ = scratch_sizes(batch_rows, units)
    return _kernels.Workspace(
        np.empty(total, dtype=dtype),
        np.empty(total, dtype=dtype),
        layer_offsets,
        np.empty(bits_size, dtype=np.int64),
        np.empty((batch_rows, int(units[0])), dtype=dtype),
        np.empty((batch_rows, int(units[-1])), dtype=dtype),
        np.empty(batch_rows, dtype=dtype),
        np.empty(layout.n_params, dtype=dtype),
    )


def rare_paths(layout, batch_rows, dtype, csr, with_dropout):
    """The :class:`fastbp._kernels.RarePaths` of a call: ``csr`` is the CSR triple of
    sparse input or None; dropout buffers take the layout of the workspace's
    activations (or are empty); ``temp`` holds one hidden layer of a batch;
    ``pre_activations`` takes the layout of the activations (swish keeps its
    pre-activations there in training)."""
    units = layout.layer_units
    _, temp_size = scratch_sizes(batch_rows, units)
    total = int(batch_rows * units[1:].sum())
    is_sparse = csr is not None
    if not is_sparse:
        csr = empty_csr(dtype)
    return _kernels.RarePaths(
        is_sparse,
        csr[0],
        csr[1],
        csr[2],
        np.empty(total if with_dropout else 0, dtype=dtype),
        np.empty(total if with_dropout else 0, dtype=dtype),
        np.empty(temp_size, dtype=dtype),
        np.empty(total, dtype=dtype),
    )


def kernel_data(X, Y, sample_weight, dtype):
    """The :class:`fastbp._kernels.Data` of a training set, and the CSR triple of
    sparse X (None for dense X). Everything is read-only: the kernels never write
    into a user's data."""
    X_kernel, csr, is_sparse = kernel_input(X, dtype)
    use_weights = sample_weight is not None
    data = _kernels.Data(
        X_kernel,
        read_only(np.ascontiguousarray(Y, dtype=dtype)),
        read_only(
            np.ascontiguousarray(sample_weight, dtype=dtype)
            if use_weights
            else np.ones(0, dtype=dtype)
        ),
        use_weights,
    )
    return data, csr


def read_only(array):
    """A read-only view of ``array``.

    The kernels take their inputs as read-only arrays, so every caller shares one
    compiled signature, and a user's array can never be written to.
    """
    view = array.view()
    view.setflags(write=False)  # a third of ``view.flags.writeable = False``'s time
    return view


def kernel_input(X, dtype):
    """Normalise X for the kernels: ``(dense, csr, is_sparse)``.

    Dense X becomes a C-contiguous array of ``dtype`` (copied only if needed) and no
    CSR triple (None); sparse X (CSR or CSC) becomes a CSR triple
    ``(data, indices, indptr)`` with ``intp`` indices and an empty ``(0,
    n_features)`` dense placeholder. Everything is read-only: the kernels never
    write into a user's data.
    """
    if type(X) is not np.ndarray and sp.issparse(X):
        X = X.tocsr()
        csr = (
            read_only(np.ascontiguousarray(X.data, dtype=dtype)),
            read_only(np.ascontiguousarray(X.indices, dtype=np.intp)),
            read_only(np.ascontiguousarray(X.indptr, dtype=np.intp)),
        )
        return read_only(np.empty((0, X.shape[1]), dtype=dtype)), csr, True
    return read_only(np.ascontiguousarray(X, dtype=dtype)), None, False


_EMPTY_CSR = {}


def empty_csr(dtype):
    """The placeholder CSR triple of dense calls, made once per dtype."""
    triple = _EMPTY_CSR.get(dtype)  # the hot path: prediction of single rows
    if triple is not None:
        return triple
    dtype = np.dtype(dtype)
    if dtype not in _EMPTY_CSR:
        _EMPTY_CSR[dtype] = (
            read_only(np.empty(0, dtype=dtype)),
            read_only(np.empty(0, dtype=np.intp)),
            read_only(np.zeros(1, dtype=np.intp)),
        )
    return _EMPTY_CSR[dtype]


# ---------------------------------------------------------------------------------
# Shape checks before a compiled call. Compiled code does not check bounds: every
# shape a kernel indexes with is checked here first (a few integer comparisons, and
# one pass over a sparse matrix's indices, which a user can build out of range).
# ---------------------------------------------------------------------------------
def _check_csr(csr, n_rows, n_features):
    data, indices, indptr = csr
    if indptr.shape != (n_rows + 1,) or data.shape != indices.shape:
        raise ValueError(
            f"The sparse matrix is malformed: {n_rows} rows need {n_rows + 1} row "
            f"pointers (got {indptr.shape[0]}), and as many indices as values (got "
            f"{indices.shape[0]} and {data.shape[0]})."
        )
    if n_rows == 0:
        return
    stored = int(indptr[-1])
    if indptr[0] != 0 or stored > indices.shape[0] or (np.diff(indptr) < 0).any():
        raise ValueError(
            "The sparse matrix is malformed: its row pointers must start at 0, never "
            "decrease, and end within its indices."
        )
    if stored and (indices[:stored].min() < 0 or indices[:stored].max() >= n_features):
        raise ValueError(
            f"The sparse matrix is malformed: a column index lies outside [0, {n_features})."
        )


def check_input_shape(X, csr, is_sparse, n_rows, n_features, owner):
    """Raise scikit-learn's ValueError unless the kernel input has ``n_features``."""
    width = X.shape[1]
    if width != n_features:
        raise ValueError(
            f"X has {width} features, but {owner} is expecting {n_features} features as input."
        )
    if is_sparse:
        _check_csr(csr, n_rows, n_features)
    elif X.shape[0] != n_rows:
        raise ValueError(f"X has {X.shape[0]} rows where {n_rows} were expected.")


def check_training_data(data, csr, layout):
    """The epoch kernels' data against the network they train (internal invariants:
    a failure here is a bug in fastbp, reported instead of corrupting memory)."""
    Y = data.Y
    n_rows = Y.shape[0]
    is_sparse = csr is not None
    check_input_shape(data.X, csr, is_sparse, n_rows, int(layout.layer_units[0]), "the network")
    if Y.ndim != 2 or Y.shape[1] != layout.layer_units[-1]:
        raise ValueError(
            f"The targets have shape {Y.shape}; the network has "
            f"{int(layout.layer_units[-1])} outputs."
        )
    if data.use_weights and data.sample_weight.shape != (n_rows,):
        raise ValueError(
            f"sample_weight has shape {data.sample_weight.shape}; expected ({n_rows},)."
        )
