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


def _inside_the_machinery(filename):
    """Whether ``filename`` is fastbp's, numba's or llvmlite's own source."""
    return any(filename.startswith(root) for root in _machinery_roots())


def _machinery_roots():
    import os

    roots = [os.path.dirname(__file__) + os.sep]
    for name in ("numba", "llvmlite"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            roots.append(os.path.dirname(module.__file__) + os.sep)
    return roots


def warn_at_user_code(message, category):
    """:func:`warnings.warn` shown at the first line outside fastbp, numba and
    llvmlite: for warnings raised deep inside numba's dispatch (the kernel cache's),
    where a fixed ``stacklevel`` would name a line of numba, different for each way
    in (a fit, a prediction, a warmup)."""
    frame = sys._getframe(1)
    stacklevel = 2  # warnings.warn's count for the frame above this function
    while frame is not None and _inside_the_machinery(frame.f_code.co_filename):
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)
