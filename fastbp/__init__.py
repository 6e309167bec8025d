"""fastbp: multi-layer perceptrons trained by compiled backpropagation.

Drop-in replacements for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``
whose training loops are compiled with numba.
"""

from fastbp._persistence import SKOPS_TRUSTED_TYPES
from fastbp._warmup import warmup
from fastbp.chunks import DaskChunks, fit_chunks
from fastbp.estimators import BackpropClassifier, BackpropRegressor
from fastbp.onnx import _install_import_hook
from fastbp.plotting import LossCurveDisplay

# skl2onnx.to_onnx takes fastbp models once skl2onnx is imported, before or after
# fastbp, without importing skl2onnx here (see fastbp.onnx).
_install_import_hook()

__version__ = "0.1.0"

__all__ = [
    "BackpropClassifier",
    "BackpropRegressor",
    "DaskChunks",
    "LossCurveDisplay",
    "SKOPS_TRUSTED_TYPES",
    "__version__",
    "fit_chunks",
    "warmup",
]
