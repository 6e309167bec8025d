"""The shape of the kernels' boundary: entry points written from the named tuples,
optimizer state declared by each optimizer, prediction as its own kernel."""

import ast
import inspect
import os
import pickle
import subprocess
import sys
import textwrap
from typing import NamedTuple

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fastbp import BackpropClassifier, _common_epochs, _kernels
from fastbp._kernel_arguments import (
    Data,
    Network,
    Settings,
    Workspace,
    _function_tree,
    entry_point,
)
from fastbp._optimizer_steps import STATE_ARRAYS
from fastbp._optimizers import OPTIMIZERS


class _Pair(NamedTuple):
    first: np.ndarray
    second: int


def _body(pair, scale):
    return pair.first * scale + pair.second


def test_an_entry_point_takes_the_fields_and_rebuilds_the_tuples():
    function = entry_point(_body, _Pair, "scale")
    assert function.__name__ == "body"
    assert function.arguments == ("first", "second", "scale")
    assert function(np.arange(3), 10, 2).tolist() == [10, 12, 14]
    assert function(*_Pair(np.arange(2), 1), 3).tolist() == [1, 4]


def test_the_training_entry_points_take_the_named_tuples_fields_in_order():
    def fields(*groups):
        return tuple(
            name for group in groups for name in (group._fields if not isinstance(group, str)
                                                  else (group,))
        )  # fmt: skip

    tail = ("adam_step", "dropout_seeds", "loss_sums", "steps", "stopping")
    # the common path's: the full kernel's, less the rare paths
    assert _common_epochs.common_epochs.py_func.arguments == fields(
        Data, Network, Workspace, "params", "state", "orders", "batch_size", Settings, *tail
    )
    assert _kernels.epoch_kernel.py_func.arguments == fields(
        Data, Network, Workspace, "rare", "params", "state", "orders", "batch_size",
        Settings, *tail,
    )  # fmt: skip
    assert _kernels.predict_forward.py_func.arguments == fields(
        "X", "rare", "params", Network, "loss_code", "out"
    )


def _read_by_inspect(body):
    source, first = inspect.getsourcelines(body)
    tree = ast.parse(textwrap.dedent("".join(source)))
    ast.increment_lineno(tree, first - 1)
    return tree.body[0]


def _decorated(function):
    return function


@_decorated
def _decorated_body(pair, scale):
    return pair.first * scale


def _body_with_a_flush_left_string(pair, scale):
    text = """
flush left: the scan stops here, the parse fails, inspect reads it"""
    return pair.first * scale + len(text)


@pytest.mark.parametrize(
    ("body", "scanned"),
    [
        (_common_epochs._common_epochs, True),
        (_kernels._epoch_kernel, True),
        (_kernels._predict_forward, True),
        (_body, True),
        (_decorated_body, False),
        (_body_with_a_flush_left_string, False),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_an_entry_points_body_is_read_as_inspect_reads_it(body, scanned, monkeypatch):
    # The scan of the file's lines that replaced inspect.getsourcelines (at every
    # import: it tokenizes) gives the same tree on the same lines, or hands the
    # function to inspect.
    expected = ast.dump(_read_by_inspect(body), include_attributes=True)
    read_by_inspect = []
    getsourcelines = inspect.getsourcelines
    monkeypatch.setattr(
        inspect,
        "getsourcelines",
        lambda function: read_by_inspect.append(function) or getsourcelines(function),
    )
    assert ast.dump(_function_tree(body), include_attributes=True) == expected
    assert read_by_inspect == ([] if scanned else [body])


def test_an_entry_point_defined_inside_a_function_is_read_by_inspect():
    def local(pair, scale):
        return pair.first - scale

    function = entry_point(local, _Pair, "scale")
    assert function(np.arange(3), 0, 1).tolist() == [-1, 0, 1]
    assert function.__code__.co_firstlineno == local.__code__.co_firstlineno


@pytest.mark.parametrize("solver", sorted(OPTIMIZERS))
def test_an_optimizers_state_arrays_are_the_rows_the_kernel_updates(solver):
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    clf = BackpropClassifier(hidden_layer_sizes=(4,), solver=solver, max_iter=2,
                             random_state=0).fit(X, y)  # fmt: skip
    optimizer = clf._optimizer
    names = STATE_ARRAYS[optimizer.solver_code]
    assert optimizer._STATE_ARRAYS == names
    matrix = optimizer.state_arrays()
    assert matrix.shape == (len(names), clf._fitted_network().params.shape[0])
    for row, name in enumerate(names):
        array = getattr(optimizer, name)
        assert np.shares_memory(array, matrix[row])
        assert np.any(array != 0), name  # the kernel wrote the state the class holds


@pytest.mark.parametrize("solver", sorted(OPTIMIZERS))
def test_a_loaded_optimizer_state_trains_on_as_the_original(solver):
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = np.arange(40) % 2
    original = BackpropClassifier(hidden_layer_sizes=(4,), solver=solver, random_state=0)
    original.partial_fit(X, y, classes=[0, 1])
    loaded = pickle.loads(pickle.dumps(original))  # the state arrays apart, unpickled
    for estimator in (original, loaded):
        estimator.partial_fit(X, y)
        estimator.partial_fit(X, y)
    for a, b in zip(original.coefs_ + original.intercepts_, loaded.coefs_ + loaded.intercepts_):
        assert_array_equal(a, b)


@pytest.mark.slow  # compiles the kernels into an empty cache: a minute on two busy cores
def test_after_a_cold_fit_the_first_prediction_compiles_nothing(tmp_path):
    script = textwrap.dedent(
        """
        import time, warnings
        import numpy as np
        from fastbp import BackpropClassifier, _kernels
        warnings.simplefilter("ignore")
        X = np.random.RandomState(0).normal(size=(50, 4))
        clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=2).fit(X, np.arange(50) % 3)
        compiled = len(_kernels.predict_forward.signatures)
        start = time.perf_counter()
        clf.predict_proba(X)
        print(compiled, len(_kernels.predict_forward.signatures), time.perf_counter() - start)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
        env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    before, after, seconds = result.stdout.split()
    assert before == after == "1"  # prepared during the fit, not at the prediction
    assert float(seconds) < 0.5
