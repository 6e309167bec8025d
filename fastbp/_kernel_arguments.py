"""What crosses into a compiled kernel, by name; and the entry points built from it.

numba types these named tuples; each is built once per fit (or per prediction) by
one helper in :mod:`fastbp._network`. A kernel's body takes the tuples; its compiled
entry point takes their fields instead, as arrays and scalars: numba's dispatcher
types arrays and scalars in C, but a tuple element by element in Python, which cost
a one-row prediction tens of microseconds. :func:`entry_point` writes that entry
point from the tuples' fields (it rebuilds the tuples inside, where they cost
nothing), so no argument list is kept by hand: add a field to a tuple and every
entry point that takes the tuple takes it, in the same place as every caller passes
it (``*tuple``).
"""

from typing import NamedTuple

import numpy as np


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
    ``activations``, for swish and gelu, whose derivatives cannot be written from
    their output). A kernel called with ``None`` in its place compiles without any of
    that code; whether a call passes it is decided in one place,
    :func:`fastbp._common_path.takes_common_path`."""

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


def entry_point(body, *groups):
    """The entry point of ``body``: a function (to compile with ``njit``) whose
    arguments are, for each of ``groups`` in order, the fields of a named tuple class
    or a plain argument's name (a str); it rebuilds the tuples and returns
    ``body(...)`` of them. It is written in ``body``'s module (so the kernel cache
    stamps and finds it there), under ``body``'s name less its leading underscore,
    with ``body``'s docstring.

    The result's ``arguments`` lists its argument names: callers pass ``*tuple`` in
    the same order, tests find a position by name (``arguments.index(name)``).
    """
    parameters, call, namespace = [], [], {body.__name__: body}
    for group in groups:
        if isinstance(group, str):
            parameters.append(group)
            call.append(group)
            continue
        parameters.extend(group._fields)
        call.append(f"{group.__name__}({', '.join(group._fields)})")
        namespace[group.__name__] = group
    name = body.__name__.lstrip("_")
    source = (
        f"def {name}({', '.join(parameters)}):\n    return {body.__name__}({', '.join(call)})\n"
    )
    module = body.__module__
    filename = body.__code__.co_filename
    exec(compile(source, filename, "exec"), namespace)
    function = namespace[name]
    function.__module__ = module
    function.__doc__ = body.__doc__
    function.arguments = tuple(parameters)
    return function
