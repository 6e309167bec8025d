"""L-BFGS: the fit, and the full-batch objective it minimises, chosen by a memory
budget.

L-BFGS's line search amplifies differences in the last bits of the loss and the
gradient: an objective that rounds differently from scikit-learn's drifts to other
iterates within a hundred iterations, and ends with another ``n_iter_`` and other
weights. So while the whole batch fits :data:`EXACT_BUDGET_BYTES`, the objective is
computed with scikit-learn's own arithmetic — its activation, derivative and loss
functions, its order of operations, the same GEMM shapes and numpy reductions — and
L-BFGS follows scikit-learn's iterates. Above the budget (for instance 60000 x 784
inputs into 256 units: ~1.5 GB of activations and deltas, which scikit-learn
allocates), the compiled kernel computes the same objective in row chunks, in
bounded memory; its results then agree with scikit-learn's only closely.
"""

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from scipy.special import xlogy
from sklearn.exceptions import ConvergenceWarning

from fastbp._callbacks import fit_callbacks
from fastbp._logging import LOGGER, detail_wanted
from fastbp._losses import loss_parameters
from fastbp._optimizers import FullBatchObjective
from fastbp._stochastic import divergence_error
from fastbp._warnings import warn_as_sklearn_mlp

try:  # scikit-learn's own functions: their rounding is the point
    from sklearn.neural_network._base import ACTIVATIONS, DERIVATIVES, LOSS_FUNCTIONS
    from sklearn.utils.extmath import safe_sparse_dot
except ImportError:  # pragma: no cover - a scikit-learn that moved them
    ACTIVATIONS = DERIVATIVES = LOSS_FUNCTIONS = {}

#: Largest workspace (activations, deltas and their temporaries for every sample)
#: for which L-BFGS uses scikit-learn's arithmetic; above it, the chunked kernel.
EXACT_BUDGET_BYTES = 64 * 2**20

# Rows per chunk of the compiled full-batch gradient: values per chunk, divided by
# the units of all layers, bounds its workspace whatever the data size. Small enough
# that a chunk's activations and deltas stay in cache between the forward and the
# backward pass: measured at one thread, 20000 x 100 -> 200 -> 10 took 303 ms per
# evaluation in chunks of 6765 rows (2**21 values), 234-270 ms in chunks of 128-1024.
_CHUNK_VALUES = 1 << 18
_CHUNK_ROWS_MIN, _CHUNK_ROWS_MAX = 128, 1024


def _squared_loss_summed(y_true, y_pred, sample_weight=None):
    """scikit-learn's squared loss, summed over outputs instead of averaged: the
    loss whose gradient the backward pass computes (identical for one output)."""
    return 0.5 * np.average((y_true - y_pred) ** 2, weights=sample_weight, axis=0).sum()


def exact_workspace_bytes(layer_units, n_samples, itemsize):
    """Bytes scikit-learn's arithmetic holds at once: activations, deltas and one
    temporary per layer, for every sample."""
    return 3 * n_samples * int(np.sum(layer_units[1:])) * itemsize


def full_batch_objective(layout, X, y, sample_weight, activations, loss, alpha, loss_parameters):
    """The objective for L-BFGS: scikit-learn's arithmetic within the budget and for
    the options scikit-learn has, the chunked compiled kernel otherwise.

    ``activations`` holds one name per hidden layer; ``y`` is 2-D.
    """
    n_samples = X.shape[0]
    itemsize = np.dtype(X.dtype).itemsize
    uniform = len(set(activations)) <= 1
    name = activations[0] if activations else "identity"
    if (
        uniform
        and name in DERIVATIVES
        and loss in LOSS_FUNCTIONS
        and exact_workspace_bytes(layout.layer_units, n_samples, itemsize) <= EXACT_BUDGET_BYTES
    ):
        return SklearnArithmeticObjective(layout, X, y, sample_weight, name, loss, alpha)
    chunk_rows = _CHUNK_VALUES // int(layout.layer_units.sum())
    chunk_rows = min(_CHUNK_ROWS_MAX, max(_CHUNK_ROWS_MIN, chunk_rows))
    return FullBatchObjective(
        layout, X, y, sample_weight, activations, loss, alpha, chunk_rows,
        loss_parameters=loss_parameters,
    )  # fmt: skip


