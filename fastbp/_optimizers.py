"""Stochastic optimizers: their state on flat arrays and their per-epoch rules.

The per-step arithmetic is compiled in :mod:`fastbp._kernels` (it runs inside the
epoch kernel); what lives here is what happens between epochs, as in
scikit-learn's ``_stochastic_optimizers``: the learning-rate schedule
(``iteration_ends``) and the reaction to a plateau (``trigger_stopping``).
"""

import copy
import math

import numpy as np

from fastbp import _kernel_codes, _kernels
from fastbp._losses import loss_params_vector
from fastbp._network import (
    check_training_data,
    kernel_data,
    needs_rare_paths,
    network,
    rare_paths,
    read_only,
    workspace,
)
from fastbp._optimizer_steps import STATE_ARRAYS

# Concrete numeric types for the state checks: isinstance against the numbers ABCs
# costs a few times more, and the checks run at every partial_fit's commit.
INTEGERS = (int, np.integer)
REALS = (int, float, np.integer, np.floating)


class _PlainState:
    """Export and rebuild an optimizer as a dict of arrays and plain values, so a
    fitted estimator persists with no fastbp type inside (safe for ``skops.io``).

    Each optimizer declares its state: ``_STATE_ARRAYS`` (flat arrays of one entry
    per parameter, in the parameters' dtype), ``_COUNTERS`` (non-negative integers)
    and ``_SETTINGS`` (numbers); :meth:`problem` checks them against a network, and
    :meth:`from_state` refuses a saved state that lacks one or has anything else.
    """

    _STATE_ARRAYS = ()
    _COUNTERS = ("epochs_done", "max_iter", "step_epochs")
    _SETTINGS = ("learning_rate_init", "base_learning_rate", "learning_rate", "step_factor")
    _OPTIONS = ("lr_schedule",)

    def to_state(self):
        return {"kind": self.kind, **vars(self)}

    @staticmethod
    def from_state(state):
        """The optimizer a saved state describes (ValueError if it is not one)."""
        state = dict(state)
        state.pop("_unused", None)  # SGD's placeholder, saved by earlier versions
        kind = state.pop("kind", None)
        if not isinstance(kind, str) or kind not in OPTIMIZERS:
            raise ValueError(
                f"The saved optimizer state names an unknown optimizer {kind!r}; expected "
                f"one of {sorted(OPTIMIZERS)}."
            )
        optimizer_class = OPTIMIZERS[kind]
        expected = set(optimizer_class._fields())
        if set(state) != expected:
            raise ValueError(
                f"The saved {kind} optimizer state has the fields {sorted(state)}; expected "
                f"{sorted(expected)}."
            )
        optimizer = optimizer_class.__new__(optimizer_class)
        optimizer.__dict__.update(state)
        problem = optimizer._value_problem()
        if problem:
            raise ValueError(f"The saved {kind} optimizer state is damaged: {problem}.")
        return optimizer

    @classmethod
    def _fields(cls):
        return (*cls._STATE_ARRAYS, *cls._COUNTERS, *cls._SETTINGS, *cls._OPTIONS)

    def _value_problem(self):
        """What is wrong with the counters, settings and options, or None."""
        for name in self._COUNTERS:
            value = getattr(self, name, None)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, INTEGERS):
                return f"{name} must be an integer, got {value!r}"
            if value < 0:
                return f"{name} must be non-negative, got {value!r}"
        for name in self._SETTINGS:
            value = getattr(self, name, None)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, REALS):
                return f"{name} must be a number, got {value!r}"
            if not math.isfinite(value):
                return f"{name} must be finite, got {value!r}"
        if getattr(self, "lr_schedule", None) not in _SCHEDULES:
            return f"lr_schedule must be one of {sorted(_SCHEDULES)}"
        return None

    def problem(self, n_params, dtype):
        """What keeps this state from training a network of ``n_params`` parameters
        of ``dtype`` (as a phrase), or None when it fits."""
        problem = self._value_problem()
        if problem:
            return problem
        for name in self._STATE_ARRAYS:
            array = getattr(self, name, None)
            if not isinstance(array, np.ndarray):
                return f"has no array {name}"
            if array.shape != (n_params,) or array.dtype != dtype or not array.flags.c_contiguous:
                return (
                    f"holds {name} of shape {array.shape} and dtype {array.dtype}; the network "
                    f"needs ({n_params},) and {np.dtype(dtype)}"
                )
        return None

    def copy(self):
        return copy.deepcopy(self)

    def _new_state(self, n_params, dtype):
        """Zeroed state arrays, as the rows of one matrix (see :meth:`state_arrays`)."""
        matrix = np.zeros((len(self._STATE_ARRAYS), n_params), dtype=dtype)
        for row, name in enumerate(self._STATE_ARRAYS):
            setattr(self, name, matrix[row])

    def state_arrays(self):
        """The ``(n_state, n_params)`` matrix the compiled step reads and writes
        (:func:`fastbp._optimizer_steps.optimizer_step`): the arrays of
        ``_STATE_ARRAYS``, in that order, as its rows. They are views of it, so the
        step updates them in place; arrays that are not (a copy, a loaded state) are
        gathered into a new matrix first, and the attributes become its rows."""
        arrays = [getattr(self, name) for name in self._STATE_ARRAYS]
        matrix = arrays[0].base
        if not (
            isinstance(matrix, np.ndarray)
            and matrix.ndim == 2
            and matrix.shape[0] == len(arrays)
            and matrix.flags.c_contiguous
            and all(
                array.base is matrix
                and array.shape == matrix.shape[1:]
                and array.__array_interface__["data"][0]
                == matrix[row].__array_interface__["data"][0]
                for row, array in enumerate(arrays)
            )
        ):
            matrix = np.ascontiguousarray(np.stack(arrays))
            for row, name in enumerate(self._STATE_ARRAYS):
                setattr(self, name, matrix[row])
        return matrix


