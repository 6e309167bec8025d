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
from sklearn.utils.validation import _check_sample_weight, validate_data

from fastbp import _kernels
from fastbp._conversion import from_sklearn, to_sklearn

try:  # scikit-learn's callback API (experimental in 1.9): ProgressBar, ScoringMonitor
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # pragma: no cover - older scikit-learn: the estimators work without

    class CallbackSupportMixin:
        pass


from fastbp._losses import output_loss
from fastbp._network import (
    NetworkLayout,
    Workspace,
    empty_csr,
    kernel_input,
    network_tuple,
    read_only,
)
from fastbp._optimizers import (
    AdamOptimizer,
    FullBatchObjective,
    SGDOptimizer,
    _PlainState,
    per_hidden_layer,
)

_STOCHASTIC_SOLVERS = ("sgd", "adam")

# Rows per chunk for the full-batch (L-BFGS) gradient: bounds its workspace to
# about this many values per layer unit, whatever the data size.
_LBFGS_CHUNK_VALUES = 1 << 21


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
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
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
        dropout, max_grad_norm, lr_step_epochs, lr_step_factor, scoring,
    ):  # fmt: skip
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

    def _hidden_settings(self, n_layers):
        """Activation names and dropout rates, one per layer (edges unused), checked."""
        activations = per_hidden_layer(self.activation, n_layers, "identity")
        for name in activations[1:-1]:
            if name not in _kernels.ACTIVATION_CODES:
                raise ValueError(
                    f"Unknown activation {name!r} in the activation list; choose from "
                    f"{sorted(_kernels.ACTIVATION_CODES)}."
                )
        rates = per_hidden_layer(self.dropout, n_layers, 0.0)
        for rate in rates[1:-1]:
            if not (isinstance(rate, Real) and 0 <= rate < 1):
                raise ValueError(f"Dropout rates must lie in [0, 1); got {rate!r}.")
        return activations, rates

    def _adopt_params(self, layout, params):
        """Make ``params`` the model's buffer; coefs_ and intercepts_ become views.
        The network description the kernels take is built here once, not per call."""
        self._layout = layout
        self._params = params
        self.coefs_, self.intercepts_ = layout.views(params)
        activations, rates = self._hidden_settings(layout.n_layers)
        codes = [_kernels.ACTIVATION_CODES[name] for name in activations]
        self._net = network_tuple(layout, codes, rates)
        self._loss_code = _kernels.LOSS_CODES[self._loss_name()]

    def _packed_params(self):
        """The flat parameter vector behind coefs_ and intercepts_.

        If a user replaced an entry of ``coefs_``/``intercepts_`` (for instance to load
        weights), the lists no longer view our buffer: pack them again.
        """
        params = self.__dict__.get("_params")
        if params is not None:
            # a plain loop: this runs on every prediction, single rows included
            for array in self.coefs_:
                if array.base is not params:
                    break
            else:
                for array in self.intercepts_:
                    if array.base is not params:
                        break
                else:
                    return params
        arrays = self.coefs_ + self.intercepts_
        dtype = np.result_type(*arrays)
        if dtype not in (np.float32, np.float64):
            dtype = np.float64
        layout = NetworkLayout([self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_])
        self._adopt_params(layout, layout.pack(self.coefs_, self.intercepts_, dtype))
        return self._params

    def __getstate__(self):
        # Persist plain values and arrays only (see SKOPS_TRUSTED_TYPES): the layout
        # is derived from coefs_, and the optimizer travels as a dict.
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        state.pop("_layout", None)
        state.pop("_params", None)
        state.pop("_net", None)
        if "_optimizer" in state:
            state["_optimizer"] = state["_optimizer"].to_state()
        return state

    def __setstate__(self, state):
        state = dict(state)
        if isinstance(state.get("_optimizer"), dict):
            state["_optimizer"] = _PlainState.from_state(state["_optimizer"])
        super().__setstate__(state)
        # coefs_/intercepts_ come back as separate arrays: pack them into one flat
        # buffer again, so the loaded model predicts without repacking.
        if "coefs_" in state and "intercepts_" in state:
            self._params = None
            self._packed_params()

    # ----------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False):
        with _unchanged_on_failure(self):
            return self._fit_unguarded(X, y, sample_weight, incremental)

    def _fit_unguarded(self, X, y, sample_weight, incremental):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")

        n_layers = len(hidden_layer_sizes) + 2
        _, dropout_rates = self._hidden_settings(n_layers)
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

        dtype = X.dtype if first_pass else self._packed_params().dtype
        if X.dtype != dtype:
            X = X.astype(dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=dtype)

        layer_units = [X.shape[1]] + hidden_layer_sizes + [y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, dtype)
        else:
            existing = [self.coefs_[0].shape[0]] + [c.shape[1] for c in self.coefs_]
            if existing != layer_units:
                raise ValueError(
                    f"The network has layer sizes {existing}, but this call needs "
                    f"{layer_units} (features, hidden_layer_sizes, outputs). Set "
                    "warm_start=False or fit a new estimator to change the architecture."
                )
            # Train on a private copy, so that a failed call changes nothing.
            layout = NetworkLayout(layer_units)
            self._adopt_params(layout, layout.pack(self.coefs_, self.intercepts_, dtype))
        self.n_outputs_ = y.shape[1]

        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(X, y, sample_weight)

        if not np.isfinite(self._params).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"

        layout = NetworkLayout(layer_units)
        activations, _ = self._hidden_settings(len(layer_units))
        self._adopt_params(layout, layout.initialize(self._random_state, activations, dtype))
        self._best_params = self._params.copy()
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

    def _make_optimizer(self, n_params, dtype):
        schedule = dict(
            lr_schedule=self.learning_rate, max_iter=self.max_iter,
            step_epochs=self.lr_step_epochs, step_factor=self.lr_step_factor,
        )  # fmt: skip
        if self.solver == "sgd":
            return SGDOptimizer(
                n_params, dtype, self.learning_rate_init, momentum=self.momentum,
                nesterov=self.nesterovs_momentum, power_t=self.power_t, **schedule,
            )  # fmt: skip
        return AdamOptimizer(
            n_params, dtype, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon,
            **schedule,
        )  # fmt: skip

    def _fit_stochastic(self, X, y, sample_weight, incremental):
        layout, params = self._layout, self._params
        dtype = params.dtype
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer(layout.n_params, dtype)
        else:
            self._optimizer = self._optimizer.copy()
        # Lists the loop appends to are copied too (warm start / partial_fit).
        self.loss_curve_ = list(getattr(self, "loss_curve_", None) or [])
        if getattr(self, "validation_scores_", None) is not None:
            self.validation_scores_ = list(self.validation_scores_)

        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # Stratify only binary problems, exactly as scikit-learn does.
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
            y_val_encoded = y_val
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            validation = self._validation_monitor(X_val, y_val, y_val_encoded, sample_weight_val)
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

        net = self._net
        with_dropout = bool((net[4] > 0).any())
        workspace = Workspace(layout, batch_size, dtype, with_dropout)
        work = workspace.work
        use_weights = sample_weight_train is not None
        X_kernel, csr, is_sparse = kernel_input(X_train, dtype)
        y_kernel = read_only(np.ascontiguousarray(y_train, dtype=dtype))
        sw_kernel = read_only(
            np.ascontiguousarray(sample_weight_train, dtype=dtype)
            if use_weights
            else np.ones(0, dtype=dtype)
        )
        loss_code = _kernels.LOSS_CODES[self._loss_name()]
        huber_delta = float(getattr(self, "huber_delta", 1.0))
        max_grad_norm = float(self.max_grad_norm or 0.0)
        sample_idx = np.arange(n_samples, dtype=np.intp)
        callback_ctx = self.__dict__.get("_callback_fit_ctx")
        callback_data = self.__dict__.get("_callback_data")
        optimizer = self._optimizer
        nesterov = bool(self.solver == "sgd" and self.nesterovs_momentum)

        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                epoch_start = time.perf_counter()
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, self._random_state)
                # Dropout masks come from random_state too, but only when dropout is
                # on: without it, the draws (and so the model) are scikit-learn's.
                dropout_seed = self._random_state.randint(2**31 - 1) if with_dropout else -1
                epoch_ctx = None
                if callback_ctx is not None:
                    epoch_ctx = callback_ctx.subcontext(task_name="epoch")
                    epoch_ctx.call_on_fit_task_begin(estimator=self, **callback_data)
                state_1, state_2 = optimizer.state_arrays()
                loss_sum, finite, step = _kernels.run_epoch(
                    X_kernel, csr, is_sparse, y_kernel, sw_kernel, use_weights,
                    read_only(sample_idx), batch_size, params, workspace.grads, state_1,
                    state_2, net, work, workspace.x_batch, workspace.y_batch,
                    workspace.sw_batch, loss_code, huber_delta, optimizer.solver_code,
                    optimizer.hyperparameters(self.alpha, dtype), nesterov, optimizer.step,
                    dropout_seed, max_grad_norm,
                )  # fmt: skip
                optimizer.epoch_ends(step)
                if not finite and epoch_ctx is not None:
                    epoch_ctx.call_on_fit_task_end(estimator=self, **callback_data)
                if not finite and early_stopping and self.validation_scores_:
                    # Keep the model usable: stop here and restore (below) the weights
                    # of the best validation score, which are finite.
                    warnings.warn(
                        f"The training loss diverged (became NaN or infinite) in epoch "
                        f"{self.n_iter_ + 1}; training stopped and the weights with the "
                        f"best validation score were restored. Try a smaller "
                        "learning_rate_init, or scale the inputs.",
                        ConvergenceWarning,
                        stacklevel=6,
                    )
                    break
                if not finite:
                    raise ValueError(
                        f"The training loss diverged (became NaN or infinite) in epoch "
                        f"{self.n_iter_ + 1}. Try a smaller learning_rate_init, or scale "
                        "the inputs (for instance with StandardScaler)."
                    )
                self.n_iter_ += 1
                self.loss_ = loss_sum / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(
                        "Iteration %d, loss = %.8f (%.3f s)"
                        % (self.n_iter_, self.loss_, time.perf_counter() - epoch_start)
                    )

                self._update_no_improvement_count(early_stopping, validation)
                optimizer.iteration_ends(self.t_)
                stop_requested = False
                if epoch_ctx is not None:
                    stop_requested = epoch_ctx.call_on_fit_task_end(
                        estimator=self,
                        reconstruction_attributes=self._snapshot_attributes(),
                        **callback_data,
                    )
                if stop_requested:
                    break

                if self._no_improvement_count > self.n_iter_no_change:
                    if early_stopping:
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
                        break
                    self._no_improvement_count = 0

                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) "
                        "reached and the optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                        stacklevel=6,
                    )
        except KeyboardInterrupt:
            # The interrupt lands between compiled epochs, so the weights are whole.
            warnings.warn("Training interrupted by user.", stacklevel=6)

        if early_stopping:
            params[:] = self._best_params

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

    def _update_no_improvement_count(self, early_stopping, validation):
        if early_stopping:
            X_val, y_val = validation["X"], validation["y"]
            sample_weight_val = validation["sample_weight"]
            # One forward pass gives both the validation loss and the default score.
            outputs = self._forward_pass_fast(X_val, check_input=False)
            val_loss = output_loss(
                outputs, validation["y_encoded"], sample_weight_val, self._loss_name(),
                float(getattr(self, "huber_delta", 1.0)),
            )  # fmt: skip
            self.validation_loss_curve_.append(val_loss)
            if self.scoring == "loss":
                val_score = -val_loss  # higher is better, like every score here
            elif validation["scorer"] is not None:
                weights = {} if sample_weight_val is None else {"sample_weight": sample_weight_val}
                val_score = validation["scorer"](self, X_val, y_val, **weights)
            elif not np.isfinite(outputs).all():
                val_score = np.nan
            else:
                y_pred = self._decode(outputs)
                val_score = self._score_function(y_val, y_pred, sample_weight=sample_weight_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print(
                    "Validation score: %f (validation loss %.8f)"
                    % (self.validation_scores_[-1], val_loss)
                )
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_params = self._params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _snapshot_attributes(self):
        """Fitted attributes as they are now, for callbacks that evaluate the model
        at this epoch (scikit-learn's reconstruction_attributes)."""
        return {
            "coefs_": [c.copy() for c in self.coefs_],
            "intercepts_": [b.copy() for b in self.intercepts_],
            "_params": None,  # the copy repacks its own buffer from the arrays above
        }

    def _fit_lbfgs(self, X, y, sample_weight):
        layout, params = self._layout, self._params
        chunk_rows = max(256, _LBFGS_CHUNK_VALUES // int(layout.layer_units.sum()))
        activations, _ = self._hidden_settings(layout.n_layers)
        objective = FullBatchObjective(
            layout, X, y, sample_weight, activations[1:-1], self._loss_name(), self.alpha,
            chunk_rows, huber_delta=float(getattr(self, "huber_delta", 1.0)),
        )  # fmt: skip

        def loss_and_gradient(packed):
            params[:] = packed
            loss, gradient = objective(params)
            return loss, gradient.astype(np.float64)

        callback = None
        callback_ctx = self.__dict__.get("_callback_fit_ctx")
        callback_data = self.__dict__.get("_callback_data")
        if self.verbose or callback_ctx is not None:
            iteration = [0]

            def callback(intermediate_result):
                iteration[0] += 1
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (iteration[0], intermediate_result.fun))
                if callback_ctx is not None:
                    params[:] = intermediate_result.x  # the next evaluation resets it
                    step_ctx = callback_ctx.subcontext(task_name="lbfgs-iter")
                    step_ctx.call_on_fit_task_begin(estimator=self, **callback_data)
                    if step_ctx.call_on_fit_task_end(
                        estimator=self,
                        reconstruction_attributes=self._snapshot_attributes(),
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
        self.loss_ = float(result.fun)
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
        scikit-learn ``MLPClassifier``/``MLPRegressor`` is expected, for instance to
        ONNX through skl2onnx (see ``examples/onnx_export.py``). Needs activations
        scikit-learn has ('identity', 'logistic', 'tanh', 'relu'), one for all layers.

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
    def _is_plain_input(self, X, dtype):
        """True for a 2-D, C-contiguous array of the model's dtype and width, fitted
        without feature names: then validation reduces to the finiteness check that
        the prediction kernel does as it reads X (the fast path of single-row
        predictions, where scikit-learn's validation would cost 20 times the work)."""
        return (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype == dtype
            and X.flags.c_contiguous
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and getattr(self, "feature_names_in_", None) is None
        )

    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations for the rows of X."""
        params = self._packed_params()
        fast_path = check_input and self._is_plain_input(X, params.dtype)
        if check_input and not fast_path:
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], reset=False, dtype=(np.float64, np.float32)
            )
        if fast_path:
            X_kernel, csr, is_sparse = read_only(X), empty_csr(params.dtype), False
        else:
            X_kernel, csr, is_sparse = kernel_input(X, params.dtype)
        n_samples = X.shape[0]
        out = np.empty((n_samples, self.n_outputs_), dtype=params.dtype)
        inputs_finite, outputs_finite = _kernels.predict_forward(
            X_kernel,
            csr,
            is_sparse,
            n_samples,
            params,
            self._net,
            self._loss_code,
            out,
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

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score without input validation (it would drop feature names)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)
