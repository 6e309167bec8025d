"""Stochastic optimizers: their state on flat arrays and their per-epoch rules.

The per-step arithmetic is compiled in :mod:`fastbp._kernels` (it runs inside the
epoch kernel); what lives here is what happens between epochs, as in
scikit-learn's ``_stochastic_optimizers``: the learning-rate schedule
(``iteration_ends``) and the reaction to a plateau (``trigger_stopping``).
"""

import copy

import numpy as np

from fastbp import _kernels
from fastbp._network import Workspace, kernel_input, read_only


class _PlainState:
    """Export and rebuild an optimizer as a dict of arrays and plain values, so a
    fitted estimator persists with no fastbp type inside (safe for ``skops.io``)."""

    def to_state(self):
        return {"kind": self.kind, **vars(self)}

    @staticmethod
    def from_state(state):
        state = dict(state)
        optimizer_class = {"sgd": SGDOptimizer, "adam": AdamOptimizer}[state.pop("kind")]
        optimizer = optimizer_class.__new__(optimizer_class)
        optimizer.__dict__.update(state)
        return optimizer


class SGDOptimizer(_PlainState):
    """SGD with momentum or Nesterov momentum and a learning-rate schedule.

    Parameters
    ----------
    n_params : int
        Length of the flat parameter vector.
    dtype : numpy dtype
        The parameters' dtype; the state and hyperparameters use it too.
    learning_rate_init : float
    lr_schedule : {'constant', 'invscaling', 'adaptive'}
    momentum : float
    nesterov : bool
    power_t : float
    """

    solver_code = _kernels.SGD
    kind = "sgd"

    def __init__(self, n_params, dtype, learning_rate_init, lr_schedule, momentum,
                 nesterov, power_t):  # fmt: skip
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = bool(nesterov)
        self.power_t = power_t
        self.velocity = np.zeros(n_params, dtype=dtype)
        self._unused = np.zeros(0, dtype=dtype)

    @property
    def step(self):
        return 0

    def state_arrays(self):
        return self.velocity, self._unused

    def hyperparameters(self, alpha, dtype):
        hyper = np.zeros(_kernels.N_HYPER, dtype=dtype)
        hyper[_kernels.H_LEARNING_RATE] = self.learning_rate
        hyper[_kernels.H_MOMENTUM] = self.momentum
        hyper[_kernels.H_ALPHA] = alpha
        return hyper

    def epoch_ends(self, step):
        """Record the time step reached by an epoch (SGD keeps no step count)."""

    def iteration_ends(self, time_step):
        """Update the learning rate after an epoch; ``time_step`` counts samples seen."""
        if self.lr_schedule == "invscaling":
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

    def copy(self):
        return copy.deepcopy(self)


class AdamOptimizer(_PlainState):
    """Adam (Kingma & Ba, 2014) with scikit-learn's defaults and bias correction.

    Parameters
    ----------
    n_params : int
    dtype : numpy dtype
    learning_rate_init : float
    beta_1, beta_2 : float
    epsilon : float
    """

    solver_code = _kernels.ADAM
    kind = "adam"

    def __init__(self, n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.t = 0
        self.first_moment = np.zeros(n_params, dtype=dtype)
        self.second_moment = np.zeros(n_params, dtype=dtype)

    @property
    def step(self):
        return self.t

    def state_arrays(self):
        return self.first_moment, self.second_moment

    def hyperparameters(self, alpha, dtype):
        hyper = np.zeros(_kernels.N_HYPER, dtype=dtype)
        hyper[_kernels.H_LEARNING_RATE] = self.learning_rate_init
        hyper[_kernels.H_BETA_1] = self.beta_1
        hyper[_kernels.H_BETA_2] = self.beta_2
        hyper[_kernels.H_EPSILON] = self.epsilon
        hyper[_kernels.H_ALPHA] = alpha
        return hyper

    def epoch_ends(self, step):
        self.t = step
        self.learning_rate = (
            self.learning_rate_init * np.sqrt(1 - self.beta_2**self.t) / (1 - self.beta_1**self.t)
        )

    def iteration_ends(self, time_step):
        """Adam adapts its own step sizes; nothing changes between epochs."""

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True

    def copy(self):
        return copy.deepcopy(self)


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
    activation : str
        Hidden activation name.
    loss : str
        One of ``_kernels.LOSS_CODES``.
    alpha : float
        L2 penalty.
    chunk_rows : int
        Rows per chunk.
    """

    def __init__(self, layout, X, y, sample_weight, activation, loss, alpha, chunk_rows):
        dtype = np.dtype(X.dtype)
        n_samples = X.shape[0]
        self.layout = layout
        self.chunk_rows = int(max(1, min(n_samples, chunk_rows)))
        self.workspace = Workspace(layout, self.chunk_rows, dtype)
        self.chunk_grads = np.empty(layout.n_params, dtype=dtype)
        self.use_weights = sample_weight is not None
        self.X, self.csr, self.is_sparse = kernel_input(X, dtype)
        self.y = read_only(np.ascontiguousarray(y, dtype=dtype))
        self.sample_weight = read_only(
            np.ascontiguousarray(sample_weight, dtype=dtype)
            if self.use_weights
            else np.ones(0, dtype=dtype)
        )
        self.order = read_only(np.arange(n_samples, dtype=np.intp))
        self.hidden_code = _kernels.ACTIVATION_CODES[activation]
        self.loss_code = _kernels.LOSS_CODES[loss]
        self.alpha = float(alpha)

    def __call__(self, params):
        """Return ``(loss, gradient)`` at ``params`` (flat, the model's dtype).

        The gradient is a view of an internal buffer, overwritten by the next call.
        """
        layout, workspace = self.layout, self.workspace
        loss = _kernels.full_loss_and_gradient(
            self.X, self.csr, self.is_sparse, self.y, self.sample_weight, self.use_weights,
            self.order,
            self.chunk_rows, params, workspace.grads, self.chunk_grads,
            layout.layer_units, layout.coef_offsets, layout.intercept_offsets,
            workspace.activations, workspace.deltas, workspace.layer_offsets,
            workspace.x_batch, workspace.y_batch, workspace.sw_batch, self.hidden_code,
            self.loss_code, self.alpha,
        )  # fmt: skip
        return loss, workspace.grads