def fit_lbfgs(estimator, model, X, y, sample_weight):
    """Train ``model`` (a network snapshot of ``estimator``) in place with scipy's
    L-BFGS-B on the full batch, as scikit-learn's ``_fit_lbfgs`` does."""
    layout, params = model.layout, model.params
    activations = estimator._hidden_activations(layout.n_layers)
    objective = full_batch_objective(
        layout, X, y, sample_weight, activations[1:-1], estimator._loss_name(),
        estimator.alpha, loss_parameters=loss_parameters(estimator),
    )  # fmt: skip

    def loss_and_gradient(packed):
        params[:] = packed
        return objective(params)

    iteration_ends = None
    callbacks = fit_callbacks(estimator)
    # scikit-learn prints nothing during L-BFGS at any verbose (scipy >= 1.15 dropped
    # iprint), and neither does fastbp; each iteration's loss goes to the "fastbp"
    # logger at DEBUG level instead.
    log_iterations = detail_wanted()
    if log_iterations or callbacks.listening:
        iteration = [0]

        def iteration_ends(x, loss):
            """Called after each iteration; True stops the minimisation."""
            iteration[0] += 1
            if log_iterations:
                LOGGER.debug("L-BFGS iteration %d: loss %.8f", iteration[0], loss)
            if callbacks.listening:
                params[:] = x  # the next evaluation resets it
                callbacks.task_begins("lbfgs-iter")
                return bool(callbacks.task_ends(estimator._snapshot_attributes(model)))
            return False

    minimize = lbfgsb if scipy_driver_is_known() else _scipy_lbfgsb
    result = minimize(
        loss_and_gradient, params.astype(np.float64), maxfun=estimator.max_fun,
        maxiter=estimator.max_iter, gtol=estimator.tol, iteration_ends=iteration_ends,
    )  # fmt: skip
    if not np.isfinite(result.fun):
        raise divergence_error(f"in L-BFGS iteration {result.nit}")
    if result.status != 0:
        message = result.message
        if isinstance(message, bytes):
            message = message.decode("latin1")
        warn_as_sklearn_mlp(
            f"lbfgs failed to converge after {result.nit} iteration(s) "
            f"(status={result.status}):\n{message}\n\nIncrease the number of "
            f"iterations to improve the convergence (max_iter={estimator.max_iter}).\n"
            "You might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html",
            ConvergenceWarning,
            stacklevel=6,  # fit -> _fit -> _fit_unguarded -> here, under _fit_context
        )
    estimator.n_iter_ = min(result.nit, estimator.max_iter)
    estimator.loss_ = estimator._loss_type(params.dtype)(result.fun)
    params[:] = result.x


# ------------------------------------------------------------------------------------
# The minimiser. scikit-learn calls scipy.optimize.minimize(method="L-BFGS-B",
# jac=True), whose Python layers (ScalarFunction, MemoizeJac, the wrappers that copy
# x and check the loss, OptimizeResult per iteration) cost more per evaluation than a
# small network's whole objective. lbfgsb runs the same loop around scipy's compiled
# setulb without them: the same calls to setulb with the same arrays, an evaluation
# wherever scipy's memoisation would make one, the same stopping rules. It repeats
# one version of scipy's code, so it runs only where scipy's code is that version
# (scipy_driver_is_known); elsewhere scipy.optimize.minimize runs.
# ------------------------------------------------------------------------------------

#: scipy's defaults that scikit-learn keeps: correction pairs, ftol, line-search steps.
_MAXCOR, _FTOL, _MAXLS = 10, 2.2204460492503131e-09, 20

#: SHA-256 of the scipy functions lbfgsb repeats (docstrings left out), per reviewed
#: scipy version: see _scipy_driver_digest.
KNOWN_SCIPY_DRIVERS = {
    "1.17": "9375101f6118bdd0b09f76059a1d8971d9a9b05838ec37be6e2383aac2d3ca42",
}

_driver_known = None


def _scipy_driver_sources():
    """The scipy functions whose behaviour lbfgsb repeats."""
    from scipy._lib import _util
    from scipy.optimize import _differentiable_functions, _lbfgsb_py, _optimize

    scalar_function = _differentiable_functions.ScalarFunction
    return [
        _lbfgsb_py._minimize_lbfgsb,
        scalar_function.__init__,
        scalar_function._update_x,
        scalar_function._update_fun,
        scalar_function._update_grad,
        scalar_function.fun_and_grad,
        _optimize.MemoizeJac,
        _util._ScalarFunctionWrapper,
        _differentiable_functions._ScalarGradWrapper.__call__,
        _util._call_callback_maybe_halt,
    ]


