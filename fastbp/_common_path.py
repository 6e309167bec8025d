"""The common path: the one routing decision.

:func:`takes_common_path` decides, for every kernel call (training, prediction, the
full-batch gradient), whether it runs without the rare paths (``rare=None``): dense
input, the common hidden activations and, in training, no dropout. That covers
scikit-learn's defaults and most of its users' options; every loss, solver and
gradient clipping take it. Such a training call runs
:data:`fastbp._common_epochs.common_epochs`, the full kernel's own code with the
rare paths' branches removed (written out by ``tools/generate_common_path.py``); every
other call passes its :class:`fastbp._kernel_arguments.RarePaths` and runs the full
kernel (:data:`fastbp._kernels.epoch_kernel`), compiled the first time a fit needs it.
"""

from fastbp._kernel_codes import IDENTITY, LEAKY_RELU, LOGISTIC, RELU

#: The hidden activations the common path takes (the others need ``RarePaths``:
#: their exp scratch, or their pre-activations for the derivative).
COMMON_ACTIVATIONS = frozenset({IDENTITY, RELU, LEAKY_RELU, LOGISTIC})


def takes_common_path(net, is_sparse, training):
    """The routing decision, made here only: True when a kernel call runs the common
    path, without the rare paths (``rare=None``); False when it needs them.

    Parameters
    ----------
    net : fastbp._kernel_arguments.Network
        The network (its hidden activation codes and dropout rates are read).
    is_sparse : bool
        Whether the input is a sparse matrix.
    training : bool
        Whether the call trains (dropout applies only then).
    """
    if is_sparse or (training and bool((net.dropout_rates > 0).any())):
        return False
    return all(int(code) in COMMON_ACTIVATIONS for code in net.hidden_codes[1:-1])
