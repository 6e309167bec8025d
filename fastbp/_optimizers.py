"""Stochastic optimizers: their state on flat arrays and their per-epoch rules.

The per-step arithmetic is compiled in :mod:`fastbp._kernels` (it runs inside the
epoch kernel); what lives here is what happens between epochs, as in
scikit-learn's ``_stochastic_optimizers``: the learning-rate schedule
(``iteration_ends``) and the reaction to a plateau (``trigger_stopping``).
"""

import copy

import numpy as np

from fastbp import _kernels


class SGDOptimizer:
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

    def epoch_ends(self, n_batches):
        """Record that an epoch of ``n_batches`` steps ran (SGD keeps no step count)."""

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


class AdamOptimizer:
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

    def epoch_ends(self, n_batches):
        self.t += n_batches
        self.learning_rate = (
            self.learning_rate_init
            * np.sqrt(1 - self.beta_2**self.t)
            / (1 - self.beta_1**self.t)
        )

    def iteration_ends(self, time_step):
        """Adam adapts its own step sizes; nothing changes between epochs."""

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True

    def copy(self):
        return copy.deepcopy(self)