def _source(function):
    """``inspect.getsource(function)``; for a module-level class, the same text
    found without inspect's parse of the class's whole module (Python 3.11 and
    3.12 compile all of scipy's ``_optimize.py`` and ``_util.py`` to find two class
    statements: 0.15-0.2 s of every process's first L-BFGS fit, measured). The
    class statement is the one line of the module that starts ``class <name>``,
    undecorated; anything else is left to inspect."""
    import inspect
    import linecache
    import re
    import sys

    if inspect.isclass(function) and function.__qualname__ == function.__name__:
        module = sys.modules.get(function.__module__)
        filename = inspect.getsourcefile(function)
        if module is not None and filename:
            lines = linecache.getlines(filename, module.__dict__)
            statement = re.compile(rf"class {re.escape(function.__name__)}\b")
            starts = [number for number, line in enumerate(lines) if statement.match(line)]
            if len(starts) == 1 and not (starts[0] and lines[starts[0] - 1].startswith("@")):
                return "".join(inspect.getblock(lines[starts[0] :]))
    return inspect.getsource(function)


def _scipy_driver_digest():
    """SHA-256 of the sources of :func:`_scipy_driver_sources`, docstrings removed
    (an edit to their words changes nothing lbfgsb repeats), or None when a source
    cannot be read."""
    import ast
    import hashlib
    import textwrap

    digest = hashlib.sha256()
    try:
        for function in _scipy_driver_sources():
            source = textwrap.dedent(_source(function))
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                body = getattr(node, "body", None)
                if (
                    isinstance(node, (ast.FunctionDef, ast.ClassDef))
                    and body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    for line in range(body[0].lineno - 1, body[0].end_lineno):
                        lines[line] = ""
            digest.update("\n".join(line for line in lines if line.strip()).encode())
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError):
        return None
    return digest.hexdigest()


def scipy_driver_is_known():
    """Whether scipy's L-BFGS-B driver is one that :func:`lbfgsb` repeats (checked
    once per process, at its first L-BFGS fit: 20-30 ms)."""
    global _driver_known
    if _driver_known is None:
        import scipy

        version = ".".join(scipy.__version__.split(".")[:2])
        reviewed = KNOWN_SCIPY_DRIVERS.get(version)
        # Both sides may be None (an unreviewed version whose sources cannot be
        # read, as scipy 1.11's): None == None must not count as known.
        _driver_known = reviewed is not None and reviewed == _scipy_driver_digest()
    return _driver_known


def _scipy_lbfgsb(evaluate, x0, maxfun, maxiter, gtol, iteration_ends):
    """scipy.optimize.minimize itself, as scikit-learn calls it."""
    callback = None
    if iteration_ends is not None:

        def callback(intermediate_result):
            if iteration_ends(intermediate_result.x, intermediate_result.fun):
                raise StopIteration

    def evaluate_copied(x):
        # A copy in float64: the objective may hand back a view of its own buffer
        # (overwritten by the next call, which scipy's memo would not see) in the
        # model's dtype, and older scipy (1.11) passes the gradient to its compiled
        # setulb as it is, which takes float64 only. float32 -> float64 is exact.
        loss, gradient = evaluate(x)
        return loss, np.array(gradient, dtype=np.float64)

    return scipy.optimize.minimize(
        evaluate_copied, x0, method="L-BFGS-B", jac=True, callback=callback,
        options={"maxfun": maxfun, "maxiter": maxiter, "gtol": gtol},
    )  # fmt: skip


