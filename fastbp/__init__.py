"""fastbp: multi-layer perceptrons trained by compiled backpropagation.

Drop-in replacements for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``
whose training loops are compiled with numba, under the same names
(``from fastbp import MLPClassifier``) or as ``BackpropClassifier`` and
``BackpropRegressor``.
"""

import importlib
import importlib.util

# Set before the import hook below: with skl2onnx already imported, the hook loads
# the estimators at once, and they read the version (their documentation links).
__version__ = "0.1.0"

from fastbp.onnx import _install_import_hook  # noqa: E402

# skl2onnx.to_onnx takes fastbp models once skl2onnx is imported, before or after
# fastbp, without importing skl2onnx here (see fastbp.onnx).
_install_import_hook()

# The public names load on first use (PEP 562): ``import fastbp`` itself takes
# milliseconds, not the two seconds of scikit-learn, scipy and numba, so that
# ``python -m fastbp --warmup`` starts its compiling processes at once.
_PUBLIC = {
    "BackpropClassifier": "fastbp.estimators",
    "BackpropRegressor": "fastbp.estimators",
    "DaskChunks": "fastbp.chunks",
    "LossCurveDisplay": "fastbp.plotting",
    "MLPClassifier": "fastbp.estimators",
    "MLPRegressor": "fastbp.estimators",
    "SKOPS_TRUSTED_TYPES": "fastbp._persistence",
    "fit_chunks": "fastbp.chunks",
    "warmup": "fastbp._warmup",
}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # e.g. fastbp.estimators
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_PUBLIC})
