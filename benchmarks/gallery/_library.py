"""The one line a gallery script changes: where MLPClassifier comes from.

``python script.py fastbp`` imports fastbp's drop-in replacement, ``python script.py
sklearn`` scikit-learn's own; everything else in the scripts is scikit-learn's code.
"""

import sys


def mlp_classifier():
    library = sys.argv[1] if len(sys.argv) > 1 else "fastbp"
    if library == "fastbp":
        from fastbp import MLPClassifier
    elif library == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        raise SystemExit(f"usage: {sys.argv[0]} fastbp|sklearn (got {library!r})")
    return MLPClassifier