def lbfgsb(evaluate, x0, maxfun, maxiter, gtol, iteration_ends=None):
    """Minimise ``evaluate`` as ``scipy.optimize.minimize(evaluate, x0,
    method="L-BFGS-B", jac=True, options={"maxfun": maxfun, "maxiter": maxiter,
    "gtol": gtol})`` does, with the same iterates, bit for bit.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x) -> (loss, gradient)``; may return a view of a buffer of its own
        as the gradient (it is copied before the next call); must neither modify nor
        keep ``x`` (scipy passes a copy; this passes its own record of the last x).
    x0 : ndarray of shape (n_params,)
    maxfun, maxiter : int
    gtol : float
    iteration_ends : callable or None
        ``iteration_ends(x, loss)`` after each iteration; returning True stops the
        minimisation (scipy's callback raising StopIteration).

    Returns
    -------
    result : scipy.optimize.OptimizeResult
        ``x``, ``fun``, ``nit``, ``nfev``, ``status`` and ``message`` as scipy's.
    """
    from scipy.optimize import _lbfgsb
    from scipy.optimize._lbfgsb_py import status_messages, task_messages

    m, n = _MAXCOR, x0.size
    factr = _FTOL / np.finfo(float).eps
    x = np.array(x0, dtype=np.float64)
    no_bounds = np.zeros(n, np.int32)
    lower, upper = np.zeros(n, np.float64), np.zeros(n, np.float64)
    f = np.array(0.0, dtype=np.float64)
    g = np.zeros(n, dtype=np.float64)
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, np.float64)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task = np.zeros(2, dtype=np.int32)
    ln_task = np.zeros(2, dtype=np.int32)
    lsave = np.zeros(4, dtype=np.int32)
    isave = np.zeros(44, dtype=np.int32)
    dsave = np.zeros(29, dtype=np.float64)
    # scipy's ScalarFunction evaluates at x0 when it is made, and later only at an x
    # unequal to the last one evaluated (its memoisation, np.array_equal).
    evaluated_at = x.copy()
    same = np.empty(n, dtype=bool)
    loss, gradient = evaluate(evaluated_at)
    nfev = 1
    n_iterations = 0
    halted = False
    while True:
        _lbfgsb.setulb(m, x, lower, upper, no_bounds, f, g, factr, gtol, wa, iwa, task,
                       lsave, isave, dsave, _MAXLS, ln_task)  # fmt: skip
        if task[0] == 3:  # wants f and g at x
            if not np.equal(x, evaluated_at, out=same).all():  # np.array_equal
                evaluated_at[:] = x
                loss, gradient = evaluate(evaluated_at)
                nfev += 1
            f = loss
            g = np.array(gradient, dtype=np.float64)  # a copy, as scipy's astype
        elif task[0] == 1:  # a new iteration
            n_iterations += 1
            if iteration_ends is not None and iteration_ends(x, f):
                halted = True
                task[0], task[1] = 5, 505
            if n_iterations >= maxiter:
                task[0], task[1] = 5, 504
            elif nfev > maxfun:
                task[0], task[1] = 5, 502
        else:
            break
    if task[0] == 4:
        status = 0
    elif nfev > maxfun or n_iterations >= maxiter:
        status = 1
    else:
        status = 2
    message = status_messages[task[0]] + ": " + task_messages[task[1]]
    if halted:  # what scipy.optimize.minimize reports after a StopIteration
        status, message = 99, "`callback` raised `StopIteration`."
    return scipy.optimize.OptimizeResult(
        fun=f, x=x, nit=n_iterations, nfev=nfev, status=status, message=message,
        success=status == 0,
    )  # fmt: skip


