"""What a fitted estimator saves and restores (pickle, joblib, skops).

The saved state holds plain values and numpy arrays only, and scikit-learn's own
LabelBinarizer: the fitted-network snapshot is saved as its fitted options (plain
names; the network itself is rebuilt, and every shape checked, from ``coefs_`` and
``intercepts_``), and the optimizer travels as a dict. So ``skops.io.load`` needs to
trust the estimator classes and nothing else. Callbacks are left out: they
are run-time attachments (a progress bar, a monitor), not part of the model, and
would need trusting too.

Loading checks everything (see ``_BaseBackprop.__setstate__`` and
:func:`fastbp._fitted.check_state`): a damaged or crafted file raises a ValueError.
"""

from fastbp._optimizers import _PlainState

#: The types to pass as ``trusted=`` to ``skops.io.load`` for a fastbp model. A fitted
#: estimator holds nothing else of fastbp's: numpy arrays, plain Python values and
#: scikit-learn's own LabelBinarizer, which skops trusts by default.
SKOPS_TRUSTED_TYPES = [
    "fastbp.estimators.BackpropClassifier",
    "fastbp.estimators.BackpropRegressor",
    "fastbp.estimators.MLPClassifier",
    "fastbp.estimators.MLPRegressor",
]

# scikit-learn's callback attributes: set by set_callbacks or during a fit.
CALLBACK_ATTRIBUTES = (
    "_skl_callbacks",
    "_skl_callbacks_to_teardown",
    "_callback_fit_ctx",
    "_parent_callback_ctx",
    "_callback_data",
    "_callback_owner",
)


def saved_state(state):
    """The state to save, from the estimator's ``__getstate__`` dict (not modified)."""
    state = dict(state)  # object.__getstate__ returns __dict__ itself
    model = state.pop("_model", None)
    if model is not None:
        state["_model"] = model.options()
    for name in CALLBACK_ATTRIBUTES:
        state.pop(name, None)
    if "_optimizer" in state:
        state["_optimizer"] = state["_optimizer"].to_state()
    return state


def restored_state(state):
    """The estimator's attributes from a saved state, and the fitted options of its
    network (None for a state saved without them); the caller rebuilds the network
    and checks the whole state once the attributes are set."""
    if not isinstance(state, dict):
        raise ValueError(f"The saved state must be a dict, got {type(state).__name__}.")
    state = dict(state)
    options = state.pop("_model", None)
    if options is not None and (
        not isinstance(options, dict)
        or set(options) != {"activation", "loss"}
        or not isinstance(options["activation"], (str, list))
    ):
        raise ValueError("The saved fitted options (_model) are damaged.")
    optimizer = state.get("_optimizer")
    if isinstance(optimizer, dict):
        state["_optimizer"] = _PlainState.from_state(optimizer)
    elif optimizer is not None:
        raise ValueError(
            f"The saved optimizer state must be a dict, got {type(optimizer).__name__}."
        )
    return state, options
