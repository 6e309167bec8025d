"""The common path: the one routing decision, and the training entry point most fits use.

:func:`takes_common_path` decides, for every kernel call, whether it runs without
the rare paths (``rare=None``: dense input, no dropout, the common hidden
activations) and, in training, through :data:`common_epochs` (also: the squared
error or the (binary) cross-entropy, sgd, adam or adamw, no gradient clipping).
That covers scikit-learn's defaults and most of its users' options. Every other
fit runs the full kernel (:data:`fastbp._kernels.epoch_kernel`), compiled the first
time a fit needs it.

Both run one body, :func:`fastbp._epochs.train_epochs`: this entry point passes
``rare=None``, and numba prunes every branch of the rare paths from its
compilation (a smaller kernel to compile on a new user's first fit). A reader of
the common path reads the code the full kernel runs.
"""

from numba import njit

from fastbp._epochs import checked_train_epochs
from fastbp._kernel_arguments import Data, Network, Settings, Workspace, entry_point
from fastbp._kernel_cache import _JIT, pause_gc_while_compiling, prepare_caches
from fastbp._kernel_codes import (
    ADAM,
    ADAMW,
    BINARY_LOG_LOSS,
    IDENTITY,
    LEAKY_RELU,
    LOG_LOSS,
    LOGISTIC,
    RELU,
    SGD,
    SQUARED_ERROR,
)

#: What the common path takes; anything else runs the full kernel.
COMMON_ACTIVATIONS = frozenset({IDENTITY, RELU, LEAKY_RELU, LOGISTIC})
COMMON_LOSSES = frozenset({SQUARED_ERROR, LOG_LOSS, BINARY_LOG_LOSS})
COMMON_SOLVERS = frozenset({SGD, ADAM, ADAMW})


def takes_common_path(net, is_sparse, training, settings=None):
    """The routing decision, made here only: True when a kernel call runs the common
    path, without the rare paths (``rare=None``); False when it needs them.

    Every call: dense input and the common hidden activations; in training, no
    dropout. A training call of the epoch kernels (``settings`` given) also needs a
    common loss and solver and no gradient clipping: then :data:`common_epochs`
    trains, otherwise the full kernel. (Prediction and the full-batch gradient take
    every loss with ``rare=None``.)
    """
    if is_sparse or (training and bool((net.dropout_rates > 0).any())):
        return False
    if any(int(code) not in COMMON_ACTIVATIONS for code in net.hidden_codes[1:-1]):
        return False
    if settings is None:
        return True
    return (
        int(settings.loss_code) in COMMON_LOSSES
        and int(settings.solver_code) in COMMON_SOLVERS
        and not settings.max_grad_norm > 0
    )


def _common_epochs(data, net, work, params, state, orders, batch_size, settings, adam_step,
                   loss_sums, steps, stopping):  # fmt: skip
    """:func:`fastbp._kernels.run_epochs` for the common path: the same arguments,
    less the rare paths and the dropout seeds (its entry point, :data:`common_epochs`,
    takes the named tuples' fields)."""
    return checked_train_epochs(data, net, work, None, params, state, orders, batch_size,
                                settings, adam_step, None, loss_sums, steps,
                                stopping)  # fmt: skip


#: The common path's compiled entry point: the named tuples' fields.
common_epochs = njit(**_JIT)(
    entry_point(_common_epochs, Data, Network, Workspace, "params", "state", "orders",
                "batch_size", Settings, "adam_step", "loss_sums", "steps", "stopping")
)  # fmt: skip


prepare_caches(globals())
pause_gc_while_compiling(common_epochs)