class SklearnArithmeticObjective:
    """Loss and gradient as scikit-learn's ``MLP._loss_grad_lbfgs`` computes them, bit
    for bit, into buffers allocated once per fit.

    Written operation for operation after scikit-learn's ``_backprop``: forward with
    the same matrix products and in-place activations, the loss from
    ``LOSS_FUNCTIONS`` plus ``0.5 * alpha * sum(w . w) / weight_sum``, the output
    delta ``prediction - y`` (times the sample weights), then layer by layer
    ``a^T delta``, ``+ alpha * W``, ``/ weight_sum`` and ``sum(delta, axis=0) /
    weight_sum``. Multi-output squared error sums over outputs (see
    :func:`_squared_loss_summed`).

    Each step calls the numpy function scikit-learn's step calls, on operands of the
    same dtypes, shapes and memory order, with ``out=`` a preallocated buffer instead
    of a new array (``np.matmul(a, b, out=c)`` runs the BLAS call of ``a @ b``; a ufunc
    writes the same bits wherever its output goes). The gradient is computed in place
    in one flat vector (the per-layer gradients are views into it), so nothing is
    packed. On large batches the steps a loop can repeat bit for bit run compiled
    (:mod:`fastbp._exact_steps`: comparisons, one IEEE operation per element, numpy's
    sums in numpy's order, the log losses' xlogy), fused where one pass serves
    several (ReLU with its intercept; ReLU's derivative, and the output delta, with
    their column sums, which is the intercept gradient); numpy's SIMD ``exp`` and
    ``tanh`` and the matrix products stay numpy's, whose rounding a loop would not
    repeat.

    Parameters
    ----------
    layout : NetworkLayout
    X : ndarray or sparse matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_outputs)
    sample_weight : ndarray of shape (n_samples,) or None
    activation : str
        One of scikit-learn's hidden activations.
    loss : str
        'squared_error', 'poisson', 'log_loss' or 'binary_log_loss'.
    alpha : float
    """

    def __init__(self, layout, X, y, sample_weight, activation, loss, alpha):
        self.layout = layout
        self.X = X
        self.y = y
        self.sample_weight = sample_weight
        self.activation = activation
        self.output_activation = OUTPUT_ACTIVATIONS[loss]
        self.loss = loss
        self.loss_function = (
            _squared_loss_summed if loss == "squared_error" else LOSS_FUNCTIONS[loss]
        )
        self.alpha = alpha
        self.weight_sum = X.shape[0] if sample_weight is None else sample_weight.sum()
        self.dtype = dtype = np.dtype(X.dtype)
        self.sparse = sp.issparse(X)
        n_samples = X.shape[0]
        units = [int(units) for units in layout.layer_units]
        self.n_layers = len(units)
        # The dtypes numpy gives each step's result: activations take the data's; the
        # deltas, and so the gradient, y's too (a float64 target of a float32 model
        # makes them float64, as in scikit-learn's arithmetic); alpha * W, alpha's too.
        delta_dtype = np.result_type(dtype, y.dtype)
        penalty_dtype = np.multiply(alpha, np.zeros(1, dtype)).dtype
        self.activations = [X] + [np.empty((n_samples, n), dtype) for n in units[1:]]
        self.deltas = [np.empty((n_samples, n), delta_dtype) for n in units[1:]]
        self.gradient = np.empty(layout.n_params, delta_dtype)
        self.coef_grads, self.intercept_grads = layout.views(self.gradient)
        # y in the deltas' dtype: the cast np.subtract(prediction, y) makes (exact)
        self.delta_targets = y if y.dtype == delta_dtype else y.astype(delta_dtype)
        self.penalties = [np.empty(g.shape, penalty_dtype) for g in self.coef_grads]
        # scratch for the derivatives that need a temporary (1 - Z**2, 1 - Z)
        self.derivative_scratch = None
        if activation in ("tanh", "logistic"):
            self.derivative_scratch = [np.empty((n_samples, n), dtype) for n in units[1:-1]]
        self.derivative_summed = DERIVATIVES_SUMMED_INTO[activation]
        self.relu = activation == "relu"
        self.steps = _NumpySteps
        if _takes_compiled_steps(n_samples * max(units[1:])):
            from fastbp import _exact_steps  # loaded by the fits it serves

            self.steps = _exact_steps
        # Per layer, the steps that write its delta's column sums: numpy's where the
        # layer has one unit (numpy sums one column pairwise; the compiled steps leave
        # that to it), and its softmax's, where rows are longer than 128.
        self.summing_steps = [_NumpySteps if n < 2 else self.steps for n in units[1:]]
        self.softmax_steps = _NumpySteps if units[-1] > 128 else self.steps
        # A product whose inner dimension is 1 (the delta of a single output times
        # the last weights, transposed) is numpy's plain loop, not BLAS, except one
        # value times one value (numpy's dot).
        self.outer_backward = units[-1] == 1 and not (n_samples == 1 and units[-2] == 1)
        self.weight_column = None if sample_weight is None else sample_weight.reshape(-1, 1)
        self.softmax_rows = self.softmax_scratch = None
        if self.output_activation == "softmax":
            self.softmax_rows = np.empty(n_samples, dtype)
            self.softmax_scratch = np.empty((n_samples, units[-1]), dtype)
        self.loss_buffers = _loss_buffers(loss, y, sample_weight, dtype, units[-1])
        self._viewed = None
        self._views = None

    def _parameter_views(self, params):
        """Per-layer views of ``params`` (made once for the buffer a fit passes at
        every call)."""
        if params is not self._viewed:
            coefs, intercepts = self.layout.views(params)
            self._views = coefs, intercepts, [coef.ravel() for coef in coefs]
            self._viewed = params
        return self._views

    def __call__(self, params):
        """Return ``(loss, gradient)`` at ``params`` (flat, the model's dtype).

        The gradient is a view of an internal buffer, overwritten by the next call.
        """
        if params.dtype != self.dtype:
            params = params.astype(self.dtype)
        coefs, intercepts, flat_coefs = self._parameter_views(params)
        n_layers = self.n_layers
        activations = self.activations
        # Forward propagate
        hidden_activation = ACTIVATIONS[self.activation]
        for i in range(n_layers - 1):
            values = activations[i + 1]
            if i == 0 and self.sparse:
                np.copyto(values, safe_sparse_dot(self.X, coefs[0]))
            else:
                np.matmul(activations[i], coefs[i], out=values)
            if i + 1 == n_layers - 1:
                _checked(self.steps.add_intercept(values, intercepts[i]))  # values += b
            elif self.relu:  # values += b; np.maximum(values, 0, out=values)
                _checked(self.steps.add_intercept_relu(values, intercepts[i]))
            else:
                _checked(self.steps.add_intercept(values, intercepts[i]))
                hidden_activation(values)
        self._output_activation(activations[-1])

        loss = self._loss(activations[-1])
        values = 0
        for s in flat_coefs:
            values += np.dot(s, s)
        sw_sum = self.weight_sum
        loss += (0.5 * self.alpha) * values / sw_sum

        # Backward propagate: the canonical output activation makes the output delta
        # simply prediction - target. Each delta's column sums (the intercept
        # gradient's np.sum(delta, axis=0)) are taken by the step that writes the
        # delta, while it is in cache.
        last = n_layers - 2
        deltas, intercept_grads = self.deltas, self.intercept_grads
        if self.weight_column is None:
            _checked(
                self.summing_steps[last].subtract_summed(
                    activations[-1], self.delta_targets, deltas[last], intercept_grads[last]
                )
            )
        else:
            np.subtract(activations[-1], self.delta_targets, out=deltas[last])
            deltas[last] *= self.weight_column
            _checked(self.summing_steps[last].column_sums(deltas[last], intercept_grads[last]))
        self._layer_gradient(last, coefs)
        for i in range(last, 0, -1):
            self._hidden_delta(i, coefs)
            self._layer_gradient(i - 1, coefs)
        return loss, self.gradient

    def _hidden_delta(self, layer, coefs):
        """``deltas[layer - 1]``: the next layer's delta times its weights, transposed,
        times the derivative of the activation; its column sums into the intercept
        gradient."""
        deltas, outputs = self.deltas, self.activations[layer]
        sums = self.intercept_grads[layer - 1]
        if layer == self.n_layers - 2 and self.outer_backward:
            column, row = deltas[layer].ravel(), coefs[layer].ravel()
            if self.relu:  # one pass for the product, the derivative and the sums
                _checked(
                    self.summing_steps[layer - 1].outer_relu_derivative_summed(
                        column, row, outputs, deltas[layer - 1], sums
                    )
                )
                return
            _checked(self.steps.outer_product(column, row, deltas[layer - 1]))
        else:
            np.matmul(deltas[layer], coefs[layer].T, out=deltas[layer - 1])
        self.derivative_summed(self, layer, outputs, deltas[layer - 1], sums)

    def _layer_gradient(self, layer, coefs):
        """The layer's gradient, its intercept part's column sums already taken."""
        sw_sum = self.weight_sum
        coef_grad = self.coef_grads[layer]
        delta = self.deltas[layer]
        if layer == 0 and self.sparse:
            np.copyto(coef_grad, safe_sparse_dot(self.X.T, delta))
        else:
            np.matmul(self.activations[layer].T, delta, out=coef_grad)
        penalty = self.penalties[layer]
        np.multiply(self.alpha, coefs[layer], out=penalty)
        coef_grad += penalty
        coef_grad /= sw_sum
        self.intercept_grads[layer] /= sw_sum  # np.sum(delta, axis=0) / sw_sum

    def _output_activation(self, values):
        if self.output_activation != "softmax":
            ACTIVATIONS[self.output_activation](values)
            return
        # scikit-learn's inplace_softmax, into the preallocated row and scratch buffers
        # (the maximum, the subtraction, numpy's pairwise row sums and the division
        # compiled: exact; numpy's SIMD exp kept: a loop would round it differently)
        rows, scratch = self.softmax_rows, self.softmax_scratch
        _checked(self.steps.subtract_row_max(values, scratch))  # tmp = X - max(X, 1)
        np.exp(scratch, out=values)
        # values /= values.sum(axis=1)[:, None]
        _checked(self.softmax_steps.normalize_rows(values, rows))

    def _loss(self, y_pred):
        buffers = self.loss_buffers
        if buffers is None:
            return self.loss_function(self.y, y_pred, self.sample_weight)
        summing = self.summing_steps[-1]
        loss = _LOSSES_INTO[self.loss](self.y, y_pred, buffers, self.steps, summing)
        return np.float64(loss)


