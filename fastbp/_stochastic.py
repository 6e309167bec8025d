"""The epoch loop of the stochastic solvers (sgd, adam, adamw).

The compiled kernel runs the epochs (:func:`fastbp._kernels.run_epochs`); Python
records each one in turn as scikit-learn's loop would: the loss curve, ``n_iter_``
and ``t_``, the learning-rate schedule, the convergence rule and early stopping,
verbose lines, callbacks, and Ctrl-C. Short epochs run several to a compiled call
when nothing needs Python between them.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastbp import _kernel_codes, _kernels
from fastbp._blas_threads import one_thread_if_small
from fastbp._callbacks import fit_callbacks
from fastbp._early_stopping import (
    ValidationSet,
    no_improvement_message,
    update_no_improvement_count,
)
from fastbp._logging import LOGGER, detail_wanted
from fastbp._network import (
    check_training_data,
    kernel_data,
    needs_rare_paths,
    rare_paths,
    workspace,
)
from fastbp._optimizers import OPTIMIZERS
from fastbp._warnings import warn_as_sklearn_mlp

# Several short epochs run in one compiled call, returning to Python about this
# often (so Ctrl-C stays prompt), with at most so many epochs and row-order entries.
SECONDS_PER_CALL = 0.01
MAX_EPOCHS_PER_CALL = 1000
MAX_ORDER_ELEMENTS = 1 << 22

# Warnings name the user's line: fit/partial_fit -> _fit -> _fit_unguarded ->
# fit_stochastic -> EpochLoop.run, under scikit-learn's _fit_context wrapper.
_USER_FRAME_FROM_RUN = 7


def divergence_error(where):
    """scikit-learn's error for a diverged solver (code written against scikit-learn
    matches its sentence), with where it happened and what to try."""
    return ValueError(
        "Solver produced non-finite parameter weights. The input data may contain large "
        "values and need to be preprocessed. The training loss diverged (became NaN or "
        f"infinite) {where}. Try a smaller learning_rate_init, or scale the inputs (for "
        "instance with StandardScaler)."
    )


def shuffled(sample_idx, random_state):
    """``sklearn.utils.shuffle(sample_idx, random_state=...)`` without its checks:
    the same draws from the same ``RandomState``, hence the same order."""
    permutation = np.arange(sample_idx.shape[0])
    random_state.shuffle(permutation)
    return sample_idx[permutation]


def fit_stochastic(estimator, model, X, y, sample_weight, incremental):
    """Train ``model`` (a network snapshot of ``estimator``) in place for
    ``max_iter`` epochs, or one with ``incremental`` (``partial_fit``), or until the
    convergence rule stops it; the estimator's fitted attributes follow."""
    optimizer = estimator.__dict__.get("_optimizer")
    n_params, dtype = model.layout.n_params, model.params.dtype
    if not incremental or optimizer is None or optimizer.problem(n_params, dtype):
        # Fresh state also where the weights were replaced by others of another
        # layout (the state described the old weights; persistence refuses a state
        # that does not fit, so only an assignment gets here).
        estimator._optimizer = OPTIMIZERS[estimator.solver].for_estimator(
            estimator, n_params, dtype
        )
    else:
        estimator._optimizer = optimizer.copy()
    # Lists the loop appends to are copied too (warm start / partial_fit), so that a
    # failed call leaves the previous ones as they were.
    estimator.loss_curve_ = list(getattr(estimator, "loss_curve_", None) or [])
    for name in ("validation_scores_", "validation_loss_curve_"):
        if getattr(estimator, name, None) is not None:
            setattr(estimator, name, list(getattr(estimator, name)))
    if estimator.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    validation = None
    if estimator.early_stopping:
        X, y, sample_weight, validation = ValidationSet.split(estimator, X, y, sample_weight)
    loop = EpochLoop(estimator, model, X, y, sample_weight, validation, incremental)
    # Small networks train on one BLAS thread (see fastbp._blas_threads).
    with one_thread_if_small(model.layout.layer_units, loop.batch_size):
        loop.run()
    if validation is not None:
        model.params[:] = estimator._best_params


def _batch_size(estimator, n_samples):
    if estimator.batch_size == "auto":
        return min(200, n_samples)
    if estimator.batch_size > n_samples:
        warn_as_sklearn_mlp(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
            UserWarning,
            stacklevel=_USER_FRAME_FROM_RUN + 1,  # from EpochLoop.__init__
        )
    return int(np.clip(estimator.batch_size, 1, n_samples))


