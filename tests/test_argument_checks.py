"""The compiled entry points refuse arguments that do not fit their layout.

Python checks every shape before a compiled call; the kernels check again, before
their loops (``fastbp._argument_checks``), and compute nothing when an array is too
short, an offset does not chain or a row index is out of range. These tests call the
entry points with real arguments (captured from a fit) and one argument damaged at a
time; each must be refused, never read or written out of bounds. They run in
subprocesses: without a check, the damaged call could corrupt memory or crash.
"""

import subprocess
import sys
import textwrap

import pytest

CAPTURE = """
import warnings
import numpy as np
import scipy.sparse as sp
from fastbp import BackpropClassifier, _kernels, _stochastic
from fastbp._network import read_only
from fastbp._optimizers import FullBatchObjective
warnings.simplefilter("ignore")

captured = []
original = _kernels.run_epochs
def spy(*arguments):
    captured.append(arguments)
    return original(*arguments)
_stochastic._kernels.run_epochs = spy

rng = np.random.RandomState(0)
X = rng.rand(40, 5)
y = (X[:, 0] > 0.5).astype(int)

def refused(call):
    try:
        call()
    except RuntimeError as error:
        assert "refused" in str(error), error
        return True
    return False

def check_all(arguments, damaged):
    # The undamaged call runs; each damaged one is refused.
    arguments[0](*arguments[1:])
    failures = [name for name, call in damaged.items() if not refused(call)]
    assert not failures, f"not refused: {failures}"
    print("refused", len(damaged))
"""

TRAINING = """
BackpropClassifier(hidden_layer_sizes=(6,), max_iter=1, random_state=0, **OPTIONS).fit(
    INPUT(X), y, sample_weight=np.ones(len(y)))
(data, net, work, rare, params, state, orders, batch, settings, step, seeds, sums, steps,
 stopping) = captured[-1]
assert (rare is None) == COMMON

def run(**changes):
    a = dict(data=data, net=net, work=work, rare=rare, params=params, state=state,
             orders=orders, batch=batch, settings=settings, step=step, seeds=seeds,
             sums=sums, steps=steps, stopping=stopping)
    a.update(changes)
    return lambda: _kernels.run_epochs(
        a["data"], a["net"], a["work"], a["rare"], a["params"].copy(),
        a["state"].copy(), a["orders"], a["batch"], a["settings"],
        a["step"], a["seeds"], a["sums"], a["steps"], a["stopping"])

n = data.Y.shape[0]
beyond = orders.copy(); beyond[0, -1] = n
negative = orders.copy(); negative[0, 0] = -1
damaged = {
    "state rows": run(state=state[:1]),
    "state columns": run(state=state[:, :-1]),
    "params": run(params=params[:-1]),
    "row beyond the data": run(orders=beyond),
    "negative row": run(orders=negative),
    "activations": run(work=work._replace(activations=work.activations[:3])),
    "deltas": run(work=work._replace(deltas=work.deltas[:3])),
    "gradients": run(work=work._replace(grads=work.grads[:-1])),
    "batch rows": run(batch=work.x_batch.shape[0] + 1),
    "targets' width": run(data=data._replace(Y=data.Y[:, :0])),
    "sample weights": run(data=data._replace(sample_weight=data.sample_weight[:-1])),
    "coefficient offsets": run(net=net._replace(coef_offsets=net.coef_offsets + 1)),
    "intercept offsets": run(net=net._replace(intercept_offsets=net.intercept_offsets[:0])),
    "units": run(net=net._replace(units=net.units[:1])),
    "per-epoch losses": run(sums=sums[:0]),
    "stopping vector": run(stopping=stopping[:2]),
}
if not COMMON:
    damaged["dropout seeds"] = run(seeds=seeds[:0])
    damaged["pre-activations"] = run(rare=rare._replace(pre_activations=rare.pre_activations[:2]))
    damaged["dropout masks"] = run(rare=rare._replace(masks=rare.masks[:2]))
    bad_indices = rare.csr_indices.copy(); bad_indices[0] = 10**6
    damaged["sparse column"] = run(rare=rare._replace(csr_indices=bad_indices))
    damaged["row pointers"] = run(rare=rare._replace(csr_indptr=rare.csr_indptr[:-1]))
check_all([run()], damaged)
"""


def _run(code):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CAPTURE) + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"exit code {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


@pytest.mark.parametrize(
    "options, sparse",
    [({}, False), ({"dropout": 0.2, "activation": "tanh"}, True)],
    ids=["common-path kernel", "full kernel, sparse input and dropout"],
)
def test_epoch_kernels_refuse_arguments_that_do_not_fit(options, sparse):
    code = TRAINING.replace("OPTIONS", repr(options))
    code = code.replace("INPUT", "sp.csr_matrix" if sparse else "np.asarray")
    code = code.replace("COMMON", repr(not sparse and not options))
    assert "refused" in _run(code)


def test_prediction_kernels_refuse_arguments_that_do_not_fit():
    out = _run(
        """
        clf = BackpropClassifier(hidden_layer_sizes=(6,), max_iter=1, random_state=0)
        model = clf.fit(X, y)._fitted_network()
        params, net, loss = model.params, model.net, model.loss_code
        Xr = read_only(np.ascontiguousarray(X))

        def forward(X=Xr, params=params, net=net, out=None):
            out = np.empty((len(X), model.n_outputs)) if out is None else out
            return _kernels.predict_forward(X, None, params, *net, loss, out)[0]

        for predict in (forward,):
            assert predict() == 1
            cases = {
                "params": predict(params=params[:-1]),
                "out rows": predict(out=np.empty((len(X) - 1, model.n_outputs))),
                "out columns": predict(out=np.empty((len(X), model.n_outputs + 1))),
                "X width": predict(X=read_only(np.ascontiguousarray(X[:, :-1]))),
                "offsets": predict(net=net._replace(coef_offsets=net.coef_offsets[:1])),
                "units": predict(net=net._replace(units=net.units[:1])),
                "codes": predict(net=net._replace(hidden_codes=net.hidden_codes[:1])),
            }
            not_refused = [name for name, status in cases.items() if status != -1]
            assert not not_refused, (predict.__name__, not_refused)
        print("refused")
        """
    )
    assert "refused" in out


def test_full_gradient_kernel_refuses_arguments_that_do_not_fit():
    out = _run(
        """
        from fastbp._network import NetworkLayout
        layout = NetworkLayout([5, 6, 1])
        objective = FullBatchObjective(layout, X, y[:, None].astype(float), None, "tanh",
                                       "binary_log_loss", 1e-4, 16)
        params = np.zeros(layout.n_params)
        def damaged(**changes):
            def call():
                saved = dict(vars(objective))
                vars(objective).update(changes)
                try:
                    objective(params)
                finally:
                    vars(objective).update(saved)
            return call
        check_all([objective, params], {
            "chunk gradients": damaged(chunk_grads=objective.chunk_grads[:-1]),
            "row order": damaged(order=objective.order + 1),
            "chunk rows": damaged(chunk_rows=objective.chunk_rows + 1),
            "workspace": damaged(work=objective.work._replace(deltas=objective.work.deltas[:1])),
            "params": lambda: objective(params[:-1]),
        })
        """
    )
    assert "refused 5" in out
