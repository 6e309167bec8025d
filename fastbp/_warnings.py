"""Warnings of training, issued where scikit-learn's filters find them.

scikit-learn's MLP warns from its own module, ``sklearn.neural_network.
_multilayer_perceptron``, and code written for it silences those warnings by that
name: scikit-learn's gallery does ``warnings.filterwarnings("ignore",
category=ConvergenceWarning, module="sklearn")``. A filter's ``module`` is matched
against the module a warning is issued under, so a drop-in must issue its warnings
under the same name, or that code prints warnings scikit-learn's did not. The
location shown is still the line of the user's code that called ``fit`` (more use
to a reader than a line of fastbp), and the once-per-location registry is that
code's, as :func:`warnings.warn` would use.
"""

import sys
import warnings

#: The module scikit-learn's MLP warnings are issued under.
SKLEARN_MLP_MODULE = "sklearn.neural_network._multilayer_perceptron"


def warn_as_sklearn_mlp(message, category, stacklevel):
    """:func:`warnings.warn` (``stacklevel`` counted the same way, from the caller of
    this function) with the warning issued under :data:`SKLEARN_MLP_MODULE`."""
    frame = sys._getframe(stacklevel)
    registry = frame.f_globals.setdefault("__warningregistry__", {})
    warnings.warn_explicit(
        message,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=SKLEARN_MLP_MODULE,
        registry=registry,
        # No module_globals: linecache would ask the frame's loader for the source
        # under the frame's __name__, and a module run with -m is loaded under its
        # own name but runs as __main__ (ImportError). warnings.warn passes none
        # either; the line is read from the file.
    )
