"""The machinery the two estimators share: validation, initialisation, the Python
epoch loop (verbose, early stopping, convergence, Ctrl-C, callbacks), L-BFGS, and the
prediction fast path. The public classes are in :mod:`fastbp.estimators`.
"""

import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.optimize
from sklearn.base import (
    BaseEstimator,
    _fit_context,
    is_classifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastbp import _fitted as fitted
from fastbp import _kernels
from fastbp._conversion import from_sklearn, to_sklearn

try:  # scikit-learn's callback API (experimental in 1.9): ProgressBar, ScoringMonitor
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover - older scikit-learn: the estimators work without

    class CallbackSupportMixin:
        pass


from fastbp._blas_threads import one_thread_if_small
from fastbp._lbfgs import full_batch_objective
from fastbp._losses import LOSSES, loss_parameters, loss_params_vector, output_loss
from fastbp._network import (
    NetworkLayout,
    check_input_shape,
    check_training_data,
    kernel_data,
    kernel_input,
    needs_rare_paths,
    rare_paths,
    read_only,
    workspace,
)
from fastbp._optimizers import OPTIMIZERS, _PlainState, per_hidden_layer

_STOCHASTIC_SOLVERS = tuple(OPTIMIZERS)


@contextmanager
def _unchanged_on_failure(estimator):
    """Restore the estimator's attributes if the block raises.

    Fitting never mutates an array it did not create in the same call (parameters,
    optimizer state and curves are copied first), so a shallow copy of the attribute
    dict is enough to undo a failed call.
    """
    saved_state = estimator.__dict__.copy()
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved_state)
        raise


# scikit-learn's sentence for a diverged solver, which code written against
# scikit-learn's MLP matches; fastbp adds where it happened and what to try.
_NON_FINITE_MESSAGE = (
    "Solver produced non-finite parameter weights. The input data may contain large "
    "values and need to be preprocessed."
)


def _divergence_error(where):
    return ValueError(
        f"{_NON_FINITE_MESSAGE} The training loss diverged (became NaN or infinite) "
        f"{where}. Try a smaller learning_rate_init, or scale the inputs (for instance "
        "with StandardScaler)."
    )


# Several short epochs run in one compiled call, returning to Python about this
# often (so Ctrl-C stays prompt), with at most so many epochs and row-order entries.
_SECONDS_PER_CALL = 0.01
_MAX_EPOCHS_PER_CALL = 1000
_MAX_ORDER_ELEMENTS = 1 << 22


def _shuffled(sample_idx, random_state):
    """``sklearn.utils.shuffle(sample_idx, random_state=...)`` without its checks:
    the same draws from the same ``RandomState``, hence the same order."""
    permutation = np.arange(sample_idx.shape[0])
    random_state.shuffle(permutation)
    return sample_idx[permutation]