_SCHEDULES = ("constant", "invscaling", "adaptive", "cosine", "step")


class _Schedule(_PlainState):
    """The learning-rate schedules beyond scikit-learn's, shared by SGD and Adam:
    'cosine' decays from learning_rate_init to 0 over max_iter epochs; 'step'
    multiplies it by step_factor every step_epochs epochs."""

    #: Whether the step looks ahead along the velocity (Nesterov's momentum): only
    #: an optimizer that sets it (SGD, from ``nesterovs_momentum``) does; the
    #: training kernels read it from the optimizer, as scikit-learn's optimizer
    #: keeps the value it was made with across ``partial_fit`` calls.
    nesterov = False

    def _init_schedule(self, learning_rate_init, lr_schedule, max_iter, step_epochs,
                       step_factor):  # fmt: skip
        self.learning_rate_init = learning_rate_init
        self.lr_schedule = lr_schedule
        self.max_iter = max_iter
        self.step_epochs = step_epochs
        self.step_factor = step_factor
        self.epochs_done = 0
        self.base_learning_rate = float(learning_rate_init)

    def rate_changes_every_epoch(self):
        """True when the step size changes after every epoch (so each epoch needs
        its own ``hyperparameters``); otherwise it changes only when
        ``trigger_stopping`` says so."""
        return self.lr_schedule in self._EPOCH_SCHEDULES

    def _advance_schedule(self):
        """Count one epoch; return the scheduled rate, or None for other schedules."""
        self.epochs_done += 1
        if self.lr_schedule == "cosine":
            progress = min(self.epochs_done, self.max_iter) / self.max_iter
            self.base_learning_rate = (
                self.learning_rate_init * 0.5 * (1 + math.cos(math.pi * progress))
            )
        elif self.lr_schedule == "step":
            decays = self.epochs_done // self.step_epochs
            self.base_learning_rate = self.learning_rate_init * self.step_factor**decays
        else:
            return None
        return self.base_learning_rate


class SGDOptimizer(_Schedule):
    """SGD with momentum or Nesterov momentum and a learning-rate schedule.

    Parameters
    ----------
    n_params : int
        Length of the flat parameter vector.
    dtype : numpy dtype
        The parameters' dtype; the state and hyperparameters use it too.
    learning_rate_init : float
    lr_schedule : {'constant', 'invscaling', 'adaptive', 'cosine', 'step'}
    momentum : float
    nesterov : bool
    power_t : float
    max_iter, step_epochs, step_factor : int, int, float
        Horizon of 'cosine'; period and factor of 'step'.
    """

    solver_code = _kernel_codes.SGD
    kind = "sgd"
    _EPOCH_SCHEDULES = ("invscaling", "cosine", "step")
    _STATE_ARRAYS = STATE_ARRAYS[_kernel_codes.SGD]
    _SETTINGS = (*_Schedule._SETTINGS, "momentum", "power_t")
    _OPTIONS = (*_Schedule._OPTIONS, "nesterov")

    def __init__(self, n_params, dtype, learning_rate_init, lr_schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5, max_iter=200, step_epochs=10,
                 step_factor=0.5):  # fmt: skip
        self._init_schedule(learning_rate_init, lr_schedule, max_iter, step_epochs, step_factor)
        self.learning_rate = float(learning_rate_init)
        self.momentum = momentum
        self.nesterov = bool(nesterov)
        self.power_t = power_t
        self._new_state(n_params, dtype)

    @property
    def step(self):
        return 0

    def _value_problem(self):
        if not isinstance(getattr(self, "nesterov", None), bool):
            return f"nesterov must be True or False, got {getattr(self, 'nesterov', None)!r}"
        return super()._value_problem()

    @classmethod
    def for_estimator(cls, estimator, n_params, dtype):
        """The optimizer an estimator's parameters describe."""
        return cls(
            n_params, dtype, estimator.learning_rate_init, momentum=estimator.momentum,
            nesterov=estimator.nesterovs_momentum, power_t=estimator.power_t,
            **_schedule_parameters(estimator),
        )  # fmt: skip

    def hyperparameters(self, alpha, dtype):
        hyper = np.zeros(_kernel_codes.N_HYPER, dtype=dtype)
        hyper[_kernel_codes.H_LEARNING_RATE] = self.learning_rate
        hyper[_kernel_codes.H_MOMENTUM] = self.momentum
        hyper[_kernel_codes.H_ALPHA] = alpha
        return hyper

    def epoch_ends(self, step):
        """Record the time step reached by an epoch (SGD keeps no step count)."""

    def iteration_ends(self, time_step):
        """Update the learning rate after an epoch; ``time_step`` counts samples seen."""
        scheduled = self._advance_schedule()
        if scheduled is not None:
            self.learning_rate = scheduled
        elif self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Return True to stop; the 'adaptive' schedule divides the rate by 5 instead."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


