"""The scikit-learn face of fastbp: BackpropClassifier and BackpropRegressor.

The estimators mirror :class:`sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor` parameter for parameter; the shared
machinery is in :mod:`fastbp._base`, the numerical work in :mod:`fastbp._kernels`,
one compiled call per epoch.
"""

import os
from numbers import Real

from fastbp._collection import collection_paused

# Importing this module imports numba and fastbp's kernel modules (and scikit-learn,
# scipy and numpy when they are not imported yet): hundreds of thousands of objects
# that live on. The garbage collector's passes over them free nothing and, after
# scikit-learn is imported, took a fifth of the time (fastbp._collection).
with collection_paused():
    import numpy as np
    import scipy.sparse as sp
    from sklearn.base import (
        ClassifierMixin,
        RegressorMixin,
        _fit_context,
    )
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import column_or_1d
    from sklearn.utils._param_validation import Interval, StrOptions
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (
        _check_partial_fit_first_call,
        type_of_target,
        unique_labels,
    )
    from sklearn.utils.validation import validate_data

    from fastbp import __version__
    from fastbp._base import _BaseBackprop
    from fastbp._kernel_codes import BINARY_LOG_LOSS
    from fastbp._losses import REGRESSION_LOSSES

#: Where the HTML repr (Jupyter) links an estimator to its API page: the site built from
#: ``docs/`` (``python -m sphinx -b html docs docs/_build/html``), whose autosummary
#: pages are ``gen_modules/fastbp.<name>.html``. The environment variable
#: ``FASTBP_DOCS_URL`` replaces it, for instance with ``file:///.../docs/_build/html/``
#: for a local build.
DOCS_URL = f"https://fastbp.readthedocs.io/en/{__version__}/"


class _DocumentationLink:
    """Points scikit-learn's HTML repr at fastbp's API pages instead of
    scikit-learn's (which it links only for classes of the ``sklearn`` package).
    ``_doc_link_template`` and ``_doc_link_url_param_generator`` are the hooks of
    scikit-learn's ``_HTMLDocumentationLinkMixin``."""

    _doc_link_module = "fastbp"
    _doc_link_template = "{docs_url}gen_modules/fastbp.{estimator_name}.html"

    def _doc_link_url_param_generator(self):
        # The page of the public name (fastbp.MLPClassifier), not of the module the
        # class is defined in (fastbp.estimators.MLPClassifier).
        docs_url = os.environ.get("FASTBP_DOCS_URL") or DOCS_URL
        if not docs_url.endswith("/"):
            docs_url += "/"
        return {"docs_url": docs_url, "estimator_name": type(self).__name__}


#: The bounds of a logistic output's probabilities, per dtype: one rounding step inside
#: (0, 1) (see BackpropClassifier.predict_proba).
_PROBABILITY_BOUNDS = {
    dtype: (np.finfo(dtype).epsneg, 1 - np.finfo(dtype).epsneg)
    for dtype in (np.float32, np.float64)
}