#: Values in the widest layer of the whole batch from which the objective runs its
#: element-wise steps compiled (fastbp/_exact_steps.py) rather than with numpy, from
#: a process's first fit on.
COMPILED_STEPS_MIN_VALUES = 1 << 14

#: Below that size, the fits a process runs with numpy's steps before it loads the
#: compiled ones. Loading them costs a process 70-100 ms once, more than one small
#: fit saves; from then on they run small fits 1.3x faster (each is one call where
#: numpy makes two to four, each call a microsecond or two on arrays this small):
#: the 15 fits of scikit-learn's plot_mlp_alpha example took 0.50 s instead of 0.65
#: (measured, CPU time, bit-identical), and the whole example's process no longer.
NUMPY_STEPS_SMALL_FITS = 1

_small_fits = 0  # small fits this process has run (a count; races only move a load)


def _takes_compiled_steps(n_values):
    """Whether a fit whose widest layer holds ``n_values`` values over the batch runs
    the compiled steps (counting it among the small fits where it is one)."""
    global _small_fits
    if n_values >= COMPILED_STEPS_MIN_VALUES:
        return True
    _small_fits += 1
    return _small_fits > NUMPY_STEPS_SMALL_FITS


class _NumpySteps:
    """The steps of :mod:`fastbp._exact_steps`, as scikit-learn writes them, for
    small batches (same arguments, same bits; True: the arrays fit)."""

    @staticmethod
    def add_intercept(values, intercept):
        values += intercept
        return True

    @staticmethod
    def add_intercept_relu(values, intercept):
        values += intercept
        np.maximum(values, 0, out=values)  # inplace_relu
        return True

    @staticmethod
    def column_sums(values, sums):
        np.add.reduce(values, axis=0, out=sums)  # np.sum(values, axis=0)
        return True

    @staticmethod
    def relu_derivative_summed(outputs, deltas, sums):
        deltas[outputs == 0] = 0
        np.add.reduce(deltas, axis=0, out=sums)
        return True

    @staticmethod
    def subtract_summed(predictions, targets, deltas, sums):
        np.subtract(predictions, targets, out=deltas)
        np.add.reduce(deltas, axis=0, out=sums)
        return True

    @staticmethod
    def outer_product(column, row, out):
        np.matmul(column[:, np.newaxis], row[np.newaxis, :], out=out)
        return True

    @staticmethod
    def outer_relu_derivative_summed(column, row, outputs, deltas, sums):
        np.matmul(column[:, np.newaxis], row[np.newaxis, :], out=deltas)
        deltas[outputs == 0] = 0
        np.add.reduce(deltas, axis=0, out=sums)
        return True

    @staticmethod
    def subtract_row_max(values, out):
        np.subtract(values, values.max(axis=1)[:, np.newaxis], out=out)
        return True

    @staticmethod
    def normalize_rows(values, sums):
        np.add.reduce(values, axis=1, out=sums)  # values.sum(axis=1)
        values /= sums[:, np.newaxis]
        return True

    @staticmethod
    def log_loss_terms(targets, probabilities, low, high, terms):
        clipped = np.maximum(probabilities, low, out=terms)  # np.clip: maximum,
        np.minimum(clipped, high, out=clipped)  # then minimum
        xlogy(targets, clipped, out=terms)
        return True

    @staticmethod
    def binary_log_loss_terms(targets, complements, probabilities, low, high, terms, scratch):
        clipped = np.maximum(probabilities, low, out=terms)
        np.minimum(clipped, high, out=clipped)
        complement = np.subtract(1, clipped, out=scratch)
        xlogy(targets, clipped, out=terms)
        xlogy(complements, complement, out=complement)
        terms += complement
        return True

    @staticmethod
    def column_means(terms, means):
        np.add.reduce(terms, axis=0, out=means)
        means /= terms.shape[0]
        return True


