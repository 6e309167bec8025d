"""What a fitted estimator saves and restores (pickle, joblib, skops).

The saved state holds plain values and numpy arrays only, and scikit-learn's own
LabelBinarizer: the fitted-network snapshot is left out (it is rebuilt, and its
shapes checked, from ``coefs_`` and ``intercepts_``) and the optimizer travels as a
dict. So ``skops.io.load`` needs to trust the two estimator classes and nothing else.
"""

from fastbp._optimizers import _PlainState

#: The types to pass as ``trusted=`` to ``skops.io.load`` for a fastbp model. A fitted
#: estimator holds nothing else of fastbp's: numpy arrays, plain Python values and
#: scikit-learn's own LabelBinarizer, which skops trusts by default.
SKOPS_TRUSTED_TYPES = [
    "fastbp.estimators.BackpropClassifier",
    "fastbp.estimators.BackpropRegressor",
]


def saved_state(state):
    """The state to save, from the estimator's ``__getstate__`` dict (not modified)."""
    state = dict(state)  # object.__getstate__ returns __dict__ itself
    state.pop("_model", None)
    if "_optimizer" in state:
        state["_optimizer"] = state["_optimizer"].to_state()
    return state


def restored_state(state):
    """The estimator's attributes from a saved state (the snapshot is rebuilt by the
    caller once the attributes are set)."""
    state = dict(state)
    if isinstance(state.get("_optimizer"), dict):
        state["_optimizer"] = _PlainState.from_state(state["_optimizer"])
    return state