class EpochLoop:
    """One call's epochs: the kernel's inputs, built once, and the loop over
    compiled calls."""

    def __init__(self, estimator, model, X, y, sample_weight, validation, incremental):
        self.estimator = estimator
        self.model = model
        self.validation = validation
        self.incremental = incremental
        self.optimizer = optimizer = estimator._optimizer
        self.callbacks = fit_callbacks(estimator)
        layout, net, dtype = model.layout, model.net, model.params.dtype
        self.n_samples = X.shape[0]
        self.batch_size = _batch_size(estimator, self.n_samples)
        self.with_dropout = bool((net.dropout_rates > 0).any())
        self.data, csr = kernel_data(X, y, sample_weight, dtype)
        check_training_data(self.data, csr, layout)
        self.work = workspace(layout, self.batch_size, dtype)
        self.settings = _kernels.Settings(
            model.loss_code,
            optimizer.solver_code,
            optimizer.nesterov,
            float(estimator.max_grad_norm or 0.0),
            optimizer.hyperparameters(estimator.alpha, dtype),
            estimator._loss_parameters(dtype),
        )
        # The common path (routed by fastbp._common_path) passes no RarePaths and runs
        # fastbp._common_epochs, generated from the full kernel with rare=None; every
        # other fit runs the full kernel, compiled on first use.
        self.rare = None
        if needs_rare_paths(net, csr is not None, True):
            self.rare = rare_paths(layout, self.batch_size, dtype, csr, self.with_dropout)
        # Short epochs run several to a compiled call (returning about every
        # SECONDS_PER_CALL) when nothing needs Python between them: no callback,
        # verbose line, logged epoch time or validation pass, and a step size that
        # changes only when the convergence rule fires (the kernel returns to Python
        # when it may).
        self.log_epochs = detail_wanted()
        self.several_per_call = (
            not self.callbacks.listening
            and not estimator.verbose
            and not self.log_epochs
            and validation is None
            and not incremental
            and not optimizer.rate_changes_every_epoch()
        )
        self.stopping = np.zeros(_kernel_codes.N_STOPPING, dtype=np.float64)
        self.loss_type = estimator._loss_type(dtype)
        # Where this call's bookkeeping starts: an interrupted call is recorded from
        # these, whatever part of its bookkeeping had run (see run).
        self.start_t, self.start_curve = estimator.t_, len(estimator.loss_curve_)

    def run(self):
        estimator = self.estimator
        sample_idx = np.arange(self.n_samples, dtype=np.intp)
        pending = []  # (epoch, loss, step) of epochs in the weights, maybe not recorded
        epochs_per_call = 1
        preparing = None  # the thread that prepares the prediction kernel
        try:
            estimator.n_iter_ = 0
            epoch = 0
            stop = False
            while not stop and epoch < estimator.max_iter:
                call_start = time.perf_counter()
                n_epochs = 1
                if self.several_per_call:
                    n_epochs = min(epochs_per_call, estimator.max_iter - epoch)
                self.callbacks.task_begins("epoch")
                n_run, finite, sample_idx = self._compiled_call(sample_idx, n_epochs)
                if epoch == 0 and not self.incremental:
                    from fastbp._warmup import prepare_prediction_while_training

                    preparing = prepare_prediction_while_training(self.model, self.data.X)
                # The weights now include these epochs: from here on, Ctrl-C must not
                # leave the counters behind them.
                pending = [
                    (epoch + i + 1, self.loss_type(self.loss_sums[i] / self.n_samples),
                     int(self.steps[i]))
                    for i in range(n_run)
                ]  # fmt: skip
                elapsed = time.perf_counter() - call_start
                epochs_per_call = int(
                    np.clip(
                        SECONDS_PER_CALL * n_run / max(elapsed, 1e-9),
                        1,
                        min(MAX_EPOCHS_PER_CALL, MAX_ORDER_ELEMENTS // self.n_samples),
                    )
                )
                epoch = pending[-1][0]
                stop = self._record_call(pending, finite, call_start)
                pending = []
            if preparing is not None:
                preparing.join()  # no thread outlives the fit (a fork could copy its locks)
        except KeyboardInterrupt:
            # The interrupt lands between compiled calls, so the weights are whole; the
            # epochs the kernel finished are counted, so n_iter_, t_, loss_curve_ and
            # the optimizer's step describe exactly the weights that are kept.
            for finished in pending:
                self._record_epoch(finished)
            warn_as_sklearn_mlp(
                "Training interrupted by user.", UserWarning, stacklevel=_USER_FRAME_FROM_RUN
            )

    def _compiled_call(self, sample_idx, n_epochs):
        """Run up to ``n_epochs`` epochs in the kernel, starting from the row order
        ``sample_idx``; returns the epochs run, whether they stayed finite, and the
        last row order. The random state ends as if only the epochs run were drawn."""
        estimator, optimizer = self.estimator, self.optimizer
        rng_state = estimator._random_state.get_state() if n_epochs > 1 else None
        orders, seeds = self._draw_epochs(sample_idx, n_epochs)
        self.loss_sums = np.empty(n_epochs, dtype=np.float64)
        self.steps = np.empty(n_epochs, dtype=np.int64)
        dtype = self.model.params.dtype
        self.settings = self.settings._replace(
            hyper=optimizer.hyperparameters(estimator.alpha, dtype)
        )
        stopping = self.stopping
        stopping[_kernel_codes.S_CHECK] = n_epochs > 1
        if n_epochs > 1:
            best_loss = estimator.best_loss_
            stopping[_kernel_codes.S_BEST_LOSS] = np.inf if best_loss is None else best_loss
            stopping[_kernel_codes.S_TOL] = estimator.tol
            stopping[_kernel_codes.S_N_ITER_NO_CHANGE] = estimator.n_iter_no_change
            stopping[_kernel_codes.S_NO_IMPROVEMENT_COUNT] = estimator._no_improvement_count
        n_run, finite = _kernels.run_epochs(
            self.data, self.model.net, self.work, self.rare, self.model.params,
            optimizer.state_arrays(), orders, self.batch_size, self.settings, optimizer.step,
            seeds, self.loss_sums, self.steps, stopping,
        )  # fmt: skip
        if n_run < n_epochs:
            estimator._random_state.set_state(rng_state)
            self._draw_epochs(orders[n_run - 1], n_run)
        return n_run, finite, orders[n_run - 1]

    def _draw_epochs(self, sample_idx, n_epochs):
        """The row orders and dropout seeds of the next ``n_epochs`` epochs, drawn
        from ``random_state`` in scikit-learn's order (an epoch's shuffle, then its
        dropout seed): ``orders`` has one row per epoch."""
        estimator = self.estimator
        orders = np.empty((n_epochs, sample_idx.shape[0]), dtype=np.intp)
        seeds = np.full(n_epochs, -1, dtype=np.int64)
        for e in range(n_epochs):
            if estimator.shuffle:
                sample_idx = shuffled(sample_idx, estimator._random_state)
            orders[e] = sample_idx
            # Dropout masks come from random_state too, but only when dropout is on:
            # without it, the draws (and so the model) are scikit-learn's.
            if self.with_dropout:
                seeds[e] = estimator._random_state.randint(2**31 - 1)
        return orders, seeds

    def _record_call(self, pending, finite, call_start):
        """Record the epochs of one compiled call; True when training stops."""
        estimator = self.estimator
        for i, finished in enumerate(pending):
            epoch = finished[0]
            last = i == len(pending) - 1
            if last and not finite:
                self.optimizer.epoch_ends(finished[2])
                del pending[i:]
                self.callbacks.task_ends()
                if self.validation is not None and estimator.validation_scores_:
                    # Keep the model usable: stop here and restore (fit_stochastic) the
                    # weights of the best validation score, which are finite.
                    warnings.warn(
                        f"The training loss diverged (became NaN or infinite) in epoch "
                        f"{epoch}; training stopped and the weights with the best "
                        "validation score were restored. Try a smaller "
                        "learning_rate_init, or scale the inputs.",
                        ConvergenceWarning,
                        stacklevel=_USER_FRAME_FROM_RUN + 1,
                    )
                    return True
                raise divergence_error(f"in epoch {epoch}")
            self._record_epoch(finished)
            if estimator.verbose:  # scikit-learn's line, for any truthy verbose
                print("Iteration %d, loss = %.8f" % (estimator.n_iter_, estimator.loss_))
            if self.log_epochs:  # one epoch per call then: the call's time is the epoch's
                LOGGER.debug(
                    "epoch %d: loss %.8f, %.3f s",
                    estimator.n_iter_,
                    estimator.loss_,
                    time.perf_counter() - call_start,
                )
            if self._end_of_epoch():
                if not last:
                    raise AssertionError(
                        "fastbp: the epoch kernel ran past the epoch where training stops"
                    )
                return True
        return False

    def _record_epoch(self, finished):
        """Count a finished epoch: assignments only, so running it twice (after an
        interrupt cut it short) gives the same state."""
        estimator = self.estimator
        epoch, loss, step = finished
        self.optimizer.epoch_ends(step)
        del estimator.loss_curve_[self.start_curve + epoch - 1 :]
        estimator.loss_curve_.append(loss)
        estimator.loss_ = loss
        estimator.t_ = self.start_t + epoch * self.n_samples
        estimator.n_iter_ = epoch

    def _end_of_epoch(self):
        """What follows a recorded epoch: the convergence rule, the schedule, the
        callbacks; returns True when training stops here."""
        estimator, optimizer, model = self.estimator, self.optimizer, self.model
        update_no_improvement_count(estimator, model, self.validation)
        optimizer.iteration_ends(estimator.t_)
        # evaluated only by a callback that asks for it
        if self.callbacks.task_ends(lambda: estimator._snapshot_attributes(model)):
            return True
        if estimator._no_improvement_count > estimator.n_iter_no_change:
            message = no_improvement_message(estimator, self.validation)
            if optimizer.trigger_stopping(message, estimator.verbose):
                return True
            estimator._no_improvement_count = 0
        if self.incremental:
            return True
        if estimator.n_iter_ == estimator.max_iter:
            warn_as_sklearn_mlp(
                "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                "optimization hasn't converged yet." % estimator.max_iter,
                ConvergenceWarning,
                stacklevel=_USER_FRAME_FROM_RUN + 2,
            )
        return False
