"""What the two estimators share: their parameters, input checks, initialisation,
the fitted-network snapshot and the prediction fast path. Training itself is in
:mod:`fastbp._stochastic` (sgd, adam, adamw) and :mod:`fastbp._lbfgs`; the public
classes are in :mod:`fastbp.estimators`.
"""

from abc import ABC, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    _fit_context,
    is_classifier,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastbp import _fitted as fitted
from fastbp import _kernel_codes, _kernels
from fastbp._callbacks import CallbackSupportMixin, fit_task
from fastbp._compat import SCALAR_ARITHMETIC_KEEPS_FLOAT32
from fastbp._compiled_call import compiled_variant
from fastbp._losses import LOSSES, loss_parameters, loss_params_vector
from fastbp._network import NetworkLayout, check_input_shape, kernel_input, rare_paths, read_only
from fastbp._optimizers import OPTIMIZERS, per_hidden_layer
from fastbp._persistence import CALLBACK_ATTRIBUTES, restored_state, saved_state
from fastbp._stochastic import divergence_error, fit_stochastic

_STOCHASTIC_SOLVERS = tuple(OPTIMIZERS)


class _BaseBackprop(CallbackSupportMixin, BaseEstimator, ABC):
    """Shared machinery of :class:`BackpropClassifier` and :class:`BackpropRegressor`."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_kernel_codes.ACTIVATION_CODES)), list, tuple],
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
            if name not in _kernel_codes.ACTIVATION_CODES:
                raise ValueError(
                    f"Unknown activation {name!r} in the activation list; choose from "
                    f"{sorted(_kernel_codes.ACTIVATION_CODES)}."
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
        """A fitted-network snapshot over ``params`` with this estimator's current
        options (what a fit trains)."""
        if rates is None:
            rates = self._dropout_rates(layout.n_layers)
        return fitted.build(
            layout,
            params,
            self.activation,
            rates,
            self._loss_name(),
            self._decoding(int(layout.layer_units[-1])),
        )

    def _fitted_network(self):
        """The snapshot predictions use (see :mod:`fastbp._fitted`); rebuilt and
        checked when a user replaced ``coefs_`` or ``intercepts_``."""
        state = self.__dict__
        model = state.get("_model")
        if model is not None and model.describes(state.get("coefs_"), state.get("intercepts_")):
            return model  # the published snapshot, its arrays still in place
        if "coefs_" not in state:
            check_is_fitted(self)  # raises NotFittedError
        return fitted.current(self, self._network_from_arrays)

    def _network_from_arrays(self, coefs, intercepts, options=None):
        """A checked snapshot of user-supplied weights (ValueError if they do not fit).

        It keeps the options the model was fitted with (``options``, or those of the
        network published now); only a model that has none (imported from
        scikit-learn) takes the current parameters'.
        """
        n_features = self.__dict__.get("n_features_in_")
        if n_features is None:
            n_features = np.shape(coefs[0])[0] if len(coefs) else 0
        units, coefs, intercepts = fitted.checked_layer_units(coefs, intercepts, n_features)
        dtype = np.result_type(*coefs, *intercepts)
        layout = NetworkLayout(units)
        params = layout.pack(coefs, intercepts, dtype)
        previous = self.__dict__.get("_model")
        if options is None and previous is not None:
            options = previous.options()
        if options is None:
            activation, loss = self.activation, self._loss_name()
        else:
            activation, loss = options["activation"], options["loss"]
        # Prediction never drops units: dropout rates do not matter here.
        return fitted.build(
            layout, params, activation, np.zeros(layout.n_layers), loss,
            self._decoding(int(layout.layer_units[-1])),
        )  # fmt: skip

    def _loss_parameters(self, dtype):
        """The ``loss_params`` vector of the kernels (``P_*`` layout)."""
        return loss_params_vector(loss_parameters(self), dtype)

    def _loss_type(self, dtype):
        """The numpy scalar type of ``loss_`` and ``loss_curve_``: scikit-learn's
        (float64 for classifiers; for regressors the training dtype, in which their
        loss arithmetic stays under numpy 2, and float64 under numpy 1.x)."""
        if is_classifier(self) or not SCALAR_ARITHMETIC_KEEPS_FLOAT32:
            return np.float64
        return np.dtype(dtype).type

    def _set_weights(self, coefs, intercepts):
        """Adopt the given weights (checked) as the fitted network."""
        fitted.publish(self, self._network_from_arrays(list(coefs), list(intercepts)))

    def __getstate__(self):
        # plain values and arrays only: see fastbp._persistence. One consistent state:
        # assigned weights adopted first, and the dict taken once (a fit in another
        # thread commits a whole new dict, never edits this one).
        with fitted.publish_lock():
            if "coefs_" in self.__dict__:
                self._fitted_network()
            state = super().__getstate__()
        return saved_state(state)

    def __setstate__(self, state):
        # Everything a file holds is checked before the model is usable: a damaged or
        # crafted file raises a ValueError here, never corrupts a later fit.
        state, options = restored_state(state)
        super().__setstate__(state)
        # coefs_/intercepts_ come back as separate arrays: pack them into one flat
        # buffer again (checking their shapes), so the loaded model predicts at once.
        if "coefs_" in state or "intercepts_" in state:
            try:
                model = self._network_from_arrays(
                    self.__dict__.get("coefs_"), self.__dict__.get("intercepts_"), options
                )
                # Checked as saved (publish would drop optimizer state that does not
                # fit, which is right after an assignment, not for a file).
                fitted.check_state(
                    {**self.__dict__, "_model": model, "coefs_": list(model.coefs),
                     "intercepts_": list(model.intercepts)}
                )  # fmt: skip
                fitted.publish(self, model)
            except (AttributeError, IndexError, KeyError, OverflowError, TypeError) as exc:
                raise ValueError(
                    f"The saved {type(self).__name__} is damaged: {type(exc).__name__}: {exc}"
                ) from None

    # ----------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False, first_call=None):
        """Train a copy of this estimator and commit it (see fastbp._fitted.training):
        ``first_call(trainee, y)``, if given, prepares a partial_fit's first call."""
        with fitted.training(self) as trainee:
            if first_call is not None:
                first_call(trainee, y)
            trainee._fit_unguarded(X, y, sample_weight, incremental)
        return self

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
            from sklearn.metrics import check_scoring

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
            sample_weight = _weights_in_dtype(sample_weight, dtype)

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
            fit_stochastic(self, model, X, y, sample_weight, incremental)
        else:
            from fastbp._lbfgs import fit_lbfgs

            fit_lbfgs(self, model, X, y, sample_weight)

        if not np.isfinite(model.params).all():
            raise divergence_error("at the end of training")
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
        (scikit-learn's reconstruction_attributes): everything the fit has set so
        far (this is the copy being trained: the estimator itself has none of it
        until the fit commits), with the weights of ``model`` copied."""
        params = self.get_params(deep=False)
        attributes = {
            name: value
            for name, value in self.__dict__.items()
            if name not in params and name not in CALLBACK_ATTRIBUTES
        }
        attributes.update(
            coefs_=[c.copy() for c in model.coefs],
            intercepts_=[b.copy() for b in model.intercepts],
            _model=None,  # the copy builds its own network from the arrays above
        )
        attributes.pop("_optimizer", None)  # mid-epoch bookkeeping; not for evaluation
        return attributes

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
        max_subtasks = self.max_iter if self.solver in _STOCHASTIC_SOLVERS else None
        with fit_task(self, X, y, sample_weight, max_subtasks):
            self._fit(X, y, sample_weight=sample_weight, incremental=False)
        return self

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
        from fastbp._conversion import to_sklearn

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
        from fastbp._conversion import from_sklearn

        return from_sklearn(cls, model)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                " optimizers. %s is not stochastic." % self.solver
            )
        return True

    # -------------------------------------------------------------- prediction
    def _predicted(self, X):
        """``(model, outputs)``: the snapshot to predict with (as :meth:`_fitted_network`
        gives it) and its output-layer values for the rows of X (as
        :meth:`_forward_pass_fast` computes them).

        The path of small predictions: the published snapshot's identity check, the
        checks of X (:func:`_plain_rows`) and a direct call of the kernel's variant
        found at the model's first prediction (:mod:`fastbp._compiled_call`); anything
        else, or a call that the kernel refuses (a NaN in X, an overflow), goes the
        whole way, which raises the right error."""
        state = self.__dict__
        model = state.get("_model")
        if model is None or not model.describes(state.get("coefs_"), state.get("intercepts_")):
            model = self._fitted_network()
        compiled = model.compiled[0]  # found at the model's first plain prediction
        if compiled is not None and _plain_rows(X, model, state):
            out = np.empty((X.shape[0], model.n_outputs), dtype=model.params.dtype)
            inputs_finite, outputs_finite = compiled(X, None, *model.predict_arguments, out)
            if inputs_finite == 1 and outputs_finite:
                return model, out
        return model, self._forward_pass_fast(X, model)

    def _forward_pass_fast(self, X, model, check_input=True):
        """Output-layer activations of ``model`` (a fitted-network snapshot, the only
        source of shapes and weights here) for the rows of X."""
        dtype = model.params.dtype
        fast_path = check_input and _plain_rows(X, model, self.__dict__)
        if check_input and not fast_path:
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], reset=False, dtype=(np.float64, np.float32)
            )
        n_samples = X.shape[0]
        if fast_path:  # its width and rows checked against the snapshot just above
            X_kernel, csr, is_sparse = read_only(X), None, False
        else:
            X_kernel, csr, is_sparse = kernel_input(X, dtype)
            # The kernel trusts every shape it indexes with: check them against the
            # snapshot (a model refitted meanwhile may expect another width).
            check_input_shape(
                X_kernel, csr, is_sparse, n_samples, model.n_features, type(self).__name__
            )
        rare = None  # dense input, common activations (takes_common_path, made per model)
        if is_sparse or model.rare_activations:
            # Scratch per call (not per model): threads predict concurrently.
            chunk = min(n_samples, 1024)  # predict_forward's chunk
            rare = rare_paths(model.layout, chunk, dtype, csr, with_dropout=False)
        out = np.empty((n_samples, model.n_outputs), dtype=dtype)
        arguments = (X_kernel, rare, *model.predict_arguments, out)
        inputs_finite, outputs_finite = _kernels.predict_forward(*arguments)
        if inputs_finite == _kernels.REFUSED:
            _kernels.refused("prediction", model.layout.layer_units)
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
        if fast_path and rare is None and model.compiled[0] is None:
            # The variant numba just chose for plain rows (X read-only: it takes any
            # X that _plain_rows passes), typed once for this model.
            model.compiled[0] = compiled_variant(_kernels.predict_forward, arguments)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # CSR/CSC, multiplied in place by the first layer
        tags.target_tags.multi_output = True
        return tags


def _plain_rows(X, model, state):
    """True for a 2-D, C-contiguous, aligned array of the model's dtype and width, to
    an estimator (its attribute dict ``state``) fitted without feature names: then
    validation reduces to the finiteness check that the prediction kernel does as it
    reads X (the fast path of small predictions, where scikit-learn's validation would
    cost 20 times the work). These are also every property of X that the type of the
    prediction kernel's compiled variant depends on (:mod:`fastbp._compiled_call`),
    bar writability: the variant reads X as read-only."""
    if type(X) is not np.ndarray or X.ndim != 2:
        return False
    rows, columns = X.shape
    flags = X.flags
    return (
        rows > 0
        and columns == model.n_features
        and X.dtype == model.params.dtype
        and flags.c_contiguous
        and flags.aligned
        and state.get("feature_names_in_") is None
    )


def _weights_in_dtype(sample_weight, dtype):
    """The sample weights in the training dtype, checked there: float32 rounds weights
    below about 1e-45 to 0 and above 3e38 to infinity, which the check in float64
    cannot see (a fit would take no step, or diverge)."""
    weights = np.ascontiguousarray(sample_weight, dtype=dtype)
    if not np.isfinite(weights).all():
        raise ValueError(
            f"Sample weights overflow in {np.dtype(dtype).name}, the data's dtype: "
            "scale them down (only their ratios matter)."
        )
    if not weights.sum(dtype=np.float64) > 0:
        raise ValueError(
            f"Sample weights must sum to a positive value in {np.dtype(dtype).name}, the "
            "data's dtype: these round to zero there. Scale them up (only their ratios "
            "matter)."
        )
    return weights
