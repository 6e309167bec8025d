"""The training loops' view of scikit-learn's callbacks (experimental in 1.9).

A fit asks :func:`fit_callbacks` for an adapter and calls it at each epoch (or
L-BFGS iteration) without asking whether anyone listens: :class:`NoCallbacks`, the
default, does nothing, and costs nothing per epoch. That is also what a fit gets
when a meta-estimator (a search, a pipeline) opened a callback context in which no
callback is registered.
"""

import weakref
from contextlib import contextmanager

try:  # ProgressBar, ScoringMonitor, ... (scikit-learn >= 1.9)
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover - older scikit-learn: the estimators work without

    class CallbackSupportMixin:
        pass


class NoCallbacks:
    """The adapter when no callback listens: every hook does nothing."""

    listening = False

    def task_begins(self, task_name):
        pass

    def task_ends(self, reconstruction_attributes=None):
        """Returns True when a callback asks training to stop (never, here)."""
        return False


class FitCallbacks:
    """The callbacks of one fit: one subtask per epoch or L-BFGS iteration.

    ``reconstruction_attributes`` may be a dict of fitted attributes or a function
    returning one, evaluated only by a callback that asks for it.
    """

    listening = True

    def __init__(self, estimator, context, data):
        self._estimator = estimator
        self._context = context
        self._data = data
        self._task = None

    def task_begins(self, task_name):
        self._task = self._context.subcontext(task_name=task_name)
        self._task.call_on_fit_task_begin(estimator=self._estimator, **self._data)

    def task_ends(self, reconstruction_attributes=None):
        extra = {}
        if reconstruction_attributes is not None:
            extra["reconstruction_attributes"] = reconstruction_attributes
        task, self._task = self._task, None
        return bool(task.call_on_fit_task_end(estimator=self._estimator, **extra, **self._data))


def fit_callbacks(estimator):
    """The adapter for the fit ``estimator`` is running (see :func:`fit_task`)."""
    context = estimator.__dict__.get("_callback_fit_ctx")
    data = estimator.__dict__.get("_callback_data")
    owner = estimator.__dict__.get("_callback_owner")
    if context is None or data is None or not getattr(context, "_callbacks", True):
        return NoCallbacks()
    # The fit trains a copy of the estimator (fastbp._fitted.training); callbacks
    # hear of the estimator the user fits (a monitor keys its logs by it).
    owner = owner() if owner is not None else None
    return FitCallbacks(estimator if owner is None else owner, context, data)


@contextmanager
def fit_task(estimator, X, y, sample_weight, max_subtasks):
    """The callbacks' task of one fit: opened when callbacks are set on ``estimator``
    (or propagated from a meta-estimator), closed when the fit succeeds. The fit's
    data stays on the estimator (for :func:`fit_callbacks`) until the block ends."""
    if (
        "_skl_callbacks" not in estimator.__dict__
        and "_parent_callback_ctx" not in estimator.__dict__
    ):
        yield
        return
    context = estimator._init_callback_context(max_subtasks=max_subtasks)
    metadata = None if sample_weight is None else {"sample_weight": sample_weight}
    data = {"X": X, "y": y, "metadata": metadata}
    estimator._callback_data = data
    estimator._callback_owner = weakref.ref(estimator)
    try:
        context.call_on_fit_task_begin(estimator=estimator, **data)
        yield
        context.call_on_fit_task_end(estimator=estimator, reconstruction_attributes={}, **data)
    finally:
        estimator.__dict__.pop("_callback_data", None)
        estimator.__dict__.pop("_callback_owner", None)
