"""A compiled kernel called without numba's dispatcher, its arguments typed once.

numba's dispatcher types every argument of every call: over the dozen arguments of
the prediction kernel (X, the fitted network's arrays, the output) that is about a
microsecond, and X must first be made a read-only view for the call to find the
read-only variant (another half microsecond): together a fifth of a one-row
prediction. A fitted network's own arguments never change (the snapshot is
immutable, :mod:`fastbp._fitted`), so prediction types them once per model instead:
:func:`compiled_variant` finds the compiled variant that numba would have chosen for
one call, checking each value against its argument type, and the estimator keeps it
with the model. Each later call then checks only what changes from call to call, X
(:meth:`fastbp._base._BaseBackprop._forward_pass_fast`), and makes the output array
itself.

The compiled variant's wrapper converts arrays to its argument types without checking
them (only the item size): a value of another dimension or layout would be read out of
bounds. That is why :func:`compiled_variant` accepts exact matches only, and the
caller checks at every call each property of X that the variant's type depends on
(the variant is found with a read-only X, so it takes X writable or not).
"""

import numpy as np
from numba.core import types
from numba.np.numpy_support import as_dtype

_LAYOUT_FLAGS = {"C": "C_CONTIGUOUS", "F": "F_CONTIGUOUS", "A": None}


def _has_type(value, numba_type):
    """True when ``value`` is what a compiled variant taking ``numba_type`` reads:
    a plain ndarray of its dtype, dimensions and layout (writable where the type
    writes, aligned where it assumes so: numba's typeof does not look), None, or a
    Python int; no other type."""
    if type(numba_type) is types.Array:
        if type(value) is not np.ndarray or value.ndim != numba_type.ndim:
            return False
        try:
            if value.dtype != as_dtype(numba_type.dtype):
                return False
        except NotImplementedError:  # a dtype numpy has no name for
            return False
        flags = value.flags
        layout = _LAYOUT_FLAGS.get(numba_type.layout, False)
        if layout is False or (layout is not None and not flags[layout]):
            return False
        if numba_type.mutable and not flags.writeable:
            return False
        return flags.aligned or not numba_type.aligned
    if numba_type == types.none:
        return value is None
    if numba_type == types.intp:
        return type(value) is int  # what the dispatcher types a Python int as
    return False


def compiled_variant(dispatcher, args):
    """The compiled entry point of ``dispatcher`` (a callable of its wrapper) whose
    argument types ``args`` have, exactly; None when no such variant is compiled
    (or loaded) in this process yet, or numba keeps them otherwise."""
    for signature, result in tuple(getattr(dispatcher, "overloads", {}).items()):
        if len(signature) == len(args) and all(map(_has_type, args, signature)):
            return getattr(result, "entry_point", None)
    return None
