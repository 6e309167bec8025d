"""Compiled steps of L-BFGS's exact objective (:mod:`fastbp._lbfgs`): the ones whose
bits cannot depend on how they are computed.

A step belongs here only if every result is decided by its inputs and an order of
operations that numpy fixes, so that a loop can repeat it: a comparison, an
assignment and one IEEE operation per element do; so do numpy's sums, whose order is
its own algorithm (down the rows of a matrix, one row after the other; along a
contiguous row of up to 128 values, numpy's pairwise summation, repeated by
:func:`_short_sum`); so does libm's ``log``, which scipy's ``xlogy`` calls as numba
does. numpy's SIMD
transcendental functions (its ``tanh`` is not libm's: 20% of float64 values differ in
the last bit; its ``exp``) and matrix products (BLAS blocks and fuses multiply-adds:
25-97% of elements differ from a loop's) cannot be repeated, and stay numpy calls in
:class:`fastbp._lbfgs.SklearnArithmeticObjective`. Each step here is faster than
numpy's because numpy pays per row (a broadcast, a matrix product with an inner
dimension of 1, a short row sum), builds a mask or a temporary, or makes one pass per
operation where a loop makes one for all; the tests compare every one with numpy's
bits.

Imported only by an L-BFGS fit that needs it, so that neither ``import fastbp`` nor
the other solvers load it.
"""

import math

import numba
import numpy as np

from fastbp._kernel_cache import _HELPER, _JIT, pause_gc_while_compiling, prepare_caches


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


# ------------------------------------------------------------------------------------
# numpy's sums. np.add.reduce starts from the identity, +0.0 (so a sum of -0.0s is
# +0.0), and adds in the order its iterator visits: down the rows of a C-ordered
# matrix (axis=0) one row after the other, every column at once; along a contiguous
# run of values (a row, or a matrix of one column), by its pairwise summation, which
# halves runs of more than 128 values recursively. The steps here take the first
# kind, and rows of up to 128 values: a matrix of one column (the output of a binary
# classifier) is summed by numpy itself (the steps refuse it), since the halving
# loop, compiled into every step that might meet it, tripled their compile time.
# ------------------------------------------------------------------------------------
@numba.njit(**_HELPER)
def _short_sum(values, count, zero):
    """np.add.reduce of the first ``count`` <= 128 values of ``values`` (1-D): numpy's
    ``pairwise_sum`` plus the starting ``zero`` (+0.0 in the values' dtype). Below 8
    values one after the other; else in 8 interleaved partial sums, combined as a
    tree, then the rest one by one."""
    if count < 8:
        total = zero
        for i in range(count):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
    r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
    end_of_blocks = count - count % 8
    for i in range(8, end_of_blocks, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end_of_blocks, count):
        total += values[i]
    return zero + total


@numba.njit(**_HELPER)
def _copy_into(source, target):
    """``target[:] = source``. Running totals go to an array the step allocates, not
    to the caller's: LLVM cannot prove that the caller's does not overlap the values
    being summed, and then adds one value at a time (2-4x the time)."""
    for i in range(source.shape[0]):
        target[i] = source[i]


@numba.njit(**_JIT)
def column_sums(values, sums):
    """``np.add.reduce(values, axis=0, out=sums)`` (``np.sum(values, axis=0)``, the
    intercept gradient's sum) for a C-ordered matrix of more than one column, without
    numpy's per-call and per-row costs. Returns False (and writes nothing) when the
    lengths differ or there is one column."""
    n_rows, n_columns = values.shape
    if sums.shape[0] != n_columns or n_columns < 2:
        return False
    totals = np.zeros(n_columns, sums.dtype)  # +0.0, numpy's start; see _copy_into
    for row in range(n_rows):
        for column in range(n_columns):
            totals[column] += values[row, column]
    _copy_into(totals, sums)
    return True


