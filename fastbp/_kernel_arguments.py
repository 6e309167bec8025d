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

import ast
import inspect
import linecache
import textwrap
import types
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


def _function_tree(body):
    """The syntax tree of the plain function ``body``, on its lines in its file.

    A module-level function ends before the next line that starts in the first
    column with code: reading that far is a scan of the file's lines, where
    ``inspect.getsourcelines`` tokenizes the function and ``ast.increment_lineno``
    walks its tree (together four fifths of an entry point's 6 ms, paid at every
    import). Any other function, or one this reading does not parse to itself, is
    read by ``inspect``.
    """
    filename, first = body.__code__.co_filename, body.__code__.co_firstlineno
    lines = linecache.getlines(filename, body.__globals__)
    end = first  # the def line (no decorators: a plain function); a ")" in the first
    # column closes a signature that ruff wrapped (the generated _common_epochs)
    while end < len(lines) and (
        not lines[end].strip() or lines[end][0] in " \t#" or lines[end].startswith(")")
    ):
        end += 1
    try:
        # Blank lines before it put every node on its line in the file.
        tree = ast.parse("\n" * (first - 1) + "".join(lines[first - 1 : end]))
    except SyntaxError:
        tree = None
    if (
        tree is None
        or len(tree.body) != 1
        or not isinstance(tree.body[0], ast.FunctionDef)
        or tree.body[0].name != body.__name__
    ):
        source, first = inspect.getsourcelines(body)
        tree = ast.parse(textwrap.dedent("".join(source)))
        ast.increment_lineno(tree, first - 1)
    return tree.body[0]


def entry_point(body, *groups):
    """The entry point of ``body`` (a plain function, to compile with ``njit``): its
    arguments are, for each of ``groups`` in order (one per argument of ``body``), the
    fields of a named tuple class or the argument's own name (a str); its first lines
    rebuild the tuples under the names of ``body``'s arguments, and the rest is
    ``body``'s own code. Its name is ``body``'s less the leading underscore; it lives
    in ``body``'s module and file, on ``body``'s lines (so numba's messages, the
    kernel cache and coverage point there), with ``body``'s docstring.

    ``body``'s code itself, not a call of it: numba would inline a compiled ``body``
    into a wrapper by copying its intermediate code, at a cost that grows with the
    square of the body's size (0.7-2 s of a cold first fit, measured).

    The result's ``arguments`` lists its argument names: callers pass ``*tuple`` in
    the same order, tests find a position by name (``arguments.index(name)``).
    """
    function = _function_tree(body)
    names = [argument.arg for argument in function.args.args]
    if len(names) != len(groups):
        raise TypeError(f"entry_point: {body.__name__} takes {names}, given {len(groups)} groups")
    parameters, rebuild = [], []
    for group, name in zip(groups, names):
        if isinstance(group, str):
            if group != name:
                raise TypeError(f"entry_point: {body.__name__} takes {name}, not {group}")
            parameters.append(group)
            continue
        if body.__globals__.get(group.__name__) is not group:
            raise TypeError(f"entry_point: {body.__module__} must name {group.__name__}")
        parameters.extend(group._fields)
        rebuild.append(f"    {name} = {group.__name__}({', '.join(group._fields)})\n")
    public = body.__name__.lstrip("_")
    header = ast.parse(f"def {public}({', '.join(parameters)}):\n{''.join(rebuild)}    pass\n")
    header = header.body[0]
    for node in ast.walk(header):  # the new lines sit on the def line
        if "lineno" in node._attributes:
            node.lineno = node.end_lineno = function.lineno
            node.col_offset = node.end_col_offset = 0
    has_docstring = isinstance(function.body[0], ast.Expr) and isinstance(
        function.body[0].value, ast.Constant
    )
    docstring = function.body[:1] if has_docstring else []
    header.body = docstring + header.body[:-1] + function.body[len(docstring) :]
    module = compile(ast.Module([header], []), body.__code__.co_filename, "exec")
    code = next(const for const in module.co_consts if isinstance(const, types.CodeType))
    result = types.FunctionType(code, body.__globals__, public)
    result.__module__ = body.__module__
    result.__doc__ = body.__doc__
    result.arguments = tuple(parameters)
    return result