class _BaseBackprop(CallbackSupportMixin, BaseEstimator, ABC):
    """Shared machinery of :class:`BackpropClassifier` and :class:`BackpropRegressor`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_kernels.ACTIVATION_CODES)), list, tuple],
        "solver": [StrOptions({"lbfgs", *OPTIMIZERS})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive", "cosine", "step"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left"), list, tuple],
        "max_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "lr_step_epochs": [Interval(Integral, 1, None, closed="left")],
        "lr_step_factor": [Interval(Real, 0, 1, closed="right")],
        "scoring": [None, str, callable],
    }

    @abstractmethod
    def __init__(
        self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
        learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol,
        verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
        validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun,
        dropout, max_grad_norm, lr_step_epochs, lr_step_factor, scoring, weight_decay,
    ):  # fmt: skip
        self.weight_decay = weight_decay
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.max_grad_norm = max_grad_norm
        self.lr_step_epochs = lr_step_epochs
        self.lr_step_factor = lr_step_factor
        self.scoring = scoring

    # ------------------------------------------------------------------ layout
    def _loss_name(self):
        """The loss the kernels use; it fixes the output activation."""
        if self.loss != "log_loss":
            return self.loss
        return "binary_log_loss" if self.out_activation_ == "logistic" else "log_loss"

    def _hidden_activations(self, n_layers):
        """Activation names, one per layer (edges unused), checked."""
        activations = per_hidden_layer(self.activation, n_layers, "identity")
        for name in activations[1:-1]:
            if name not in _kernels.ACTIVATION_CODES:
                raise ValueError(
                    f"Unknown activation {name!r} in the activation list; choose from "
                    f"{sorted(_kernels.ACTIVATION_CODES)}."
                )
        return activations

    def _dropout_rates(self, n_layers):
        """Dropout rates, one per layer (edges 0), checked."""
        rates = per_hidden_layer(self.dropout, n_layers, 0.0)
        for rate in rates[1:-1]:
            if not (isinstance(rate, Real) and 0 <= rate < 1):
                raise ValueError(f"Dropout rates must lie in [0, 1); got {rate!r}.")
        return rates

    def _snapshot(self, layout, params, rates=None):
        """A fitted-network snapshot over ``params`` with this estimator's options."""
        activations = self._hidden_activations(layout.n_layers)
        codes = [_kernels.ACTIVATION_CODES[name] for name in activations]
        if rates is None:
            rates = self._dropout_rates(layout.n_layers)
        return fitted.build(
            layout,
            params,
            codes,
            rates,
            _kernels.LOSS_CODES[self._loss_name()],
            self._decoding(int(layout.layer_units[-1])),
        )

    def _fitted_network(self):
        """The snapshot predictions use (see :mod:`fastbp._fitted`); rebuilt and
        checked when a user replaced ``coefs_`` or ``intercepts_``."""
        if "coefs_" not in self.__dict__:
            check_is_fitted(self)  # raises NotFittedError
        return fitted.current(self, self._network_from_arrays)

    def _network_from_arrays(self, coefs, intercepts):
        """A checked snapshot of user-supplied weights (ValueError if they do not fit)."""
        n_features = self.__dict__.get("n_features_in_")
        if n_features is None:
            n_features = np.shape(coefs[0])[0] if len(coefs) else 0
        units, coefs, intercepts = fitted.checked_layer_units(coefs, intercepts, n_features)
        dtype = np.result_type(*coefs, *intercepts)
        layout = NetworkLayout(units)
        params = layout.pack(coefs, intercepts, dtype)
        # Prediction never drops units: dropout rates do not matter here.
        return self._snapshot(layout, params, rates=np.zeros(layout.n_layers))

    def _loss_parameters(self, dtype):
        """The ``loss_params`` vector of the kernels (``P_*`` layout)."""
        return loss_params_vector(loss_parameters(self), dtype)

    def _loss_type(self, dtype):
        """The numpy scalar type of ``loss_`` and ``loss_curve_``: scikit-learn's
        (float64 for classifiers; the training dtype for regressors, whose loss
        arithmetic stays in it)."""
        return np.float64 if is_classifier(self) else np.dtype(dtype).type

    def _set_weights(self, coefs, intercepts):
        """Adopt the given weights (checked) as the fitted network."""
        fitted.publish(self, self._network_from_arrays(list(coefs), list(intercepts)))

    def __getstate__(self):
        # Persist plain values and arrays only (see SKOPS_TRUSTED_TYPES): the layout
        # is derived from coefs_, and the optimizer travels as a dict.
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        state.pop("_model", None)
        if "_optimizer" in state:
            state["_optimizer"] = state["_optimizer"].to_state()
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("_optimizer"), dict):
            state["_optimizer"] = _PlainState.from_state(state["_optimizer"])
        super().__setstate__(state)
        # coefs_/intercepts_ come back as separate arrays: pack them into one flat
        # buffer again (checking their shapes), so the loaded model predicts at once.
        if "coefs_" in state and "intercepts_" in state:
            self._fitted_network()

    # ----------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False):
        with _unchanged_on_failure(self):
            return self._fit_unguarded(X, y, sample_weight, incremental)

    def _fit_unguarded(self, X, y, sample_weight, incremental):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        for size in hidden_layer_sizes:
            # bool is an Integral, but True units is a typo, not a size.
            if not isinstance(size, Integral) or isinstance(size, (bool, np.bool_)):
                raise TypeError(
                    "hidden_layer_sizes must hold integers (units per hidden layer); got "
                    f"{self.hidden_layer_sizes!r}."
                )
        hidden_layer_sizes = [int(size) for size in hidden_layer_sizes]
        if any(size <= 0 for size in hidden_layer_sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        if self.scoring is not None and self.scoring != "loss":
            check_scoring(self, scoring=self.scoring)  # an unknown name fails here

        n_layers = len(hidden_layer_sizes) + 2
        self._hidden_activations(n_layers)
        dropout_rates = self._dropout_rates(n_layers)
        if self.solver == "lbfgs" and any(rate > 0 for rate in dropout_rates):
            raise ValueError(
                "dropout needs a stochastic solver ('sgd' or 'adam'): L-BFGS needs the "
                "same objective at every evaluation."
            )
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y, class_sample_weight = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if class_sample_weight is not None:
            sample_weight = (
                class_sample_weight
                if sample_weight is None
                else sample_weight * class_sample_weight
            )
        if sample_weight is not None and not sample_weight.sum() > 0:
            raise ValueError("Sample weights must sum to a positive value.")

        previous = None if first_pass else self._fitted_network()
        dtype = X.dtype if first_pass else previous.dtype
        if X.dtype != dtype:
            X = X.astype(dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if y.dtype.kind != "f" and not is_classifier(self):
            y = y.astype(np.float64)  # a non-numeric target fails here, clearly
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)

        layer_units = [X.shape[1]] + hidden_layer_sizes + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        # Training works on a network of its own; predictions (from other threads,
        # too) keep using the published one until training ends and publishes it.
        if first_pass:
            model = self._initialize(y, layer_units, dtype)
        else:
            existing = previous.layout.layer_units.tolist()
            if existing != layer_units:
                raise ValueError(
                    f"The network has layer sizes {existing}, but this call needs "
                    f"{layer_units} (features, hidden_layer_sizes, outputs). Set "
                    "warm_start=False or fit a new estimator to change the architecture."
                )
            model = self._snapshot(previous.layout, previous.params.copy())
        self.n_outputs_ = y.shape[1]

        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(model, X, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(model, X, y, sample_weight)

        if not np.isfinite(model.params).all():
            raise _divergence_error("at the end of training")
        fitted.publish(self, model)
        return self

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = LOSSES[self.loss].output_activation
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        layout = NetworkLayout(layer_units)
        activations = self._hidden_activations(len(layer_units))
        model = self._snapshot(layout, layout.initialize(self._random_state, activations, dtype))
        self._best_params = model.params.copy()
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.validation_loss_curve_ = [] if self.early_stopping else None
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        return model

    def _make_optimizer(self, n_params, dtype):
        return OPTIMIZERS[self.solver].for_estimator(self, n_params, dtype)

    def _fit_stochastic(self, model, X, y, sample_weight, incremental):
        layout, params = model.layout, model.params
        dtype = params.dtype
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(layout.n_params, dtype)
        else:
            self._optimizer = self._optimizer.copy()
        # Lists the loop appends to are copied too (warm start / partial_fit), so that
        # a failed call leaves the previous ones as they were.
        self.loss_curve_ = list(getattr(self, "loss_curve_", None) or [])
        for name in ("validation_scores_", "validation_loss_curve_"):
            if getattr(self, name, None) is not None:
                setattr(self, name, list(getattr(self, name)))

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            X_train, y_train, sample_weight_train, validation = self._validation_split(
                X, y, sample_weight
            )
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            validation = None

        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped",
                    stacklevel=6,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        net = model.net
        with_dropout = bool((net.dropout_rates > 0).any())
        data, csr = kernel_data(X_train, y_train, sample_weight_train, dtype)
        check_training_data(data, csr, layout)
        work = workspace(layout, batch_size, dtype)
        # The common path (dense, no dropout, common activations) passes no RarePaths
        # and runs the kernel compiled without that code.
        rare = None
        if needs_rare_paths(net, csr is not None, training=True):
            rare = rare_paths(layout, batch_size, dtype, csr, with_dropout)
        settings = _kernels.Settings(
            model.loss_code,
            self._optimizer.solver_code,
            bool(self.solver == "sgd" and self.nesterovs_momentum),
            float(self.max_grad_norm or 0.0),
            self._optimizer.hyperparameters(self.alpha, dtype),
            self._loss_parameters(dtype),
        )
        sample_idx = np.arange(n_samples, dtype=np.intp)
        callback_ctx = self.__dict__.get("_callback_fit_ctx")
        callback_data = self.__dict__.get("_callback_data")
        # A meta-estimator (a search, a pipeline) opens a context even when no callback
        # listens: then the per-epoch tasks would only cost time.
        if callback_ctx is not None and not getattr(callback_ctx, "_callbacks", True):
            callback_ctx = None
        optimizer = self._optimizer
        # Short epochs run several to a compiled call (returning about every
        # _SECONDS_PER_CALL) when nothing needs Python between them: no callback,
        # verbose line or validation pass, and a step size that changes only when
        # the convergence rule fires (the kernel returns to Python when it may).
        several_per_call = (
            callback_ctx is None
            and not self.verbose
            and validation is None
            and not incremental
            and not optimizer.rate_changes_every_epoch()
        )
        epochs_per_call = 1
        stopping = np.zeros(_kernels.N_STOPPING, dtype=np.float64)
        # Where this call's bookkeeping starts: an interrupted call is recorded from
        # these, whatever part of its bookkeeping had run (see below).
        start_t, start_curve = self.t_, len(self.loss_curve_)
        pending = []  # (epoch, loss, step) of epochs in the weights, maybe not recorded
        loss_type = self._loss_type(dtype)

        # Small networks train on one BLAS thread (see fastbp._blas_threads).
        with one_thread_if_small(layout.layer_units, batch_size):
            try:
                self.n_iter_ = 0
                epoch = 0
                stop = False
                while not stop and epoch < self.max_iter:
                    call_start = time.perf_counter()
                    n_epochs = (
                        min(epochs_per_call, self.max_iter - epoch) if several_per_call else 1
                    )
                    rng_state = self._random_state.get_state() if n_epochs > 1 else None
                    orders, seeds = self._draw_epochs(sample_idx, n_epochs, with_dropout)
                    loss_sums = np.empty(n_epochs, dtype=np.float64)
                    steps = np.empty(n_epochs, dtype=np.int64)
                    epoch_ctx = None
                    if callback_ctx is not None:
                        epoch_ctx = callback_ctx.subcontext(task_name="epoch")
                        epoch_ctx.call_on_fit_task_begin(estimator=self, **callback_data)
                    settings = settings._replace(hyper=optimizer.hyperparameters(self.alpha, dtype))
                    stopping[_kernels.S_CHECK] = n_epochs > 1
                    if n_epochs > 1:
                        stopping[_kernels.S_BEST_LOSS] = (
                            np.inf if self.best_loss_ is None else self.best_loss_
                        )
                        stopping[_kernels.S_TOL] = self.tol
                        stopping[_kernels.S_N_ITER_NO_CHANGE] = self.n_iter_no_change
                        stopping[_kernels.S_NO_IMPROVEMENT_COUNT] = self._no_improvement_count
                    n_run, finite = _kernels.run_epochs(
                        data, net, work, rare, params, optimizer.state_arrays(), orders,
                        batch_size, settings, optimizer.step, seeds, loss_sums, steps, stopping,
                    )  # fmt: skip
                    # The weights now include these epochs: from here on, Ctrl-C must not
                    # leave the counters behind them.
                    pending = [
                        (epoch + i + 1, loss_type(loss_sums[i] / n_samples), int(steps[i]))
                        for i in range(n_run)
                    ]
                    sample_idx = orders[n_run - 1]
                    if n_run < n_epochs:  # the random state as if only n_run were drawn
                        self._random_state.set_state(rng_state)
                        self._draw_epochs(sample_idx, n_run, with_dropout)
                    elapsed = time.perf_counter() - call_start
                    epochs_per_call = int(
                        np.clip(
                            _SECONDS_PER_CALL * n_run / max(elapsed, 1e-9),
                            1,
                            min(_MAX_EPOCHS_PER_CALL, _MAX_ORDER_ELEMENTS // n_samples),
                        )
                    )

                    for i, finished in enumerate(pending):
                        epoch = finished[0]
                        last = i == n_run - 1
                        if last and not finite:
                            optimizer.epoch_ends(finished[2])
                            pending = pending[:-1]
                            if epoch_ctx is not None:
                                epoch_ctx.call_on_fit_task_end(estimator=self, **callback_data)
                            if early_stopping and self.validation_scores_:
                                # Keep the model usable: stop here and restore (below) the
                                # weights of the best validation score, which are finite.
                                warnings.warn(
                                    f"The training loss diverged (became NaN or infinite) in "
                                    f"epoch {epoch}; training stopped and the weights with the "
                                    f"best validation score were restored. Try a smaller "
                                    "learning_rate_init, or scale the inputs.",
                                    ConvergenceWarning,
                                    stacklevel=6,
                                )
                                stop = True
                                break
                            raise _divergence_error(f"in epoch {epoch}")
                        self._record_epoch(finished, start_t, start_curve, n_samples, optimizer)
                        if self.verbose >= 2:  # scikit-learn's line, and the epoch's time
                            print(
                                "Iteration %d, loss = %.8f (%.3f s)"
                                % (self.n_iter_, self.loss_, time.perf_counter() - call_start)
                            )
                        elif self.verbose:
                            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                        stop = self._end_of_epoch(
                            model, validation, optimizer, epoch_ctx, callback_data, incremental
                        )
                        if stop and not last:
                            raise AssertionError(
                                "fastbp: the epoch kernel ran past the epoch where training stops"
                            )
                    pending = []
            except KeyboardInterrupt:
                # The interrupt lands between compiled calls, so the weights are whole;
                # the epochs the kernel finished are counted, so n_iter_, t_, loss_curve_
                # and the optimizer's step describe exactly the weights that are kept.
                for finished in pending:
                    self._record_epoch(finished, start_t, start_curve, n_samples, optimizer)
                warnings.warn("Training interrupted by user.", stacklevel=6)

        if early_stopping:
            params[:] = self._best_params

    def _draw_epochs(self, sample_idx, n_epochs, with_dropout):
        """The row orders and dropout seeds of the next ``n_epochs`` epochs, drawn
        from ``random_state`` in scikit-learn's order (an epoch's shuffle, then its
        dropout seed): ``orders`` has one row per epoch."""
        orders = np.empty((n_epochs, sample_idx.shape[0]), dtype=np.intp)
        seeds = np.full(n_epochs, -1, dtype=np.int64)
        for e in range(n_epochs):
            if self.shuffle:
                sample_idx = _shuffled(sample_idx, self._random_state)
            orders[e] = sample_idx
            # Dropout masks come from random_state too, but only when dropout is on:
            # without it, the draws (and so the model) are scikit-learn's.
            if with_dropout:
                seeds[e] = self._random_state.randint(2**31 - 1)
        return orders, seeds

    def _end_of_epoch(self, model, validation, optimizer, epoch_ctx, callback_data,
                      incremental):  # fmt: skip
        """What follows a recorded epoch: the convergence rule, the schedule, the
        callbacks; returns True when training stops here."""
        self._update_no_improvement_count(model, validation)
        optimizer.iteration_ends(self.t_)
        if epoch_ctx is not None:
            stop_requested = epoch_ctx.call_on_fit_task_end(
                estimator=self,
                # evaluated only by a callback that asks for it
                reconstruction_attributes=lambda: self._snapshot_attributes(model),
                **callback_data,
            )
            if stop_requested:
                return True
        if self._no_improvement_count > self.n_iter_no_change:
            if validation is not None:
                msg = (
                    "Validation score did not improve more than "
                    "tol=%f for %d consecutive epochs." % (self.tol, self.n_iter_no_change)
                )
            else:
                msg = (
                    "Training loss did not improve more than tol=%f"
                    " for %d consecutive epochs." % (self.tol, self.n_iter_no_change)
                )
            if optimizer.trigger_stopping(msg, self.verbose):
                return True
            self._no_improvement_count = 0
        if incremental:
            return True
        if self.n_iter_ == self.max_iter:
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) "
                "reached and the optimization hasn't converged yet." % self.max_iter,
                ConvergenceWarning,
                stacklevel=7,
            )
        return False

    def _record_epoch(self, finished, start_t, start_curve, n_samples, optimizer):
        """Count a finished epoch: assignments only, so running it twice (after an
        interrupt cut it short) gives the same state."""
        epoch, loss, step = finished
        optimizer.epoch_ends(step)
        del self.loss_curve_[start_curve + epoch - 1 :]
        self.loss_curve_.append(loss)
        self.loss_ = loss
        self.t_ = start_t + epoch * n_samples
        self.n_iter_ = epoch

    def _validation_split(self, X, y, sample_weight):
        """Hold out the validation set exactly as scikit-learn does (stratified for
        binary problems only); returns the training part and the monitor."""
        should_stratify = is_classifier(self) and self.n_outputs_ == 1
        stratify = y if should_stratify else None
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        split = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        X_train, X_val, y_train, y_val = split[:4]
        sample_weight_train, sample_weight_val = (
            (None, None) if sample_weight is None else split[4:]
        )
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        if sample_weight_val is not None and not sample_weight_val.sum() > 0:
            raise ValueError(
                "Sample weights must contain at least one non-zero number: the "
                "validation part held out by the early-stopping split has zero total weight. "
                "Change validation_fraction or random_state, or give those samples weight."
            )
        if sample_weight_train is not None and not sample_weight_train.sum() > 0:
            raise ValueError(
                "Sample weights must contain at least one non-zero number: the training "
                "part left after the early-stopping split has zero total weight."
            )
        y_val_encoded = y_val
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        validation = self._validation_monitor(X_val, y_val, y_val_encoded, sample_weight_val)
        return X_train, y_train, sample_weight_train, validation

    def _validation_monitor(self, X_val, y_val, y_val_encoded, sample_weight_val):
        """What early stopping needs each epoch: the held-out data (with its targets
        encoded as the output layer sees them) and its scorer."""
        scorer = None
        if self.scoring is not None and self.scoring != "loss":
            scorer = check_scoring(self, scoring=self.scoring)
        return {
            "X": X_val,
            "y": y_val,
            "sample_weight": sample_weight_val,
            "y_encoded": np.asarray(y_val_encoded, dtype=np.float64),
            "scorer": scorer,
        }

    def _update_no_improvement_count(self, model, validation):
        if validation is not None:
            X_val, y_val = validation["X"], validation["y"]
            sample_weight_val = validation["sample_weight"]
            # One forward pass gives both the validation loss and the default score.
            outputs = self._forward_pass_fast(X_val, model, check_input=False)
            val_loss = output_loss(
                outputs, validation["y_encoded"], sample_weight_val, self._loss_name(),
                loss_parameters(self),
            )  # fmt: skip
            self.validation_loss_curve_.append(val_loss)
            if self.scoring == "loss":
                val_score = -val_loss  # higher is better, like every score here
            elif validation["scorer"] is not None:
                weights = {} if sample_weight_val is None else {"sample_weight": sample_weight_val}
                val_score = validation["scorer"](self._trainee(model), X_val, y_val, **weights)
            elif not np.isfinite(outputs).all():
                val_score = np.nan
            else:
                y_pred = self._decode(outputs, model)
                val_score = self._score_function(y_val, y_pred, sample_weight=sample_weight_val)
            self.validation_scores_.append(val_score)
            if self.verbose >= 2:
                print(
                    "Validation score: %f (validation loss %.8f)"
                    % (self.validation_scores_[-1], val_loss)
                )
            elif self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_params = model.params.copy()
        else:
            if self.best_loss_ is None:  # a warm start after fits with early stopping
                self.best_loss_ = np.inf
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _trainee(self, model):
        """This estimator as it stands mid-training, with ``model`` as its fitted
        network: what a scorer evaluates during early stopping. A shallow copy, so the
        published model stays the one other threads predict with."""
        trainee = object.__new__(type(self))
        trainee.__dict__.update(self.__dict__)
        fitted.publish(trainee, model)
        return trainee

    def _snapshot_attributes(self, model):
        """Fitted attributes at this epoch, for callbacks that evaluate the model
        (scikit-learn's reconstruction_attributes)."""
        return {
            "coefs_": [c.copy() for c in model.coefs],
            "intercepts_": [b.copy() for b in model.intercepts],
            "_model": None,  # the copy builds its own network from the arrays above
        }

    def _fit_lbfgs(self, model, X, y, sample_weight):
        layout, params = model.layout, model.params
        activations = self._hidden_activations(layout.n_layers)
        objective = full_batch_objective(
            layout, X, y, sample_weight, activations[1:-1], self._loss_name(), self.alpha,
            loss_parameters=loss_parameters(self),
        )  # fmt: skip

        def loss_and_gradient(packed):
            params[:] = packed
            loss, gradient = objective(params)
            return loss, gradient.astype(np.float64)

        callback = None
        callback_ctx = self.__dict__.get("_callback_fit_ctx")
        callback_data = self.__dict__.get("_callback_data")
        # scikit-learn prints nothing per L-BFGS iteration (scipy >= 1.15 dropped
        # iprint): so does verbose=1; verbose >= 2 prints each iteration's loss.
        if self.verbose >= 2 or callback_ctx is not None:
            iteration = [0]

            def callback(intermediate_result):
                iteration[0] += 1
                if self.verbose >= 2:
                    print("Iteration %d, loss = %.8f" % (iteration[0], intermediate_result.fun))
                if callback_ctx is not None:
                    params[:] = intermediate_result.x  # the next evaluation resets it
                    step_ctx = callback_ctx.subcontext(task_name="lbfgs-iter")
                    step_ctx.call_on_fit_task_begin(estimator=self, **callback_data)
                    if step_ctx.call_on_fit_task_end(
                        estimator=self,
                        reconstruction_attributes=self._snapshot_attributes(model),
                        **callback_data,
                    ):
                        raise StopIteration  # a callback asked to stop

        result = scipy.optimize.minimize(
            loss_and_gradient,
            params.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            callback=callback,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
        )
        if not np.isfinite(result.fun):
            raise _divergence_error(f"in L-BFGS iteration {result.nit}")
        if result.status != 0:
            message = result.message
            if isinstance(message, bytes):
                message = message.decode("latin1")
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}):\n{message}\n\nIncrease the number of "
                f"iterations to improve the convergence (max_iter={self.max_iter}).\n"
                "You might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html",
                ConvergenceWarning,
                stacklevel=6,
            )
        self.n_iter_ = min(result.nit, self.max_iter)
        self.loss_ = self._loss_type(params.dtype)(result.fun)
        params[:] = result.x

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The input data. float32 data trains in float32; anything else in float64.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        callback_ctx = self._begin_callbacks(X, y, sample_weight)
        try:
            self._fit(X, y, sample_weight=sample_weight, incremental=False)
            if callback_ctx is not None:
                callback_ctx.call_on_fit_task_end(
                    estimator=self, reconstruction_attributes={}, **self._callback_data
                )
        finally:
            self.__dict__.pop("_callback_data", None)
        return self

    def _begin_callbacks(self, X, y, sample_weight):
        """Open scikit-learn's callback context when callbacks are set on this
        estimator (or propagated from a meta-estimator): one task per fit, one
        subtask per epoch (or L-BFGS iteration)."""
        if "_skl_callbacks" not in self.__dict__ and "_parent_callback_ctx" not in self.__dict__:
            return None
        max_subtasks = self.max_iter if self.solver in _STOCHASTIC_SOLVERS else None
        callback_ctx = self._init_callback_context(max_subtasks=max_subtasks)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        self._callback_data = {"X": X, "y": y, "metadata": metadata}
        callback_ctx.call_on_fit_task_begin(estimator=self, **self._callback_data)
        return callback_ctx

    def to_sklearn(self):
        """Return the scikit-learn MLP with this model's weights, fitted.

        The result predicts exactly as this estimator does, and can go wherever a
        scikit-learn ``MLPClassifier``/``MLPRegressor`` is expected. ONNX export does
        not need it: skl2onnx takes fastbp's estimators directly (see
        :mod:`fastbp.onnx`). Needs activations scikit-learn has ('identity',
        'logistic', 'tanh', 'relu'), one for all layers.

        Returns
        -------
        model : MLPClassifier or MLPRegressor
        """
        return to_sklearn(self)

    @classmethod
    def from_sklearn(cls, model):
        """Import a fitted scikit-learn MLP, to predict (faster) with no retraining.

        Parameters
        ----------
        model : MLPClassifier or MLPRegressor
            Fitted; the classifier for :class:`BackpropClassifier`, the regressor for
            :class:`BackpropRegressor`.

        Returns
        -------
        estimator : BackpropClassifier or BackpropRegressor
            The fitted fastbp estimator, with the same parameters and weights.
            ``partial_fit`` and ``warm_start`` continue from the weights with fresh
            optimizer state.
        """
        return from_sklearn(cls, model)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    # -------------------------------------------------------------- prediction
    def _is_plain_input(self, X, model):
        """True for a 2-D, C-contiguous array of the model's dtype and width, fitted
        without feature names: then validation reduces to the finiteness check that
        the prediction kernel does as it reads X (the fast path of single-row
        predictions, where scikit-learn's validation would cost 20 times the work)."""
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype == model.params.dtype
            and X.flags.c_contiguous
            and X.shape[0] > 0
            and X.shape[1] == model.n_features
            and self.__dict__.get("feature_names_in_") is None
        )

    def _forward_pass_fast(self, X, model, check_input=True):
        """Output-layer activations of ``model`` (a fitted-network snapshot, the only
        source of shapes and weights here) for the rows of X."""
        dtype = model.params.dtype
        fast_path = check_input and self._is_plain_input(X, model)
        if check_input and not fast_path:
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], reset=False, dtype=(np.float64, np.float32)
            )
        if fast_path:
            X_kernel, csr, is_sparse = read_only(X), None, False
        else:
            X_kernel, csr, is_sparse = kernel_input(X, dtype)
        n_samples = X.shape[0]
        # The kernel trusts every shape it indexes with: check them against the
        # snapshot (a model refitted meanwhile may expect another width).
        check_input_shape(
            X_kernel, csr, is_sparse, n_samples, model.n_features, type(self).__name__
        )
        rare = None  # the common kernel: dense input, common activations
        if is_sparse or model.rare_activations:
            # Scratch per call (not per model): threads predict concurrently.
            chunk = min(n_samples, 1024)  # predict_forward's chunk
            rare = rare_paths(model.layout, chunk, dtype, csr, with_dropout=False)
        out = np.empty((n_samples, model.n_outputs), dtype=dtype)
        inputs_finite, outputs_finite = _kernels.predict_forward(
            X_kernel, rare, *model.predict_arguments, out
        )
        if not inputs_finite:
            # Only the fast path gets here; full validation raises scikit-learn's error.
            validate_data(self, X, reset=False)
        if check_input and not outputs_finite:
            # Finite inputs can still overflow the network (say, features in the
            # 1e300s): refuse rather than hand back NaN or infinite predictions.
            raise ValueError(
                "The network's output overflowed (is not finite) for some rows of X: "
                "their values are far larger than the model was trained on. Scale X "
                "the way the training data was scaled."
            )
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC, multiplied in place by the first layer
        tags.target_tags.multi_output = True
        return tags