@numba.njit(**_JIT)
def add_intercept_relu(values, intercept):
    """``values += intercept`` then scikit-learn's ``inplace_relu``,
    ``np.maximum(values, 0, out=values)``, in one pass. numpy's maximum returns its
    second operand, +0.0, for a tie (so -0.0 becomes +0.0) and a NaN operand as it
    is. Returns False (and writes nothing) when the lengths differ."""
    n_rows, n_columns = values.shape
    if intercept.shape[0] != n_columns:
        return False
    zero = np.zeros(1, values.dtype)[0]
    for row in range(n_rows):
        for column in range(n_columns):
            value = values[row, column] + intercept[column]
            values[row, column] = value if value > 0 or value != value else zero
    return True


@numba.njit(**_JIT)
def relu_derivative_summed(outputs, deltas, sums):
    """scikit-learn's ``inplace_relu_derivative``, ``deltas[outputs == 0] = 0``
    (without numpy's boolean mask, which takes ten times as long), then
    :func:`column_sums` of the deltas into ``sums`` (the layer's intercept gradient,
    before its division), in one call. Returns False (and writes nothing) when the
    shapes differ or there is one column."""
    n_rows, n_columns = deltas.shape
    if (
        outputs.shape[0] != n_rows
        or outputs.shape[1] != n_columns
        or sums.shape[0] != n_columns
        or n_columns < 2
    ):
        return False
    zero = np.zeros(1, deltas.dtype)[0]
    # One pass, each delta added as it is written (the sums are memory-bound: a
    # second pass would read the deltas again).
    totals = np.zeros(n_columns, sums.dtype)
    for row in range(n_rows):
        for column in range(n_columns):
            delta = zero if outputs[row, column] == 0 else deltas[row, column]
            deltas[row, column] = delta
            totals[column] += delta
    _copy_into(totals, sums)
    return True


@numba.njit(**_JIT)
def outer_relu_derivative_summed(column, row, outputs, deltas, sums):
    """:func:`outer_product` into ``deltas``, then :func:`relu_derivative_summed`, in
    one pass. Returns False (and writes nothing) when the shapes do not fit or there
    is one column."""
    n_rows, n_columns = deltas.shape
    if (
        column.shape[0] != n_rows
        or row.shape[0] != n_columns
        or outputs.shape[0] != n_rows
        or outputs.shape[1] != n_columns
        or sums.shape[0] != n_columns
        or n_columns < 2
    ):
        return False
    zero = np.zeros(1, deltas.dtype)[0]
    totals = np.zeros(n_columns, sums.dtype)
    for i in range(n_rows):
        value = column[i]
        for j in range(n_columns):
            delta = zero if outputs[i, j] == 0 else zero + value * row[j]
            deltas[i, j] = delta
            totals[j] += delta
    _copy_into(totals, sums)
    return True


@numba.njit(**_JIT)
def subtract_summed(predictions, targets, deltas, sums):
    """The output delta ``np.subtract(predictions, targets, out=deltas)``, then
    :func:`column_sums` of it into ``sums``. ``targets`` must already have the deltas'
    dtype (the cast numpy's subtraction makes: exact). Returns False (and writes
    nothing) when the shapes differ or there is one column."""
    n_rows, n_columns = deltas.shape
    if (
        predictions.shape[0] != n_rows
        or predictions.shape[1] != n_columns
        or targets.shape[0] != n_rows
        or targets.shape[1] != n_columns
        or sums.shape[0] != n_columns
        or n_columns < 2
    ):
        return False
    totals = np.zeros(n_columns, sums.dtype)
    for row in range(n_rows):
        for column in range(n_columns):
            delta = predictions[row, column] - targets[row, column]
            deltas[row, column] = delta
            totals[column] += delta
    _copy_into(totals, sums)
    return True


@numba.njit(**_JIT)
def normalize_rows(values, sums):
    """The end of scikit-learn's softmax: ``np.add.reduce(values, axis=1, out=sums)``
    (numpy's pairwise sum of each row) and ``values /= sums[:, None]``. Returns False
    (and writes nothing) when the lengths differ or rows are longer than 128."""
    n_rows, n_columns = values.shape
    if sums.shape[0] != n_rows or n_columns > 128:
        return False
    zero = np.zeros(1, sums.dtype)[0]
    for row in range(n_rows):
        total = _short_sum(values[row], n_columns, zero)
        sums[row] = total
        for column in range(n_columns):
            values[row, column] /= total
    return True