OUTPUT_ACTIVATIONS = {
    "squared_error": "identity",
    "poisson": "exp",
    "log_loss": "softmax",
    "binary_log_loss": "logistic",
}


# ------------------------------------------------------------------------------------
# The hidden derivatives, as scikit-learn's DERIVATIVES compute them, without
# temporaries, each followed by the column sums of the delta it leaves (the
# intercept gradient's np.sum(delta, axis=0)): ``(objective, layer, Z, delta,
# sums)``, ``delta`` and ``sums`` written in place.
# ------------------------------------------------------------------------------------
def _checked(fitted):
    """A compiled step returns False instead of indexing outside arrays that do not
    fit each other (they always do: the objective made them)."""
    if not fitted:  # pragma: no cover - shapes are the objective's own
        raise AssertionError("an exact L-BFGS step got arrays of shapes that do not fit")


def _relu_derivative_summed(objective, layer, outputs, delta, sums):
    # delta[Z == 0] = 0
    _checked(objective.summing_steps[layer - 1].relu_derivative_summed(outputs, delta, sums))


def _tanh_derivative_summed(objective, layer, outputs, delta, sums):
    # delta *= 1 - Z**2
    scratch = objective.derivative_scratch[layer - 1]
    np.square(outputs, out=scratch)
    np.subtract(1, scratch, out=scratch)
    delta *= scratch
    _checked(objective.summing_steps[layer - 1].column_sums(delta, sums))


