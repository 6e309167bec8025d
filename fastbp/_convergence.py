"""The convergence rule, written once: Python (:mod:`fastbp._early_stopping`,
which decides) and the training kernels (which return at the first epoch where it
could fire) both run :func:`no_improvement_rule`."""

import math

from numba import njit

from fastbp._kernel_cache import _HELPER, prepare_caches


def no_improvement_rule(loss, best_loss, tol, count, margin):
    """The convergence rule, the one definition (Python and the kernels run it): after
    an epoch of loss ``loss`` (for a validation score, its negation), the updated
    count of epochs without an improvement of more than ``tol`` over the best loss,
    and the best loss.

    ``margin`` widens the "no improvement" test by that fraction of the magnitudes:
    0 in Python, which decides; :data:`KERNEL_MARGIN` in the kernels, which compute
    the loss in float64 while Python compares in the loss's own precision (float32
    for a float32 regressor), so that their count stays at or above Python's and a
    kernel returns at or before the epoch where Python stops.
    """
    threshold = best_loss - tol
    if margin > 0 and math.isfinite(best_loss):
        threshold -= margin * (abs(best_loss) + abs(tol))
    if loss > threshold:
        count += 1
    else:
        count = 0
    # Conditional expressions rather than min/max: those compile a function per type.
    return count, (loss if loss < best_loss else best_loss)


#: The kernels' margin (see :func:`no_improvement_rule`): a few float32 roundings.
KERNEL_MARGIN = 1e-6

#: :func:`no_improvement_rule`, compiled for the kernels.
no_improvement = njit(**_HELPER)(no_improvement_rule)


prepare_caches(globals())
