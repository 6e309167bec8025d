"""Compiled steps of L-BFGS's exact objective (:mod:`fastbp._lbfgs`): the ones whose
bits cannot depend on how they are computed.

A step belongs here only if every result is decided by its inputs alone, with no
rounding whose order or implementation could differ from numpy's: a comparison, an
assignment and one IEEE operation per element do; a sum (numpy sums pairwise), a
transcendental function (numpy's SIMD ``tanh`` is not libm's: 20% of float64 values
differ in the last bit here) or a matrix product (BLAS blocks and fuses multiply-adds:
25-97% of elements differ from a loop's) do not, and stay numpy calls in
:class:`fastbp._lbfgs.SklearnArithmeticObjective`. Each step here is faster than
numpy's because numpy pays per row (a broadcast, a matrix product with an inner
dimension of 1) or builds a mask; the tests compare every one with numpy's bits.

Imported only by an L-BFGS fit that needs it, so that neither ``import fastbp`` nor
the other solvers load it.
"""

import numba

from fastbp._kernel_cache import _JIT, pause_gc_while_compiling, prepare_caches


@numba.njit(**_JIT)
def relu_derivative(outputs, deltas):
    """scikit-learn's ``inplace_relu_derivative``, ``deltas[outputs == 0] = 0``, in
    one pass without the boolean mask (numpy's masked assignment takes ten times as
    long). Both arrays are 2-D and of one shape (checked: returns False and writes
    nothing otherwise)."""
    n_rows, n_columns = deltas.shape
    if outputs.shape[0] != n_rows or outputs.shape[1] != n_columns:
        return False
    for row in range(n_rows):
        for column in range(n_columns):
            if outputs[row, column] == 0:
                deltas[row, column] = 0
    return True


@numba.njit(**_JIT)
def add_intercept(values, intercept):
    """``values += intercept`` (broadcast over the rows): one IEEE addition per
    element, as numpy's; numpy's broadcast pays per row. Returns False (and writes
    nothing) when the lengths differ."""
    n_rows, n_columns = values.shape
    if intercept.shape[0] != n_columns:
        return False
    for row in range(n_rows):
        for column in range(n_columns):
            values[row, column] += intercept[column]
    return True


@numba.njit(**_JIT)
def outer_product(column, row, out):
    """``column[:, None] @ row[None, :]`` into ``out``, as numpy computes a matrix
    product whose inner dimension is 1: not by BLAS but by its plain loop, which
    starts each element at zero and adds the one product (so a product of -0.0 gives
    +0.0). Returns False (and writes nothing) when the shapes do not fit."""
    n_rows, n_columns = out.shape
    if column.shape[0] != n_rows or row.shape[0] != n_columns:
        return False
    for i in range(n_rows):
        value = column[i]
        for j in range(n_columns):
            out[i, j] = 0 + value * row[j]
    return True


@numba.njit(**_JIT)
def subtract_row_max(values, out):
    """``values - values.max(axis=1)[:, None]`` into ``out`` (the first step of
    scikit-learn's softmax). A maximum is exact whatever the order it is taken in,
    and a NaN makes the row's NaN, as numpy's; where numpy could pick +0.0 or -0.0
    of a tie, the difference only changes the sign of a zero that ``exp`` then maps
    to 1 either way. Returns False (and writes nothing) when the shapes differ."""
    n_rows, n_columns = values.shape
    if out.shape[0] != n_rows or out.shape[1] != n_columns or n_columns == 0:
        return False
    for row in range(n_rows):
        largest = values[row, 0]
        for column in range(1, n_columns):
            value = values[row, column]
            if value > largest or value != value:
                largest = value
                if value != value:
                    break
        for column in range(n_columns):
            out[row, column] = values[row, column] - largest
    return True


@numba.njit(**_JIT)
def divide_rows(values, divisors):
    """``values /= divisors[:, None]``: one IEEE division per element, as numpy's.
    Returns False (and writes nothing) when the lengths differ."""
    n_rows, n_columns = values.shape
    if divisors.shape[0] != n_rows:
        return False
    for row in range(n_rows):
        for column in range(n_columns):
            values[row, column] /= divisors[row]
    return True


prepare_caches(globals())
pause_gc_while_compiling(relu_derivative)
pause_gc_while_compiling(add_intercept)
pause_gc_while_compiling(outer_product)
pause_gc_while_compiling(subtract_row_max)
pause_gc_while_compiling(divide_rows)
