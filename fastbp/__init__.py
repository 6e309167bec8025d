"""fastbp: multi-layer perceptrons trained by compiled backpropagation.

Drop-in replacements for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``
whose training loops are compiled with numba.
"""

from fastbp._warmup import warmup
from fastbp.chunks import DaskChunks, fit_chunks
from fastbp.estimators import SKOPS_TRUSTED_TYPES, BackpropClassifier, BackpropRegressor
from fastbp.plotting import LossCurveDisplay

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
