"""ONNX export: fastbp's estimators go straight to ``skl2onnx.to_onnx``.

skl2onnx finds a converter by the model's class, so fastbp registers its own (see
:mod:`fastbp._onnx_converters`) when skl2onnx is there. ``import fastbp`` must stay
fast and must not import skl2onnx or onnx, so the registration waits for skl2onnx:

* if skl2onnx is already imported when fastbp is, fastbp registers at once;
* otherwise a finder on ``sys.meta_path`` waits for ``import skl2onnx`` and registers
  as soon as skl2onnx has finished importing, then steps out of the import system.

Either way ``skl2onnx.to_onnx(model, X[:1])`` works with no extra call, in either
import order. :func:`register_onnx_converters` does the same explicitly.

This module imports nothing beyond the standard library until it registers.
"""

import importlib
import sys
import warnings
from importlib.abc import Loader, MetaPathFinder

_SKL2ONNX = "skl2onnx"


def register_onnx_converters():
    """Register fastbp's converters with skl2onnx.

    Not needed in ordinary use: fastbp registers them by itself when skl2onnx is
    imported, before or after fastbp. Call it to register explicitly, or to see the
    error if the registration failed (a warning says so then). Calling it again
    does no harm.

    Afterwards ``skl2onnx.to_onnx`` and ``skl2onnx.convert_sklearn`` take a fitted
    :class:`~fastbp.BackpropClassifier` or :class:`~fastbp.BackpropRegressor`,
    alone or inside a Pipeline, with any activation fastbp has (per-layer lists
    included). Classifiers give scikit-learn's outputs, a label and the
    probabilities, and take skl2onnx's classifier options (``zipmap``, ``nocl``,
    ``output_class_labels``). The graph computes in the input's float type:
    float32 for ``FloatTensorType`` inputs, float64 for ``DoubleTensorType``.

    Raises
    ------
    ImportError
        If skl2onnx is not installed (``pip install "fastbp[onnx]"``).

    Examples
    --------
    >>> import numpy as np
    >>> from skl2onnx import to_onnx
    >>> from fastbp import BackpropRegressor
    >>> from fastbp.onnx import register_onnx_converters
    >>> register_onnx_converters()
    >>> X = np.random.RandomState(0).uniform(-1, 1, (40, 3)).astype(np.float32)
    >>> reg = BackpropRegressor(hidden_layer_sizes=(4,), activation="elu", solver="lbfgs")
    >>> reg = reg.fit(X, X.sum(axis=1))
    >>> onnx_model = to_onnx(reg, X[:1])
    >>> [node.op_type for node in onnx_model.graph.node]
    ['MatMul', 'Add', 'Elu', 'MatMul', 'Add', 'Identity']
    """
    from fastbp import _onnx_converters

    _onnx_converters.register()
    _remove_import_hook()


def _load_converters():
    # Importing the module registers the converters. Only the import, no call into
    # the module: when a user's import of fastbp._onnx_converters is what imports
    # skl2onnx, the hook fires while that module is half-imported; it then
    # registers as its import completes.
    importlib.import_module("fastbp._onnx_converters")


def _register_or_warn():
    """Register from inside someone else's import: a failure must not break it."""
    try:
        _load_converters()
    except Exception as error:  # any failure becomes the warning
        warnings.warn(
            f"fastbp could not register its ONNX converters with skl2onnx ({error!r}); "
            "skl2onnx.to_onnx will not take fastbp models. Call "
            "fastbp.onnx.register_onnx_converters() to see the error.",
            stacklevel=2,
        )
    _remove_import_hook()


class _RegisterAfterImport(Loader):
    """skl2onnx's own loader, plus the registration once skl2onnx has run."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # skl2onnx sees its real loader while it runs, and keeps it afterwards.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        _register_or_warn()


class _Skl2onnxFinder(MetaPathFinder):
    """Finds nothing itself: asks the other finders for skl2onnx's spec and wraps
    its loader, so that fastbp registers when ``import skl2onnx`` completes."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _SKL2ONNX:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _RegisterAfterImport(spec.loader)
            return spec
        return None


_FINDER = _Skl2onnxFinder()


def _remove_import_hook():
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def _install_import_hook():
    """Register now if skl2onnx is imported, else when it is (called by fastbp's
    ``__init__``)."""
    if _SKL2ONNX in sys.modules:
        _register_or_warn()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
