"""Compiled steps of L-BFGS's exact objective (:mod:`fastbp._lbfgs`): the ones whose
bits cannot depend on how they are computed.

A step belongs here only if every result is decided by its inputs alone, with no
rounding whose order or implementation could differ from numpy's: a comparison and
an assignment do; a sum (numpy sums pairwise), a transcendental function (numpy's
SIMD ``exp`` and ``tanh`` are not libm's) or a matrix product (BLAS) do not, and stay
numpy calls in :class:`fastbp._lbfgs.SklearnArithmeticObjective`.

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


prepare_caches(globals())
pause_gc_while_compiling(relu_derivative)