class AdamOptimizer(_Schedule):
    """Adam (Kingma & Ba, 2014) with scikit-learn's defaults and bias correction.

    As in scikit-learn, the 'constant', 'invscaling' and 'adaptive' schedules do not
    apply to Adam; 'cosine' and 'step' do (they scale its base step size).

    Parameters
    ----------
    n_params : int
    dtype : numpy dtype
    learning_rate_init : float
    beta_1, beta_2 : float
    epsilon : float
    lr_schedule, max_iter, step_epochs, step_factor : see :class:`SGDOptimizer`
    """

    solver_code = _kernel_codes.ADAM
    kind = "adam"
    _EPOCH_SCHEDULES = ("cosine", "step")  # the others do not apply to Adam
    _STATE_ARRAYS = STATE_ARRAYS[_kernel_codes.ADAM]
    _COUNTERS = (*_Schedule._COUNTERS, "t")
    _SETTINGS = (*_Schedule._SETTINGS, "beta_1", "beta_2", "epsilon")

    def __init__(self, n_params, dtype, learning_rate_init, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, lr_schedule="constant", max_iter=200, step_epochs=10,
                 step_factor=0.5):  # fmt: skip
        self._init_schedule(learning_rate_init, lr_schedule, max_iter, step_epochs, step_factor)
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self._new_state(n_params, dtype)

    @property
    def step(self):
        return self.t

    @classmethod
    def for_estimator(cls, estimator, n_params, dtype):
        """The optimizer an estimator's parameters describe."""
        return cls(
            n_params, dtype, estimator.learning_rate_init, estimator.beta_1,
            estimator.beta_2, estimator.epsilon, **_schedule_parameters(estimator),
        )  # fmt: skip

    def hyperparameters(self, alpha, dtype):
        hyper = np.zeros(_kernel_codes.N_HYPER, dtype=dtype)
        hyper[_kernel_codes.H_LEARNING_RATE] = self.base_learning_rate
        hyper[_kernel_codes.H_BETA_1] = self.beta_1
        hyper[_kernel_codes.H_BETA_2] = self.beta_2
        hyper[_kernel_codes.H_EPSILON] = self.epsilon
        hyper[_kernel_codes.H_ALPHA] = alpha
        return hyper

    def epoch_ends(self, step):
        self.t = step
        if step == 0:  # no step taken yet (every batch weighed 0): nothing to correct
            self.learning_rate = self.base_learning_rate
            return
        # the bias-corrected step size of the last update, as scikit-learn reports it
        self.learning_rate = (
            self.base_learning_rate * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        )

    def iteration_ends(self, time_step):
        self._advance_schedule()

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's
    ``AdamW``: each step first multiplies the coefficients by ``1 - lr *
    weight_decay`` (``lr`` the scheduled step size, before bias correction), then
    takes Adam's step. The decay is not part of the gradient, so Adam's per-weight
    scaling does not weaken it; intercepts are not decayed (as ``alpha`` spares
    them). ``alpha``, an L2 term in the loss, still applies when set.

    Parameters
    ----------
    weight_decay : float
        The decay rate per unit of step size.
    others : see :class:`AdamOptimizer`
    """

    solver_code = _kernel_codes.ADAMW
    kind = "adamw"
    _STATE_ARRAYS = STATE_ARRAYS[_kernel_codes.ADAMW]
    _SETTINGS = (*AdamOptimizer._SETTINGS, "weight_decay")

    def __init__(self, n_params, dtype, learning_rate_init, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, weight_decay=0.01, **schedule):  # fmt: skip
        super().__init__(n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon, **schedule)
        self.weight_decay = weight_decay

    @classmethod
    def for_estimator(cls, estimator, n_params, dtype):
        return cls(
            n_params, dtype, estimator.learning_rate_init, estimator.beta_1,
            estimator.beta_2, estimator.epsilon, estimator.weight_decay,
            **_schedule_parameters(estimator),
        )  # fmt: skip

    def hyperparameters(self, alpha, dtype):
        hyper = super().hyperparameters(alpha, dtype)
        hyper[_kernel_codes.H_WEIGHT_DECAY] = self.weight_decay
        return hyper


#: The stochastic solvers, by ``solver`` name: adding one is its class here (its
#: per-epoch rules, the estimator parameters it reads), its step and its state arrays
#: in ``fastbp._optimizer_steps`` (and its code in ``_kernel_codes``).
OPTIMIZERS = {cls.kind: cls for cls in (SGDOptimizer, AdamOptimizer, AdamWOptimizer)}


def _schedule_parameters(estimator):
    return dict(
        lr_schedule=estimator.learning_rate, max_iter=estimator.max_iter,
        step_epochs=estimator.lr_step_epochs, step_factor=estimator.lr_step_factor,
    )  # fmt: skip


class FullBatchObjective:
    """Loss and gradient over the whole training set, for L-BFGS and for tests.

    One compiled call computes both, in row chunks so that the workspace stays
    bounded however many samples there are.

    Parameters
    ----------
    layout : NetworkLayout
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,) or None
    activation : str or list of str
        Hidden activation name, or one per hidden layer.
    loss : str
        A key of ``fastbp._losses.LOSSES``.
    alpha : float
        L2 penalty.
    chunk_rows : int
        Rows per chunk.
    loss_parameters : dict, default=None
        Parameters of the loss by name (``fastbp._losses.LOSS_PARAMETERS``), such as
        ``huber_delta``; their defaults otherwise.
    dropout : float or list of float, default=0.0
        Dropout rate(s) of the hidden layers; the masks are drawn from
        ``dropout_seed`` anew at every call, so the objective is deterministic.
    dropout_seed : int, default=0
    """

    def __init__(self, layout, X, y, sample_weight, activation, loss, alpha, chunk_rows,
                 loss_parameters=None, dropout=0.0, dropout_seed=0):  # fmt: skip
        dtype = np.dtype(X.dtype)
        n_samples = X.shape[0]
        self.layout = layout
        self.chunk_rows = int(max(1, min(n_samples, chunk_rows)))
        rates = per_hidden_layer(dropout, layout.n_layers, 0.0)
        with_dropout = any(rate > 0 for rate in rates)
        codes = [
            _kernel_codes.ACTIVATION_CODES[name]
            for name in per_hidden_layer(activation, layout.n_layers, "identity")
        ]
        self.net = network(layout, codes, rates)
        self.data, csr = kernel_data(X, y, sample_weight, dtype)
        check_training_data(self.data, csr, layout)
        self.work = workspace(layout, self.chunk_rows, dtype)
        self.rare = None
        if needs_rare_paths(self.net, csr is not None, training=True):
            self.rare = rare_paths(layout, self.chunk_rows, dtype, csr, with_dropout)
        self.chunk_grads = np.empty(layout.n_params, dtype=dtype)
        self.order = read_only(np.arange(n_samples, dtype=np.intp))
        hyper = np.zeros(_kernel_codes.N_HYPER, dtype=dtype)
        hyper[_kernel_codes.H_ALPHA] = alpha
        loss_params = loss_params_vector(loss_parameters or {}, dtype)
        self.settings = _kernels.Settings(
            _kernel_codes.LOSS_CODES[loss], _kernel_codes.SGD, False, 0.0, hyper, loss_params
        )
        self.dropout_seed = int(dropout_seed) if with_dropout else -1

    def __call__(self, params):
        """Return ``(loss, gradient)`` at ``params`` (flat, the model's dtype).

        The gradient is a view of an internal buffer, overwritten by the next call.
        """
        loss = _kernels.full_loss_and_gradient(
            self.data, self.net, self.work, self.rare, self.order, self.chunk_rows, params,
            self.chunk_grads, self.settings, self.dropout_seed,
        )  # fmt: skip
        return loss, self.work.grads


def per_hidden_layer(value, n_layers, edge):
    """Expand a per-hidden-layer setting (one value, or a list with one entry per
    hidden layer) to one entry per layer; the input and output layers get ``edge``."""
    n_hidden = n_layers - 2
    if isinstance(value, (list, tuple)):
        if len(value) != n_hidden:
            raise ValueError(
                f"Got {len(value)} per-layer values for {n_hidden} hidden layer(s); give "
                "one value or one per hidden layer."
            )
        values = list(value)
    else:
        values = [value] * n_hidden
    return [edge] + values + [edge]