_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : str or list of str, default='relu'
        Activation of the hidden layers: 'identity', 'logistic', 'tanh', 'relu', and
        beyond scikit-learn 'leaky_relu' (slope 0.01), 'elu', 'softplus',
        'swish' (``x * sigmoid(x)``, also called SiLU) and 'gelu' (PyTorch's exact
        GELU, ``0.5 * x * (1 + erf(x / sqrt(2)))``, not its tanh approximation); or a
        list with one name per hidden layer.
    solver : {'lbfgs', 'sgd', 'adam', 'adamw'}, default='adam'
        Weight optimizer: L-BFGS (full batch, through ``scipy.optimize``), SGD with
        momentum, Adam, or beyond scikit-learn AdamW (Adam with decoupled weight
        decay, see ``weight_decay``).
    alpha : float, default=0.0001
        Strength of the L2 penalty, divided by the sample-weight sum of each batch.
    batch_size : int or 'auto', default='auto'
        Minibatch size for the stochastic solvers; 'auto' means
        ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive', 'cosine', 'step'}, \
default='constant'
        Learning-rate schedule. 'invscaling' uses ``learning_rate_init / t**power_t``;
        'adaptive' divides the rate by 5 each time ``n_iter_no_change`` epochs fail to
        improve by ``tol`` (these three apply to sgd only, as in scikit-learn).
        Beyond scikit-learn, for sgd and adam: 'cosine' decays the rate along half a
        cosine to 0 at ``max_iter`` epochs; 'step' multiplies it by
        ``lr_step_factor`` every ``lr_step_epochs`` epochs.
    learning_rate_init : float, default=0.001
        Initial learning rate (sgd and adam).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).
    shuffle : bool, default=True
        Whether to shuffle the samples at every epoch.
    random_state : int, RandomState instance or None, default=None
        Controls the initial weights, the shuffling and the validation split. With
        the same value, the weights equal scikit-learn's.
    tol : float, default=1e-4
        Tolerance of the convergence and early-stopping tests.
    verbose : bool or int, default=False
        Print scikit-learn's progress lines (one per epoch, the validation score
        with early stopping, the convergence message), the same for any true value.
        fastbp's own detail (each epoch's time, the validation loss, one line per
        L-BFGS iteration) goes to the standard ``logging`` logger ``"fastbp"`` at
        DEBUG level, whatever ``verbose`` is.
    warm_start : bool, default=False
        Reuse the previous solution as initialisation.
    momentum : float, default=0.9
        Momentum of the sgd solver.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd with momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the validation
        score stops improving; the best weights are restored.
    validation_fraction : float, default=0.1
        Proportion of the training data held out for early stopping.
    beta_1 : float, default=0.9
        Adam's decay rate of the first-moment estimates.
    beta_2 : float, default=0.999
        Adam's decay rate of the second-moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before stopping.
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs only).
    dropout : float or list of float, default=0.0
        Inverted dropout on the hidden layers (one rate, or one per hidden layer):
        during training each unit is kept with probability ``1 - rate`` and scaled by
        ``1 / (1 - rate)``; prediction uses every unit. The masks are drawn from
        ``random_state``, so runs are reproducible. sgd and adam only.
    max_grad_norm : float or None, default=None
        Clip each step's gradient to this global L2 norm (all weights and biases).
    lr_step_epochs : int, default=10
        Period of the 'step' learning-rate schedule, in epochs.
    lr_step_factor : float, default=0.5
        Factor of the 'step' learning-rate schedule.
    scoring : str, callable or None, default=None
        What early stopping monitors on the validation set: None for the score
        method (accuracy or R², as scikit-learn), 'loss' for the validation loss,
        or any scikit-learn scorer name or callable ``scorer(estimator, X, y)``.
        Works with multilabel targets and sample weights.
    weight_decay : float, default=0.01
        With ``solver='adamw'`` only: the decoupled weight decay. Each step first
        multiplies the coefficients by ``1 - lr * weight_decay`` (``lr`` the
        scheduled ``learning_rate_init``), as PyTorch's ``AdamW``; unlike ``alpha``
        (an L2 term in the loss, which Adam divides by its running gradient scale),
        it shrinks every weight at the same rate."""

_ATTRIBUTES_DOC = """
    loss_ : float
        The current loss (training loss for lbfgs: the final full-batch value).
    best_loss_ : float or None
        Minimum training loss reached (None with early stopping).
    loss_curve_ : list of shape (``n_iter_``,)
        Training loss at the end of each epoch (stochastic solvers).
    validation_scores_ : list of shape (``n_iter_``,) or None
        Validation score after each epoch, with early stopping (with
        ``scoring='loss'``, the negated validation loss).
    validation_loss_curve_ : list of shape (``n_iter_``,) or None
        Validation loss (without the L2 penalty) after each epoch, with early
        stopping.
    best_validation_score_ : float or None
        Best validation score, with early stopping.
    t_ : int
        Number of training samples seen by the solver.
    coefs_ : list of ndarray, length n_layers - 1
        Weight matrices; views into one flat parameter vector.
    intercepts_ : list of ndarray, length n_layers - 1
        Bias vectors; views into the same vector.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Names of the features seen during fit, when X has string column names.
    n_iter_ : int
        Number of epochs (or lbfgs iterations) run.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation."""


class BackpropClassifier(_DocumentationLink, ClassifierMixin, _BaseBackprop):
    __doc__ = f"""Multi-layer perceptron classifier trained by compiled backpropagation.

    A drop-in replacement for :class:`sklearn.neural_network.MLPClassifier`: the same
    parameters, defaults and fitted attributes, and with the same ``random_state`` the
    same weights. Binary and multilabel targets use a logistic output with binary
    cross-entropy; multiclass targets a softmax with cross-entropy.

    Parameters
    ----------{_PARAMETERS_DOC}
    class_weight : dict, list of dict, 'balanced' or None, default=None
        Weights of the classes, multiplying the sample weights (an addition to
        scikit-learn's MLP, which has no class_weight). 'balanced' weighs each class
        by ``n_samples / (n_classes * count)``; it is refused in ``partial_fit``,
        where one chunk's counts are not the data's: pass a dict there.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels of each output.{_ATTRIBUTES_DOC}

    See Also
    --------
    BackpropRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : The scikit-learn estimator it mirrors.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from fastbp import BackpropClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = BackpropClassifier(random_state=0, tol=1e-3).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.95
    True
    """

    def __init__(
        self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
        alpha=0.0001, batch_size="auto", learning_rate="constant",
        learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
        random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
        nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
        class_weight=None, dropout=0.0, max_grad_norm=None, lr_step_epochs=10,
        lr_step_factor=0.5, scoring=None, weight_decay=0.01,
    ):  # fmt: skip
        self.class_weight = class_weight
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss="log_loss", shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            dropout=dropout, max_grad_norm=max_grad_norm, lr_step_epochs=lr_step_epochs,
            lr_step_factor=lr_step_factor, scoring=scoring, weight_decay=weight_decay,
        )  # fmt: skip

    _parameter_constraints: dict = {
        **_BaseBackprop._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        class_sample_weight = None
        if self.class_weight is not None:
            if incremental and isinstance(self.class_weight, str):
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit: one chunk's "
                    "class frequencies are not the data's. Compute the weights once with "
                    "sklearn.utils.class_weight.compute_class_weight('balanced', "
                    "classes=classes, y=y) on (a large sample of) the training targets and "
                    "pass the resulting dict as class_weight."
                )
            class_sample_weight = compute_sample_weight(self.class_weight, y)
            if not np.isfinite(class_sample_weight).all() or (class_sample_weight < 0).any():
                raise ValueError(
                    "class_weight must give every class a finite, non-negative weight; "
                    f"got {self.class_weight!r}."
                )
            class_sample_weight = class_sample_weight.astype(X.dtype)

        # First fit (or a fresh fit) defines classes_; warm start must keep them;
        # partial_fit must only see known classes.
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        if self._label_binarizer.y_type_ != "multilabel-indicator" and len(self.classes_) < 2:
            raise ValueError(
                f"The target y has only one class ({self.classes_[0]}); a classifier "
                "needs samples of at least two classes."
            )
        return X, self._binarize(y), class_sample_weight

    def _binarize(self, y):
        """``self._label_binarizer.transform(y).astype(bool)``, without its repeated
        target-type checks (they cost more than a small epoch); y holds known labels."""
        y_type = self._label_binarizer.y_type_
        if y_type == "multilabel-indicator":
            if sp.issparse(y):  # scikit-learn accepts a sparse indicator matrix
                y = y.toarray()
            return np.asarray(y) != 0
        codes = np.searchsorted(self.classes_, y)
        if y_type == "binary":
            return (codes == 1).reshape(-1, 1)
        one_hot = np.zeros((len(codes), len(self.classes_)), dtype=bool)
        one_hot[np.arange(len(codes)), codes] = True
        return one_hot

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        model, outputs = self._predicted(X)
        return self._decode(outputs, model)

    @staticmethod
    def _score_function(y_true, y_pred, sample_weight=None):
        """The early-stopping score: accuracy (sklearn.metrics, imported when used)."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y_true, y_pred, sample_weight=sample_weight)

    def _decoding(self, n_outputs):
        """What turns outputs into labels, kept with the network it belongs to: the
        label binarizer and the classes (checked against the output count)."""
        binarizer = self._label_binarizer
        y_type = binarizer.y_type_
        if y_type not in ("binary", "multiclass", "multilabel-indicator") or not np.array_equal(
            binarizer.classes_, self.classes_
        ):
            raise ValueError(
                f"The label binarizer ({y_type!r}, classes {binarizer.classes_!r}) does not "
                f"match classes_ {self.classes_!r}."
            )
        expected = 1 if y_type == "binary" else len(self.classes_)
        if n_outputs != expected:
            raise ValueError(
                f"The network has {n_outputs} output(s), but this {y_type} classifier "
                f"with {len(self.classes_)} classes needs {expected}: the last layer's "
                "weights do not fit the classes."
            )
        return binarizer, self.classes_

    def _decode(self, y_pred, model):
        """Labels from output activations: LabelBinarizer.inverse_transform, without
        its input checks."""
        binarizer, classes = model.decoding
        y_type = binarizer.y_type_
        if y_type == "multiclass":
            return classes.take(y_pred.argmax(axis=1), mode="clip")
        if y_type == "binary":
            return classes[(y_pred.ravel() > 0.5).astype(int)]
        if y_pred.shape[1] == 1:
            y_pred = y_pred.ravel()
        return binarizer.inverse_transform(y_pred)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with one epoch over the given data (sgd and adam).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            All the classes; required on the first call, ignored afterwards.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if (
            classes is None
            and "classes_" not in self.__dict__
            and type_of_target(y).startswith("multilabel")
        ):
            # A multilabel indicator matrix names its labels by its columns:
            # classes= adds nothing (scikit-learn's MLP still demands it).
            classes = np.arange(np.shape(y)[1])

        def first_call(trainee, y):
            # On the copy being trained: the estimator itself changes only when the
            # whole call succeeds.
            if _check_partial_fit_first_call(trainee, classes):
                trainee._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    trainee._label_binarizer.fit(y)
                else:
                    trainee._label_binarizer.fit(classes)

        return self._fit(X, y, sample_weight=sample_weight, incremental=True, first_call=first_call)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class, in the order of ``classes_``.
        """
        model, y_pred = self._predicted(X)
        # A logistic output: a saturated sigmoid rounds to exactly 0 or 1; keep
        # probabilities strictly inside (0, 1), one rounding step from the bounds, so
        # that log-probabilities stay finite. The lower bound is epsneg, not the
        # smallest float: 1 - p must stay below 1 too (1 - 1e-300 rounds to exactly 1).
        # (np.maximum then np.minimum: np.clip's bits, without its Python-level
        # argument handling, which cost a one-row prediction several microseconds.)
        logistic = model.loss_code == BINARY_LOG_LOSS
        if y_pred.shape[1] == 1:
            # [1 - p, p] per row, laid out as np.vstack([1 - p, p]).T (scikit-learn's),
            # p clipped straight into its row
            proba = np.empty((2, y_pred.shape[0]), dtype=y_pred.dtype)
            positive = proba[1]
            if logistic:
                low, high = _PROBABILITY_BOUNDS[y_pred.dtype.type]
                np.minimum(np.maximum(y_pred[:, 0], low, out=positive), high, out=positive)
            else:
                positive[:] = y_pred[:, 0]
            np.subtract(1, positive, out=proba[0])
            return proba.T
        if logistic:
            low, high = _PROBABILITY_BOUNDS[y_pred.dtype.type]
            np.minimum(np.maximum(y_pred, low, out=y_pred), high, out=y_pred)
        return y_pred

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BackpropRegressor(_DocumentationLink, RegressorMixin, _BaseBackprop):
    __doc__ = f"""Multi-layer perceptron regressor trained by compiled backpropagation.

    A drop-in replacement for :class:`sklearn.neural_network.MLPRegressor`: the same
    parameters, defaults and fitted attributes, and with the same ``random_state`` the
    same weights.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson', 'absolute_error', 'huber', 'quantile'}}, \
default='squared_error'
        Half squared error with an identity output, or half Poisson deviance with an
        exponential output; beyond scikit-learn, with an identity output: absolute
        error (median regression), Huber (squared near zero, absolute beyond
        ``huber_delta``: robust to outliers) and the quantile (pinball) loss
        ``max(q (y - p), (q - 1) (y - p))`` with ``q = quantile``, whose minimiser
        is the conditional ``q``-quantile of ``y`` (a prediction interval from two
        models). With several outputs the reported loss is summed over outputs,
        which is the loss the gradient descends (scikit-learn reports its mean, which
        disagrees with its own gradient); for 'squared_error' the ``tol``-based
        stopping and L-BFGS's iterates then differ from scikit-learn's (see the
        user guide's differences page).
    huber_delta : float, default=1.0
        Where the Huber loss turns from squared to absolute.
    quantile : float, default=0.5
        The quantile ``q`` (in (0, 1)) the 'quantile' loss estimates; 0.5 gives half
        the absolute error, so the median.{_PARAMETERS_DOC}

    Attributes
    ----------{_ATTRIBUTES_DOC}

    See Also
    --------
    BackpropClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : The scikit-learn estimator it mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> from fastbp import BackpropRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, (500, 3))
    >>> y = X @ [1.0, -2.0, 0.5]
    >>> reg = BackpropRegressor(solver="lbfgs", random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.99
    True
    """

    _parameter_constraints: dict = {
        **_BaseBackprop._parameter_constraints,
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
        solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
        learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
        random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
        nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
        beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
        huber_delta=1.0, dropout=0.0, max_grad_norm=None, lr_step_epochs=10,
        lr_step_factor=0.5, scoring=None, weight_decay=0.01, quantile=0.5,
    ):  # fmt: skip
        self.huber_delta = huber_delta
        self.quantile = quantile
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            loss=loss, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            dropout=dropout, max_grad_norm=max_grad_norm, lr_step_epochs=lr_step_epochs,
            lr_step_factor=lr_step_factor, scoring=scoring, weight_decay=weight_decay,
        )  # fmt: skip

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=(np.float64, np.float32), reset=reset,
        )  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for loss='poisson'."
            )
        return X, y, None

    def predict(self, X):
        """Predict using the multi-layer perceptron.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        model, outputs = self._predicted(X)
        return self._decode(outputs, model)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    @staticmethod
    def _score_function(y_true, y_pred, sample_weight=None):
        """The early-stopping score: R^2 (sklearn.metrics, imported when used)."""
        from sklearn.metrics import r2_score

        return r2_score(y_true, y_pred, sample_weight=sample_weight)

    def _decoding(self, n_outputs):
        return None  # any number of outputs is a regression

    def _decode(self, y_pred, model):
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with one epoch over the given data (sgd and adam).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


# scikit-learn derives names from the class: make_pipeline's step names, param-grid
# keys ("mlpclassifier__alpha"), named_steps and the repr. Subclasses under
# scikit-learn's names make the import the only line a scikit-learn script changes.
class MLPClassifier(BackpropClassifier):
    __doc__ = BackpropClassifier.__doc__.replace(
        "Multi-layer perceptron classifier trained by compiled backpropagation.",
        "Multi-layer perceptron classifier trained by compiled backpropagation, under\n"
        "    scikit-learn's name: the drop-in spelling of :class:`BackpropClassifier`.\n\n"
        "    Identical to :class:`BackpropClassifier` in every parameter and result; only\n"
        "    the name differs, so that ``make_pipeline`` names the step ``mlpclassifier``\n"
        "    and a parameter grid written for scikit-learn (``mlpclassifier__alpha``)\n"
        "    works unchanged.",
        1,
    ).replace(
        "    >>> from fastbp import BackpropClassifier\n"
        "    >>> X, y = load_digits(return_X_y=True)\n"
        "    >>> clf = BackpropClassifier(",
        "    >>> from fastbp import MLPClassifier\n"
        "    >>> X, y = load_digits(return_X_y=True)\n"
        "    >>> clf = MLPClassifier(",
        1,
    )


class MLPRegressor(BackpropRegressor):
    __doc__ = (
        BackpropRegressor.__doc__.replace(
            "Multi-layer perceptron regressor trained by compiled backpropagation.",
            "Multi-layer perceptron regressor trained by compiled backpropagation, under\n"
            "    scikit-learn's name: the drop-in spelling of :class:`BackpropRegressor`.\n\n"
            "    Identical to :class:`BackpropRegressor` in every parameter and result; only\n"
            "    the name differs, so that ``make_pipeline`` names the step ``mlpregressor``\n"
            "    and a parameter grid written for scikit-learn (``mlpregressor__alpha``)\n"
            "    works unchanged.",
            1,
        )
        .replace(
            "    >>> from fastbp import BackpropRegressor\n",
            "    >>> from fastbp import MLPRegressor\n",
            1,
        )
        .replace(
            "    >>> reg = BackpropRegressor(",
            "    >>> reg = MLPRegressor(",
            1,
        )
    )