# ------------------------------------------------------------------------------------
# The log losses' terms (float64 only: the objective's loss buffers are float64).
# scipy's xlogy(x, y) is 0 where x == 0 and y is not NaN, else x * log(y), with
# libm's log, which numba calls too. np.clip(p, low, high) is np.minimum(np.maximum(
# p, low), high): a NaN stays NaN.
# ------------------------------------------------------------------------------------
@numba.njit(**_HELPER)
def _xlogy(x, y):
    if x == 0 and y == y:
        return 0.0
    return x * math.log(y)


@numba.njit(**_HELPER)
def _clip(value, low, high):
    value = value if value > low or value != value else low
    return value if value < high or value != value else high


@numba.njit(**_JIT)
def log_loss_terms(targets, probabilities, low, high, terms):
    """``xlogy(targets, np.clip(probabilities, low, high))`` into ``terms``. Returns
    False (and writes nothing) when the shapes differ.

    The logs are taken in a second pass, only where xlogy needs one (a target not 0,
    or a NaN): in one pass LLVM computes the log of every value and selects (a log
    has no side effects, so it may), 10 ns a value, where a one-hot target needs one
    value in n_classes."""
    n_rows, n_columns = terms.shape
    if probabilities.shape != terms.shape or targets.shape != terms.shape:
        return False
    pending_rows = np.empty(n_rows * n_columns, np.int64)
    pending_columns = np.empty(n_rows * n_columns, np.int64)
    n_pending = 0
    for row in range(n_rows):
        for column in range(n_columns):
            clipped = _clip(probabilities[row, column], low, high)
            if targets[row, column] == 0 and clipped == clipped:
                terms[row, column] = 0.0
            else:
                terms[row, column] = clipped
                pending_rows[n_pending] = row
                pending_columns[n_pending] = column
                n_pending += 1
    for i in range(n_pending):
        row, column = pending_rows[i], pending_columns[i]
        terms[row, column] = targets[row, column] * math.log(terms[row, column])
    return True


@numba.njit(**_JIT)
def binary_log_loss_terms(targets, complements, probabilities, low, high, terms, scratch):
    """``xlogy(y, p) + xlogy(1 - y, 1 - p)`` into ``terms``, ``p`` the clipped
    probabilities and ``complements`` ``1 - y`` (``scratch``, where numpy's step
    keeps ``1 - p``, goes unused). Returns False (and writes nothing) when the shapes
    differ."""
    n_rows, n_columns = terms.shape
    if (
        probabilities.shape != terms.shape
        or targets.shape != terms.shape
        or complements.shape != terms.shape
    ):
        return False
    for row in range(n_rows):
        for column in range(n_columns):
            clipped = _clip(probabilities[row, column], low, high)
            terms[row, column] = _xlogy(targets[row, column], clipped) + _xlogy(
                complements[row, column], 1 - clipped
            )
    return True


@numba.njit(**_JIT)
def column_means(terms, means):
    """``np.add.reduce(terms, axis=0) / n_rows`` into ``means`` (np.average over the
    samples, without weights). Returns False (and writes nothing) when the lengths
    differ or there is one column."""
    n_rows, n_columns = terms.shape
    if not column_sums(terms, means):
        return False
    for column in range(n_columns):
        means[column] /= n_rows
    return True


prepare_caches(globals())
pause_gc_while_compiling(add_intercept)
pause_gc_while_compiling(outer_product)
pause_gc_while_compiling(subtract_row_max)
pause_gc_while_compiling(column_sums)
pause_gc_while_compiling(add_intercept_relu)
pause_gc_while_compiling(relu_derivative_summed)
pause_gc_while_compiling(subtract_summed)
pause_gc_while_compiling(outer_relu_derivative_summed)
pause_gc_while_compiling(normalize_rows)
pause_gc_while_compiling(log_loss_terms)
pause_gc_while_compiling(binary_log_loss_terms)
pause_gc_while_compiling(column_means)