def _logistic_derivative_summed(objective, layer, outputs, delta, sums):
    # delta *= Z; delta *= 1 - Z
    delta *= outputs
    scratch = objective.derivative_scratch[layer - 1]
    np.subtract(1, outputs, out=scratch)
    delta *= scratch
    _checked(objective.summing_steps[layer - 1].column_sums(delta, sums))


def _identity_derivative_summed(objective, layer, outputs, delta, sums):
    _checked(objective.summing_steps[layer - 1].column_sums(delta, sums))


DERIVATIVES_SUMMED_INTO = {
    "identity": _identity_derivative_summed,
    "tanh": _tanh_derivative_summed,
    "logistic": _logistic_derivative_summed,
    "relu": _relu_derivative_summed,
}


# ------------------------------------------------------------------------------------
# The losses, as scikit-learn's LOSS_FUNCTIONS compute them, into preallocated
# buffers. Only for float64 data without sample weights: then every operand is
# float64 and np.average(a, axis=0) is a.mean(axis=0), numpy's sum along axis 0
# divided by the row count (float64 either way). Other cases call scikit-learn's
# functions themselves (see _loss_buffers).
# ------------------------------------------------------------------------------------
class _LossBuffers:
    def __init__(self, loss, y):
        self.terms = np.empty(y.shape, np.float64)
        self.scratch = np.empty(y.shape, np.float64)
        self.columns = np.empty(y.shape[1], np.float64)
        eps = np.finfo(np.float64).eps
        self.low, self.high = eps, 1 - eps
        if loss == "binary_log_loss":
            self.one_minus_y = 1 - y  # the array scikit-learn makes at each call


def _loss_buffers(loss, y, sample_weight, dtype, n_outputs):
    """The buffers of the loss's ``out=`` form, or None where scikit-learn's own
    function is called instead."""
    if (
        sample_weight is not None
        or dtype != np.float64
        or y.dtype not in (np.dtype(bool), np.dtype(np.float64))
        or (loss == "log_loss" and n_outputs < 2)
        or loss not in _LOSSES_INTO
    ):
        return None
    return _LossBuffers(loss, y)


# Each loss: ``(y_true, y_pred, buffers, steps, summing)``, ``summing`` the steps that
# sum the output layer's columns.
def _mean_over_samples_summed(terms, buffers, summing):
    """``terms.mean(axis=0).sum()`` (np.average without weights), in numpy's order."""
    _checked(summing.column_means(terms, buffers.columns))
    return np.add.reduce(buffers.columns)


def _log_loss_into(y_true, y_prob, buffers, steps, summing):
    # -np.average(xlogy(y_true, np.clip(y_prob, eps, 1 - eps)), axis=0).sum()
    terms = buffers.terms
    _checked(steps.log_loss_terms(y_true, y_prob, buffers.low, buffers.high, terms))
    return -_mean_over_samples_summed(terms, buffers, summing)


def _binary_log_loss_into(y_true, y_prob, buffers, steps, summing):
    # -np.average(xlogy(y, p) + xlogy(1 - y, 1 - p), axis=0).sum(), p clipped
    terms = buffers.terms
    _checked(
        steps.binary_log_loss_terms(
            y_true, buffers.one_minus_y, y_prob, buffers.low, buffers.high, terms,
            buffers.scratch,
        )
    )  # fmt: skip
    return -_mean_over_samples_summed(terms, buffers, summing)


def _squared_loss_summed_into(y_true, y_pred, buffers, steps, summing):
    # 0.5 * np.average((y_true - y_pred) ** 2, axis=0).sum()
    difference = np.subtract(y_true, y_pred, out=buffers.terms)
    np.square(difference, out=difference)
    return 0.5 * _mean_over_samples_summed(difference, buffers, summing)


def _poisson_loss_into(y_true, y_pred, buffers, steps, summing):
    # np.average(xlogy(y_true, y_true / y_pred) - y_true + y_pred, axis=0).sum()
    terms = np.divide(y_true, y_pred, out=buffers.terms)
    xlogy(y_true, terms, out=terms)
    terms -= y_true
    terms += y_pred
    return _mean_over_samples_summed(terms, buffers, summing)


_LOSSES_INTO = {
    "log_loss": _log_loss_into,
    "binary_log_loss": _binary_log_loss_into,
    "squared_error": _squared_loss_summed_into,
    "poisson": _poisson_loss_into,
}
