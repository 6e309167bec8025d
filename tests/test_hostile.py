"""The hostile user's cases of issue 23, each in an interpreter of its own or shared.

Every test runs its case in a separate interpreter, so that a crash (heap corruption,
abort, segfault) or a hang fails that test with the child's exit status and the
tail of its output, instead of killing pytest. The cases that could corrupt memory
when their rule is broken, that start threads, or that need interpreter options run
in a fresh interpreter each; the others run one after another in one shared
interpreter, each in its own namespace, and a crash there fails the case that was
running and sends the cases not yet reached to interpreters of their own (see
``shared``). The child asserts the rule itself and
ends by printing ``HOSTILE-OK``; the test passes only on exit status 0 with that
marker. Each test names the item of the issue it covers, and says the rule that the
code must follow (the issue's "one owner for the fitted state"):

* a fitted model predicts with the options it was fitted with; ``set_params``
  affects the next fit only, and every reader of the model (predict, pickle, deepcopy,
  skops, ``to_sklearn``, ONNX) follows that rule;
* loading (pickle, skops) validates the state and refuses an inconsistent one with a
  ``ValueError``, so a file cannot smuggle lengths into a compiled kernel;
* threads see the old model or the new one, never a mix, and nothing crashes;
* a failed call leaves the estimator as it was; a wrong input gets an error that
  names it.

Four cases take over 10 s on two cores and are marked ``slow`` (``-m 'not slow'``
skips them): the two interleaving sweeps (items 3 and 8) and the two that export to
ONNX (item 4). A case in its own interpreter takes 5-10 s, most of it the child's
imports; a shared case, its own work (well under a second to a few seconds).

The thread cases are deterministic: ``hostile_cases/stepping.py`` pauses a ``fit``
after every call made from fastbp's code and runs the concurrent reader (or writer)
at each pause, instead of hoping a free-running loop lands in the window.

Running against another checkout
--------------------------------
The children import the installed fastbp by default. To run the suite against
another source tree (say, to check that each test fails on the code before a fix)::

    FASTBP_HOSTILE_SRC=/path/to/checkout python -m pytest tests/test_hostile.py

The checkout is put first on the children's ``PYTHONPATH``; each child checks that
fastbp was imported from there (the children run in a temporary directory, so the
current directory cannot shadow it).
"""

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

SOURCE_ENV = "FASTBP_HOSTILE_SRC"
HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile_cases")
OK_MARKER = "HOSTILE-OK"

# What every child starts with: the fastbp under test, small data, and check().
PRELUDE = '''
import os
import re
import sys
import warnings

import numpy as np

import fastbp

_source = os.environ.get("FASTBP_HOSTILE_SRC")
if _source:
    _package = os.path.abspath(fastbp.__file__)
    if not _package.startswith(os.path.join(os.path.abspath(_source), "")):
        sys.exit(f"fastbp was imported from {_package}, not from {_source}")

from sklearn.exceptions import ConvergenceWarning

warnings.filterwarnings("ignore", category=ConvergenceWarning)

from fastbp import BackpropClassifier, BackpropRegressor

RNG = np.random.RandomState(0)
X = RNG.rand(60, 4)
y_binary = (X[:, 0] > 0.5).astype(int)


def check(condition, message):
    """Fail the child (exit status 1) with ``message`` unless ``condition``."""
    if not condition:
        print("RULE BROKEN:", message)
        sys.stdout.flush()
        sys.exit(1)


def raised(call):
    """The exception ``call()`` raises, or None."""
    try:
        call()
    except Exception as exc:
        return exc
    return None


def describe(exc):
    return "no exception" if exc is None else f"{type(exc).__name__}: {exc}"
'''


def _code(body, setup=""):
    """The child's whole program for a case: the prelude, the setup, the body, and the
    marker printed when the body ends without breaking a rule."""
    return PRELUDE + textwrap.dedent(setup) + textwrap.dedent(body) + f"\nprint({OK_MARKER!r})\n"


def _child_env():
    paths = [HELPERS, os.environ.get("PYTHONPATH", "")]
    source = os.environ.get(SOURCE_ENV)
    if source:
        paths.insert(0, os.path.abspath(source))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.fixture
def child(tmp_path):
    """Run a hostile case in a fresh interpreter (in ``tmp_path``); fail the test on a
    crash, a hang, a non-zero exit or a missing ``HOSTILE-OK``."""

    def run(body, setup="", timeout=120, python_options=()):
        try:
            result = subprocess.run(
                [sys.executable, *python_options, "-c", _code(body, setup)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_child_env(),
                cwd=tmp_path,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"the child hung (no exit within {timeout} s)\n{_tails(exc.stdout, exc.stderr)}",
                pytrace=False,
            )
        if result.returncode != 0 or OK_MARKER not in result.stdout:
            pytest.fail(
                f"the child {_exit_status(result.returncode)}\n"
                f"{_tails(result.stdout, result.stderr)}",
                pytrace=False,
            )
        return result.stdout

    return run


# ------------------------------------------------- cases that share one interpreter
# A child spends ~3.5 of its ~4 CPU seconds importing numpy, scipy, scikit-learn and
# numba. The cases that cannot corrupt memory when their rule is broken (the broken
# rule gives a wrong value or a missing exception, never a wrong length reaching a
# compiled kernel) and that start no threads run one after another in one
# interpreter, each with its own namespace (the prelude runs again for each) and its
# own working directory: @shared(body, setup) registers one, and its test reads the
# outcome with shared_child(). The cases that could crash (assigned weights or
# tampered state reaching a kernel), that start threads, or that need interpreter
# options keep their own process (child). Should the shared interpreter crash or hang
# all the same, the case it was running fails with the exit status and the output,
# and each case it did not reach runs in its own process as before.
SHARED_CASES = {}  # test name -> (body, setup)

# pytest-xdist sends every test of this module to one worker: a module-scoped fixture
# runs once per worker that has a test of its module.
pytestmark = pytest.mark.xdist_group("hostile")

SHARED_RUNNER = r"""
import contextlib, io, json, os, sys, traceback

with open(sys.argv[1]) as file:
    cases = json.load(file)
report = sys.stdout
for name, code in cases:
    os.mkdir(name)
    os.chdir(name)
    print("HOSTILE-CASE-START", name, file=report, flush=True)
    out, err = io.StringIO(), io.StringIO()
    status = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            exec(compile(code, f"<{name}>", "exec"), {"__name__": "__main__"})
        except SystemExit as exc:  # check() and sys.exit(...) in a case
            if isinstance(exc.code, int) or exc.code is None:
                status = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
    os.chdir("..")
    record = {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()}
    print("HOSTILE-CASE-END", json.dumps(record), file=report, flush=True)
"""


def _without_module_list(stderr):
    """faulthandler's report less its closing list of extension modules (a few
    thousand characters that would push the traceback out of the tail)."""
    return "".join(
        line
        for line in stderr.splitlines(keepends=True)
        if not line.startswith("Extension modules:")
    )


def shared(body, setup=""):
    """Register the decorated test's case to run in the shared interpreter."""

    def register(test):
        SHARED_CASES[test.__name__] = (body, setup)
        return test

    return register


@pytest.fixture(scope="module")
def shared_outcomes(request, tmp_path_factory):
    """Run the shared cases of this session's selected tests in one interpreter, in
    order: {test name: {"status", "stdout", "stderr"}} for each case that ended, and
    {"crashed": message} for the one that was running when the interpreter died or
    stopped answering (no case gets more than ``timeout`` seconds)."""
    names = [
        item.name
        for item in request.session.items
        if item.name in SHARED_CASES and getattr(item, "module", None) is request.module
    ]
    work = tmp_path_factory.mktemp("shared_cases")
    cases_file = work / "cases.json"
    cases_file.write_text(json.dumps([(name, _code(*SHARED_CASES[name])) for name in names]))
    process = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-c", SHARED_RUNNER, str(cases_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        cwd=work,
    )
    lines, stderr = queue.Queue(), []

    def read_stdout():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)  # the end of the output

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()
    outcomes, running, seen, timeout, problem = {}, None, [], 120, None
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            process.kill()
            problem = f"hung (no exit within {timeout} s)"
            break
        if line is None:
            process.wait()
            if process.returncode != 0 or running:
                problem = _exit_status(process.returncode)
            break
        seen.append(line)
        if line.startswith("HOSTILE-CASE-START "):
            running = line.split()[1]
        elif line.startswith("HOSTILE-CASE-END ") and running:
            outcomes[running], running = json.loads(line.split(" ", 1)[1]), None
    process.wait()
    running = running or (list(outcomes)[-1] if outcomes else None)  # a crash on exit
    if problem and running:
        outcomes[running] = {
            "crashed": f"the shared interpreter {problem} running this case\n"
            + _tails("".join(seen), _without_module_list("".join(stderr)))
        }
    return outcomes


@pytest.fixture
def shared_child(request, shared_outcomes, child):
    """The outcome of this test's shared case (see ``shared``): fails the test as
    ``child`` does; a case the shared interpreter did not reach runs in its own."""

    def run():
        name = request.node.name
        outcome = shared_outcomes.get(name)
        if outcome is None:
            return child(*SHARED_CASES[name])
        if "crashed" in outcome:
            pytest.fail(outcome["crashed"], pytrace=False)
        if outcome["status"] != 0 or OK_MARKER not in outcome["stdout"]:
            pytest.fail(
                f"the case {_exit_status(outcome['status'])} (in the shared interpreter)\n"
                f"{_tails(outcome['stdout'], outcome['stderr'])}",
                pytrace=False,
            )
        return outcome["stdout"]

    return run


def _exit_status(returncode):
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name} (a crash)"
    if returncode in (134, 139):
        return f"exited with {returncode} (a crash: abort or segfault)"
    if returncode == 0:
        return f"exited with 0 but did not print {OK_MARKER}"
    return f"exited with {returncode}"


def _tails(stdout, stderr, size=4000):
    def text(stream):
        if isinstance(stream, bytes):
            stream = stream.decode(errors="replace")
        return (stream or "")[-size:]

    return f"--- stdout (tail):\n{text(stdout)}\n--- stderr (tail):\n{text(stderr)}"


# ----------------------------------------------------- 1. assigned weights, optimizer
def test_1_assigned_weights_of_another_output_count_train_with_fresh_optimizer_state(child):
    """Item 1: weights of another output count, assigned to a fitted regressor, then
    partial_fit on targets of that width: it trains from those weights with fresh
    optimizer state, exactly as the same weights imported with from_sklearn do."""
    child(
        """
        Y3 = X[:, :3]
        reg = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
        reg.fit(X, X[:, 0])
        other = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=1)
        other.fit(X, Y3)
        reg.coefs_ = [coef.copy() for coef in other.coefs_]
        reg.intercepts_ = [intercept.copy() for intercept in other.intercepts_]
        error = raised(lambda: reg.partial_fit(X, Y3))
        check(error is None, f"partial_fit on the assigned weights: {describe(error)}")
        prediction = reg.predict(X)
        check(prediction.shape == (60, 3), f"prediction shape {prediction.shape}")
        check(np.isfinite(prediction).all(), "non-finite predictions")

        # The independent computation: the same weights, fresh optimizer state.
        expected = BackpropRegressor.from_sklearn(other.to_sklearn())
        expected.set_params(random_state=0)
        expected.partial_fit(X, Y3)
        for name in ("coefs_", "intercepts_"):
            for got, want in zip(getattr(reg, name), getattr(expected, name)):
                check(
                    np.allclose(got, want, rtol=1e-10, atol=1e-12),
                    f"{name} after partial_fit differ from a fresh-optimizer step by "
                    f"{np.abs(got - want).max()}",
                )
        """
    )


def test_1_bigger_assigned_network_then_partial_fit_trains_or_raises_value_error(child):
    """Item 1: set_params(hidden_layer_sizes=...) and the weights of a bigger network,
    then partial_fit (or the weights alone): never a crash; either it trains or it
    raises ValueError, and the model still predicts finite values of the right shape."""
    child(
        """
        import gc

        big = BackpropRegressor(hidden_layer_sizes=(9, 7), max_iter=5, random_state=1)
        big.fit(X, X[:, 0])
        outcomes = []
        for change_hidden_layer_sizes in (True, False):
            reg = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
            reg.fit(X, X[:, 0])
            if change_hidden_layer_sizes:
                reg.set_params(hidden_layer_sizes=(9, 7))
            reg.coefs_ = [coef.copy() for coef in big.coefs_]
            reg.intercepts_ = [intercept.copy() for intercept in big.intercepts_]
            for _ in range(5):
                error = raised(lambda: reg.partial_fit(X, X[:, 0]))
                check(
                    error is None or isinstance(error, ValueError),
                    f"partial_fit raised {describe(error)}",
                )
                outcomes.append(describe(error)[:60])
                prediction = reg.predict(X)
                check(prediction.shape == (60,), f"prediction shape {prediction.shape}")
                check(np.isfinite(prediction).all(), "non-finite predictions")
            gc.collect()  # heap corruption tends to show when memory is freed
        print(outcomes)
        """
    )


# ----------------------------------------------------- 2. optimizer state in a file
@shared(
    """
    import skops.io

    problems = []
    for solver, name in (
        ("adam", "first_moment"), ("adam", "second_moment"), ("sgd", "velocity"),
    ):
        reg = BackpropRegressor(
            hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0
        ).fit(X, X[:, 0])
        setattr(reg._optimizer, name, np.zeros(1))
        path = f"{solver}_{name}.skops"
        skops.io.dump(reg, path)
        error = raised(lambda: skops.io.load(path, trusted=fastbp.SKOPS_TRUSTED_TYPES))
        if not (isinstance(error, ValueError) and re.search("optimi[sz]er", str(error), re.I)):
            problems.append(f"{solver} {name} of length 1: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_2_skops_file_with_short_optimizer_state_is_refused_at_load(shared_child):
    """Item 2 (security): a .skops file, loaded the documented safe way, whose Adam
    moments or SGD velocity have length 1 is refused at load with a ValueError about
    the optimizer (never a write out of bounds at the next partial_fit)."""
    shared_child()


@shared(
    """
    import pickle

    problems = []
    for solver, name in (
        ("adam", "first_moment"), ("adam", "second_moment"), ("sgd", "velocity"),
    ):
        reg = BackpropRegressor(
            hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0
        ).fit(X, X[:, 0])
        setattr(reg._optimizer, name, np.zeros(1))
        data = pickle.dumps(reg)
        error = raised(lambda: pickle.loads(data))
        if not (isinstance(error, ValueError) and re.search("optimi[sz]er", str(error), re.I)):
            problems.append(f"{solver} {name} of length 1: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_2_pickle_with_short_optimizer_state_is_refused_at_load(shared_child):
    """Item 2: the same through pickle: length-1 Adam moments or SGD velocity give a
    ValueError about the optimizer at pickle.loads."""
    shared_child()


@shared(
    """
    import pickle

    import skops.io

    problems = []
    for solver, names in (
        ("adam", ("first_moment", "second_moment")), ("sgd", ("velocity",)),
    ):
        reg = BackpropRegressor(
            hidden_layer_sizes=(5,), solver=solver, max_iter=3, random_state=0
        ).fit(X, X[:, 0])
        for name in names:
            setattr(reg._optimizer, name, getattr(reg._optimizer, name).astype(np.float32))
        data = pickle.dumps(reg)
        error = raised(lambda: pickle.loads(data))
        if not isinstance(error, ValueError):
            problems.append(f"pickle, {solver} state in float32: {describe(error)}")
        skops.io.dump(reg, f"{solver}.skops")
        error = raised(
            lambda: skops.io.load(f"{solver}.skops", trusted=fastbp.SKOPS_TRUSTED_TYPES)
        )
        if not isinstance(error, ValueError):
            problems.append(f"skops, {solver} state in float32: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_2_optimizer_state_of_another_dtype_is_refused_at_load(shared_child):
    """Items 2 and 10: optimizer arrays of another dtype (float32 on a float64 model)
    are refused at load (pickle and skops) with a ValueError, instead of compiling a
    new kernel variant into the shared cache."""
    shared_child()


# ----------------------------------------------------- 3 and 8. fit against partial_fit
@pytest.mark.slow  # over 10 s on two cores
def test_3_refit_with_another_architecture_during_partial_fit_never_crashes(child):
    """Item 3: fit (with another architecture, via set_params and another target
    width) and partial_fit of one regressor in two threads, the second one at each
    point of the first: no crash, no hang, no exception but a ValueError naming an
    architecture mismatch; afterwards the model predicts."""
    child(
        """
        import gc

        from stepping import sweep

        architecture_error = re.compile("architecture|layer sizes", re.I)
        Y1, Y3 = X[:, 0], X[:, :3]
        shapes = {"big": ((7, 3), Y3), "small": ((5,), Y1)}
        reg = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)

        def fit_as(name):
            hidden_layer_sizes, target = shapes[name]
            reg.set_params(hidden_layer_sizes=hidden_layer_sizes)
            reg.fit(X, target)

        def partial_fit():
            reg.partial_fit(X, Y1 if reg.n_outputs_ == 1 else Y3)

        def allowed(error):
            return error is None or (
                isinstance(error, ValueError) and architecture_error.search(str(error))
            )

        problems = []
        for start, other in (("big", "small"), ("small", "big")):
            for work, observe in (
                (partial_fit, lambda: fit_as(other)),
                (lambda: fit_as(other), partial_fit),
            ):
                for position, outcome in sweep(lambda: fit_as(start), work, observe):
                    errors = [outcome.error, *outcome.observer_errors]
                    bad = [describe(error) for error in errors if not allowed(error)]
                    if bad:
                        problems.append(f"from {start}, pause {position}: {bad}")
                prediction = reg.predict(X)
                check(np.isfinite(prediction).all(), "non-finite predictions afterwards")
                check(
                    prediction.shape in ((60,), (60, 3)), f"prediction shape {prediction.shape}"
                )
        gc.collect()  # heap corruption tends to show when memory is freed
        check(not problems, problems[:10])
        """
    )


@pytest.mark.slow  # over 10 s on two cores
def test_8_fit_and_partial_fit_with_one_architecture_run_concurrently_without_error(child):
    """Item 8: fit and partial_fit of one regressor in two threads, with an unchanged
    architecture, the second one at each point of the first: no exception at all (no
    internal AssertionError), and the model predicts afterwards."""
    child(
        """
        from stepping import sweep

        reg = BackpropRegressor(
            hidden_layer_sizes=(5,), max_iter=50, n_iter_no_change=2, random_state=0
        )

        def fit():
            reg.fit(X, X[:, 0])

        def partial_fit():
            reg.partial_fit(X, X[:, 0])

        problems = []
        for work, observe in ((fit, partial_fit), (partial_fit, fit)):
            for position, outcome in sweep(fit, work, observe):
                errors = [outcome.error, *outcome.observer_errors]
                bad = [describe(error) for error in errors if error is not None]
                if bad:
                    problems.append(f"{work.__name__}, pause {position}: {bad}")
        prediction = reg.predict(X)
        check(np.isfinite(prediction).all() and prediction.shape == (60,), "bad predictions")
        check(not problems, problems[:10])
        """
    )


# ----------------------------------------------------- 4. options after fit
_READERS = """
import copy
import pickle

import onnxruntime
import skops.io
from skl2onnx import to_onnx


def readers(model):
    '''Every way to get predictions out of a fitted model, by name.'''
    def onnx(model):
        session = onnxruntime.InferenceSession(
            to_onnx(model, X[:1]).SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return session.run(None, {session.get_inputs()[0].name: X})[0]

    return {
        "predict": lambda: model.predict(X),
        "pickle": lambda: pickle.loads(pickle.dumps(model)).predict(X),
        "deepcopy": lambda: copy.deepcopy(model).predict(X),
        "skops": lambda: skops.io.loads(
            skops.io.dumps(model), trusted=fastbp.SKOPS_TRUSTED_TYPES
        ).predict(X),
        "to_sklearn": lambda: model.to_sklearn().predict(X),
        "onnx": lambda: onnx(model),
    }


def check_readers_agree(model, expected):
    problems = []
    for name, read in readers(model).items():
        try:
            got = np.asarray(read()).reshape(expected.shape)
        except Exception as exc:
            problems.append(f"{name}: {describe(exc)}")
            continue
        rtol, atol = (1e-5, 1e-5) if name == "onnx" else (1e-12, 0)
        if not np.allclose(got, expected, rtol=rtol, atol=atol):
            problems.append(f"{name}: differs by up to {np.abs(got - expected).max():.3g}")
    check(not problems, problems)
"""


@pytest.mark.slow  # over 10 s on two cores
@shared(
    setup=_READERS,
    body="""
    reg = BackpropRegressor(
        hidden_layer_sizes=(5,), learning_rate_init=0.05, max_iter=30, random_state=0
    ).fit(X, 3 * X[:, 0])
    before = reg.predict(X)
    reg.set_params(activation="tanh")
    check_readers_agree(reg, before)

    # set_params does affect the next fit.
    reg.fit(X, 3 * X[:, 0])
    fresh = BackpropRegressor(
        hidden_layer_sizes=(5,), activation="tanh", learning_rate_init=0.05, max_iter=30,
        random_state=0,
    ).fit(X, 3 * X[:, 0])
    check(np.allclose(reg.predict(X), fresh.predict(X), rtol=1e-12), "refit ignored tanh")
    """,
)
def test_4_activation_set_after_fit_changes_no_reader_of_the_fitted_model(shared_child):
    """Item 4: after set_params(activation='tanh') on a model fitted with relu, predict,
    pickle, deepcopy, skops, to_sklearn and ONNX all give the predictions of the
    fitted model; the next fit uses tanh."""
    shared_child()


@pytest.mark.slow  # over 10 s on two cores
@shared(
    setup=_READERS,
    body="""
    reg = BackpropRegressor(
        hidden_layer_sizes=(5,), learning_rate_init=0.05, max_iter=30, random_state=0
    ).fit(X, 3 * X[:, 0])
    before = reg.predict(X)
    reg.set_params(loss="poisson")
    check_readers_agree(reg, before)
    """,
)
def test_4_loss_set_after_fit_changes_no_reader_of_the_fitted_model(shared_child):
    """Item 4: after set_params(loss='poisson') on a regressor fitted with an identity
    output (squared error), every reader predicts as the fitted model does."""
    shared_child()


def test_4_wrong_length_activation_list_after_fit_predicts_and_saves(child):
    """Item 4: an activation list of the wrong length, set after fit, changes nothing
    until the next fit: predict works, and the model saves and loads (pickle, skops)
    and predicts as before."""
    child(
        """
        import pickle

        import skops.io

        reg = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=10, random_state=0)
        reg.fit(X, X[:, 0])
        before = reg.predict(X)
        reg.set_params(activation=["relu", "tanh"])
        loaders = {
            "predict": lambda: reg.predict(X),
            "pickle": lambda: pickle.loads(pickle.dumps(reg)).predict(X),
            "skops": lambda: skops.io.loads(
                skops.io.dumps(reg), trusted=fastbp.SKOPS_TRUSTED_TYPES
            ).predict(X),
        }
        problems = []
        for name, read in loaders.items():
            try:
                got = read()
            except Exception as exc:
                problems.append(f"{name}: {describe(exc)}")
                continue
            if not np.allclose(got, before, rtol=1e-12, atol=0):
                problems.append(f"{name}: differs by up to {np.abs(got - before).max():.3g}")
        check(not problems, problems)
        """
    )


# ----------------------------------------------------- 5. pickles during a refit
def test_5_pickles_taken_during_a_refit_load_and_hold_one_model(child):
    """Item 5: a classifier refitted with other labels ([0, 1] <-> ['a', 'b', 'c'])
    while another thread pickles it at every point of the refit: every pickle loads,
    has one probability column per class, and predicts exactly as the old model or
    the new one."""
    child(
        """
        import pickle

        from stepping import step_through

        y_letters = np.array(["a", "b", "c"])[(X[:, 1] * 3).astype(int)]

        def make():
            return BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)

        expected = {}
        for target in (y_binary, y_letters):
            model = make().fit(X, target)
            expected[tuple(map(str, model.classes_))] = model.predict_proba(X)

        clf = make().fit(X, y_binary)
        snapshots = []
        for target in (y_letters, y_binary, y_letters):
            outcome = step_through(
                lambda: clf.fit(X, target), lambda: snapshots.append(pickle.dumps(clf))
            )
            check(outcome.error is None, f"the refit failed: {describe(outcome.error)}")
            check(
                not outcome.observer_errors,
                f"pickling during the refit: {[describe(e) for e in outcome.observer_errors]}",
            )
        # Fewer when pickling waits for the refit (a lock): serialising is allowed.
        check(len(snapshots) >= 3, f"only {len(snapshots)} pickles were taken")

        problems = []
        for index, data in enumerate(snapshots):
            try:
                model = pickle.loads(data)
                proba = model.predict_proba(X)
            except Exception as exc:
                problems.append(f"pickle {index}: {describe(exc)}")
                continue
            classes = tuple(map(str, model.classes_))
            if proba.shape[1] != len(classes):
                problems.append(f"pickle {index}: {proba.shape[1]} columns, classes {classes}")
            elif classes not in expected or not np.allclose(
                proba, expected[classes], rtol=1e-12, atol=0
            ):
                problems.append(f"pickle {index}: classes {classes} with another model's weights")
        check(not problems, f"{len(problems)} of {len(snapshots)} pickles: {problems[:5]}")
        """
    )


def test_5_refits_that_switch_loss_clipping_and_architecture_hold_one_model_in_threads(child):
    """Item 5 on the common path's widened routing (every loss, clipping): one
    regressor refitted 40 times, alternating two complete settings (Huber with
    gradient clipping and one layer; absolute error, sgd and two layers), while two
    threads predict, one pickles and predicts the copy, and one partial_fits a copy:
    every prediction is one model's own, bit for bit, nothing crashes, and partial_fit
    either trains or names the architecture it refuses."""
    child(
        """
        import copy
        import pickle
        import threading

        Xr = RNG.normal(size=(400, 5))
        yr = Xr[:, 0] - Xr[:, 1] ** 2
        settings = [
            dict(hidden_layer_sizes=(7,), loss="huber", solver="adam", max_grad_norm=0.5,
                 random_state=0, max_iter=30),
            dict(hidden_layer_sizes=(13, 4), loss="absolute_error", solver="sgd",
                 max_grad_norm=None, random_state=1, max_iter=30),
        ]
        expected = [BackpropRegressor(**s).fit(Xr, yr).predict(Xr[:20]) for s in settings]
        check(not np.array_equal(*expected), "the two settings predict alike")
        reg = BackpropRegressor(**settings[0]).fit(Xr, yr)
        stop = threading.Event()
        mixed, unexpected, predictions = [], [], [0]

        def one_model(prediction):
            return any(np.array_equal(prediction, e) for e in expected)

        def refit():
            try:
                for i in range(40):
                    reg.set_params(**settings[i % 2])
                    reg.fit(Xr, yr)
            finally:
                stop.set()

        def predict():
            while not stop.is_set():
                predictions[0] += 1
                if not one_model(reg.predict(Xr[:20])):
                    mixed.append("predict")

        def save():
            while not stop.is_set():
                if not one_model(pickle.loads(pickle.dumps(reg)).predict(Xr[:20])):
                    mixed.append("pickle")

        def partial():
            other = copy.deepcopy(reg)
            while not stop.is_set():
                try:
                    other.partial_fit(Xr[:50], yr[:50])
                except ValueError as error:
                    if "layer sizes" not in str(error):
                        unexpected.append(describe(error))
                except Exception as error:
                    unexpected.append(describe(error))

        threads = [threading.Thread(target=f) for f in (refit, predict, predict, save, partial)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        check(predictions[0] > 100, f"only {predictions[0]} predictions ran beside the refits")
        check(not mixed, f"{len(mixed)} predictions of neither model: {mixed[:5]}")
        check(not unexpected, unexpected[:5])
        check(one_model(reg.predict(Xr[:20])), "the last refit predicts neither model")
        """
    )


# ----------------------------------------------------- 6. weights that vanish in float32
@shared(
    """
    X32 = X.astype(np.float32)
    weights = np.full(60, 1e-50)
    problems = []
    for Estimator, target in ((BackpropClassifier, y_binary), (BackpropRegressor, X[:, 0])):
        for solver in ("adam", "lbfgs"):
            est = Estimator(hidden_layer_sizes=(5,), solver=solver, max_iter=5, random_state=0)
            error = raised(lambda: est.fit(X32, target, sample_weight=weights))
            name = f"{Estimator.__name__}(solver={solver!r})"
            if error is None:
                problems.append(f"{name}: fitted silently, loss_={est.loss_}")
            elif not (
                isinstance(error, ValueError) and "sample weight" in str(error).lower()
            ):
                problems.append(f"{name}: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_6_float32_sample_weights_that_underflow_are_refused(shared_child):
    """Item 6: float32 X with sample_weight all 1e-50 (every weight 0 once cast to
    float32): a ValueError about the sample weights, for adam and lbfgs, classifier
    and regressor; never a silent fit with loss_ == 0.0, never ZeroDivisionError."""
    shared_child()


# ----------------------------------------------------- 7. a failed refit and readers
def test_7_failed_refit_never_hides_the_fitted_model_from_predictions(child):
    """Item 7: refits that fail late (a scoring callable raising at the first epoch
    with early stopping; a diverging fit) while another thread predicts at every
    point of them: every prediction succeeds and equals the fitted model's, and so do
    the predictions after the failure; the failed call leaves every attribute as it
    was."""
    child(
        """
        from stepping import step_through

        def failing_scorer(estimator, X, y):
            raise RuntimeError("the scorer fails")

        clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
        clf.fit(X, y_binary)
        reg = BackpropRegressor(
            hidden_layer_sizes=(5,), solver="sgd", max_iter=5, random_state=0
        ).fit(X, X[:, 0])
        cases = [
            ("scorer", clf, clf.predict_proba,
             lambda: clf.set_params(early_stopping=True, scoring=failing_scorer),
             lambda: clf.fit(X, y_binary)),
            ("divergence", reg, reg.predict,
             lambda: reg.set_params(learning_rate_init=1e6),
             lambda: reg.fit(X * 1e30, X[:, 0])),
        ]
        problems = []
        for name, model, predict, prepare, refit in cases:
            expected = predict(X)

            def observe():
                got = predict(X)
                if not np.array_equal(got, expected):
                    raise AssertionError("another model's predictions during the refit")

            prepare()
            import pickle

            saved = pickle.dumps(model)  # every attribute, fitted or not
            for _ in range(2):
                outcome = step_through(refit, observe)
                check(outcome.error is not None, f"{name}: the refit did not fail")
                if pickle.dumps(model) != saved:
                    problems.append(f"{name}: the failed refit changed the estimator's state")
                errors = {describe(error)[:100] for error in outcome.observer_errors}
                if errors:
                    problems.append(f"{name}: predictions during the failed refit: {errors}")
                error = raised(lambda: np.testing.assert_array_equal(predict(X), expected))
                if error is not None:
                    problems.append(f"{name}: after the failed refit: {describe(error)[:200]}")
        check(not problems, problems)
        """
    )


# ----------------------------------------------------- 9. sparse multilabel targets
@shared(
    """
    import scipy.sparse

    Y = (X[:, :3] > 0.5).astype(int)
    Y_sparse = scipy.sparse.csr_matrix(Y)

    def make():
        return BackpropClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)

    problems = []
    for method in ("fit", "partial_fit"):
        dense = make()
        sparse = make()
        for _ in range(2 if method == "partial_fit" else 1):
            getattr(dense, method)(X, Y)
            error = raised(lambda: getattr(sparse, method)(X, Y_sparse))
            if error is not None:
                problems.append(f"{method} with sparse y: {describe(error)}")
                break
        else:
            for name in ("coefs_", "intercepts_"):
                for got, want in zip(getattr(sparse, name), getattr(dense, name)):
                    if not np.allclose(got, want, rtol=1e-12, atol=0):
                        problems.append(f"{method}: {name} differ from dense y's")
            predicted = sparse.predict(X)  # sparse, as scikit-learn's MLP gives it
            if scipy.sparse.issparse(predicted):
                predicted = predicted.toarray()
            if not np.array_equal(predicted, dense.predict(X)):
                problems.append(f"{method}: predictions differ from dense y's")
    check(not problems, problems)
    """,
)
def test_9_sparse_multilabel_targets_fit_as_dense_ones(shared_child):
    """Item 9: a scipy.sparse CSR indicator matrix as y works in fit and partial_fit,
    and gives the weights that the dense matrix gives with the same random_state."""
    shared_child()


# ----------------------------------------------------- 10. tampered state
_TAMPERING = """
import copy
import copyreg
import pickle

reg = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, X[:, 0])
SAVED = reg.__getstate__()


def tampered(change):
    state = copy.deepcopy(SAVED)
    change(state)
    return state


def set_key(*path_and_value):
    '''A change that sets state[path...] = value (nested dicts and lists).'''
    *path, value = path_and_value

    def change(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        if isinstance(target, dict) and path[-1] not in target:
            raise KeyError(f"the saved state has no {path!r}: this test needs updating")
        target[path[-1]] = value

    return change


CASES = {
    "optimizer kind 'nope'": set_key("_optimizer", "kind", "nope"),
    "optimizer step 'q'": set_key("_optimizer", "t", "q"),
    "t_ = 'x'": set_key("t_", "x"),
    "_no_improvement_count = 'a'": set_key("_no_improvement_count", "a"),
    "coefs_[0] of shape (3, 5)": set_key("coefs_", 0, np.zeros((3, 5))),
    "n_features_in_ = 10**30": set_key("n_features_in_", 10**30),
}


class Crafted:
    '''Pickles as the estimator with the given state: what a crafted file holds.'''

    def __init__(self, cls, state):
        self.cls, self.state = cls, state

    def __reduce__(self):
        # object.__new__(cls), then __setstate__(state): as pickle restores an estimator
        return (copyreg._reconstructor, (self.cls, object, None), self.state)


def refused(load):
    error = raised(load)
    return isinstance(error, ValueError), describe(error)
"""


def test_10_tampered_state_is_refused_with_value_error_by_setstate(child):
    """Item 10: a state dict (from __getstate__) with a wrong optimizer kind, a
    non-numeric step or counter, a coefficient matrix of the wrong shape or an absurd
    feature count is refused by __setstate__ (what pickle calls) with a ValueError;
    never KeyError, OverflowError, IndexError, or a numba error at the next fit."""
    child(
        setup=_TAMPERING,
        body="""
        problems = []
        for name, change in CASES.items():
            state = tampered(change)

            def load():
                model = object.__new__(BackpropRegressor)
                model.__setstate__(state)
                model.predict(X)
                model.partial_fit(X, X[:, 0])

            ok, what = refused(load)
            if not ok:
                problems.append(f"{name}: {what[:150]}")
        check(not problems, problems)
        """,
    )


@shared(
    setup=_TAMPERING,
    body="""
    problems = []
    for name, change in CASES.items():
        data = pickle.dumps(Crafted(BackpropRegressor, tampered(change)))
        ok, what = refused(lambda: pickle.loads(data))
        if not ok:
            problems.append(f"crafted, {name}: {what[:150]}")
    for attribute, value in (("t_", "x"), ("_no_improvement_count", "a")):
        model = pickle.loads(pickle.dumps(reg))
        setattr(model, attribute, value)
        data = pickle.dumps(model)
        ok, what = refused(lambda: pickle.loads(data))
        if not ok:
            problems.append(f"in memory, {attribute} = {value!r}: {what[:150]}")
    check(not problems, problems)
    """,
)
def test_10_crafted_pickles_are_refused_with_value_error_at_load(shared_child):
    """Item 10: the same tampered states in crafted pickle files, and pickles of an
    estimator whose attributes were tampered in memory: pickle.loads raises a
    ValueError."""
    shared_child()


# ----------------------------------------------------- 11. to_sklearn keeps training state
@shared(
    """
    y = 20 * X[:, 0] + 5  # residuals beyond huber_delta: huber's loss is the smaller
    reg = BackpropRegressor(hidden_layer_sizes=(5,), loss="huber", max_iter=5, random_state=0)
    reg.fit(X, y)
    model = reg.to_sklearn()
    error = raised(lambda: model.partial_fit(X, y))
    check(error is None, f"partial_fit of to_sklearn(): {describe(error)}")
    check(np.isfinite(model.predict(X)).all(), "non-finite predictions")
    """,
)
def test_11_to_sklearn_of_a_huber_fit_supports_partial_fit(shared_child):
    """Item 11: the MLPRegressor that to_sklearn() makes of a huber fit continues
    with partial_fit (its training state comes along)."""
    shared_child()


@shared(
    """
    reg = BackpropRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    reg.fit(X, X[:, 0])
    reg.set_params(warm_start=True, loss="poisson")
    reg.fit(X, X[:, 0] + 1)
    ours, theirs = reg.predict(X), reg.to_sklearn().predict(X)
    check(
        np.allclose(ours, theirs, rtol=1e-12, atol=0),
        f"to_sklearn() predicts {theirs[:3]}, fastbp {ours[:3]}",
    )
    """,
)
def test_11_to_sklearn_after_a_warm_start_that_changed_the_loss_predicts_the_same(shared_child):
    """Item 11: after warm_start=True, set_params(loss='poisson') and a fit on positive
    y, est.predict(X) equals est.to_sklearn().predict(X)."""
    shared_child()


# ----------------------------------------------------- 12. warmup dtypes
@shared(
    """
    problems = []
    for dtype in ("float16", "int32", "object"):
        error = raised(lambda: fastbp.warmup(dtypes=[dtype]))
        if not (isinstance(error, ValueError) and dtype in str(error)):
            problems.append(f"{dtype}: {describe(error)[:200]}")
    check(not problems, problems)
    """,
)
def test_12_warmup_refuses_unsupported_dtypes_by_name(shared_child):
    """Item 12: fastbp.warmup with float16, int32 or object dtypes raises a ValueError
    that names the dtype (not a numba TypingError)."""
    shared_child()


# ----------------------------------------------------- 13. fit_chunks
_CHUNKS = """
import dask.dataframe
import pandas

CHUNKS = [(X[i : i + 20], X[i : i + 20, 0]) for i in range(0, 60, 20)]


def new_regressor():
    return BackpropRegressor(hidden_layer_sizes=(5,), random_state=0)
"""


@shared(
    setup=_CHUNKS,
    body="""
    problems = []
    for epochs in (2.5, "2"):
        error = raised(lambda: fastbp.fit_chunks(new_regressor(), CHUNKS, epochs=epochs))
        if not (isinstance(error, (TypeError, ValueError)) and "epochs" in str(error)):
            problems.append(f"epochs={epochs!r}: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_13_fit_chunks_refuses_epochs_that_are_not_integers(shared_child):
    """Item 13: fit_chunks(epochs=2.5) and epochs='2' raise a TypeError or ValueError
    that names epochs (not a raw comparison or range error)."""
    shared_child()


@shared(
    setup=_CHUNKS,
    body="""
    problems = []
    for chunks in (
        {"first": CHUNKS[0], "second": CHUNKS[1]},
        dict(enumerate(CHUNKS)),
    ):
        error = raised(lambda: fastbp.fit_chunks(new_regressor(), chunks))
        if not (
            isinstance(error, TypeError) and re.search("dict|mapping", str(error), re.I)
        ):
            problems.append(f"dict with keys {list(chunks)}: {describe(error)}")
    frame = dask.dataframe.from_pandas(pandas.DataFrame(X), npartitions=3)
    error = raised(lambda: fastbp.DaskChunks(frame, frame[0]))
    if not isinstance(error, TypeError):
        problems.append(f"DaskChunks of a dask DataFrame: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_13_fit_chunks_refuses_dicts_and_dask_chunks_refuses_dataframes(shared_child):
    """Item 13: a dict of chunks raises a TypeError that says so (not KeyError, and not
    a silent fit when its keys happen to be 0, 1, 2); DaskChunks on a dask DataFrame
    raises a TypeError (not AttributeError: rechunk)."""
    shared_child()


@shared(
    setup=_CHUNKS,
    body="""
    reg = new_regressor().fit(X, X[:, 0])
    before = {
        "t_": reg.t_,
        "n_iter_": reg.n_iter_,
        "coefs_": [coef.copy() for coef in reg.coefs_],
        "intercepts_": [intercept.copy() for intercept in reg.intercepts_],
        "loss_curve_": list(reg.loss_curve_),
    }
    predictions = reg.predict(X)
    X_nan = CHUNKS[2][0].copy()
    X_nan[0, 0] = np.nan
    chunks = [CHUNKS[0], CHUNKS[1], (X_nan, CHUNKS[2][1])]
    error = raised(lambda: fastbp.fit_chunks(reg, chunks, shuffle=False))
    check(isinstance(error, ValueError), f"the NaN chunk: {describe(error)}")
    changed = []
    for name, value in before.items():
        now = getattr(reg, name)
        same = (
            all(np.array_equal(a, b) for a, b in zip(now, value)) and len(now) == len(value)
            if isinstance(value, list)
            else now == value
        )
        if not same:
            changed.append(name)
    check(not changed, f"changed by the failed call: {changed}")
    check(np.array_equal(reg.predict(X), predictions), "predictions changed")
    """,
)
def test_13_fit_chunks_failing_part_way_leaves_the_estimator_as_it_was(shared_child):
    """Item 13: fit_chunks on a fitted model whose third chunk has a NaN in X raises,
    and leaves t_, n_iter_, coefs_, intercepts_, loss_curve_ and the predictions as
    they were before the call."""
    shared_child()


# ----------------------------------------------------- 14. scoring results
@shared(
    """
    problems = []
    for result in ("abc", np.array([0.5, 0.2])):
        clf = BackpropClassifier(
            hidden_layer_sizes=(5,), max_iter=5, early_stopping=True, random_state=0,
            scoring=lambda estimator, X, y: result,
        )
        error = raised(lambda: clf.fit(X, y_binary))
        if not (isinstance(error, (TypeError, ValueError)) and "scoring" in str(error)):
            problems.append(f"scorer returning {result!r}: {describe(error)}")
    check(not problems, problems)
    """,
)
def test_14_scoring_callable_with_a_non_numeric_result_is_named(shared_child):
    """Item 14: early stopping with a scoring callable that returns a string or an
    array raises a TypeError or ValueError whose message names scoring."""
    shared_child()


# ----------------------------------------------------- 15. saturated probabilities
@shared(
    """
    X_far = np.vstack([RNG.normal(-5, 0.3, (30, 4)), RNG.normal(5, 0.3, (30, 4))])
    y_far = np.r_[np.zeros(30, dtype=int), np.ones(30, dtype=int)]
    clf = BackpropClassifier(
        hidden_layer_sizes=(5,), learning_rate_init=0.5, max_iter=300, tol=0,
        n_iter_no_change=1000, random_state=0,
    ).fit(X_far, y_far)
    proba = clf.predict_proba(X_far)
    check(proba.shape == (60, 2), f"shape {proba.shape}")
    outside = int(((proba <= 0) | (proba >= 1)).sum())
    check(outside == 0, f"{outside} probabilities are exactly 0 or 1")
    check(np.isfinite(clf.predict_log_proba(X_far)).all(), "non-finite log-probabilities")
    """,
)
def test_15_binary_probabilities_are_strictly_inside_zero_and_one(shared_child):
    """Item 15: a binary classifier whose logistic output saturates (well-separated
    classes, a big learning rate, many epochs) gives probabilities strictly inside
    (0, 1) in both columns, and finite log-probabilities."""
    shared_child()


# ----------------------------------------------------- 16. callbacks and Adam's warning
@shared(
    """
    try:
        from sklearn.callback import ProgressBar
    except ImportError:
        print("scikit-learn has no callbacks: nothing to check")
        print("HOSTILE-OK")
        sys.exit(0)
    import skops.io

    clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    clf.set_callbacks(ProgressBar())
    clf.fit(X, y_binary)
    skops.io.dump(clf, "with_callbacks.skops")
    try:
        loaded = skops.io.load("with_callbacks.skops", trusted=fastbp.SKOPS_TRUSTED_TYPES)
    except Exception as exc:
        check(False, f"loading: {describe(exc)}")
    check(
        np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)),
        "the loaded model predicts differently",
    )
    """,
)
def test_16_model_with_callbacks_loads_with_the_trusted_skops_types(shared_child):
    """Item 16: a model with scikit-learn callbacks set (a ProgressBar) saved with
    skops loads with trusted=fastbp.SKOPS_TRUSTED_TYPES, and predicts the same."""
    shared_child()


def test_16_adam_without_a_step_emits_no_runtime_warning(child):
    """Item 16: Adam's end-of-epoch bookkeeping with no step taken (t == 0) emits no
    RuntimeWarning; nor does the public path that used to reach it (float32 weights
    that all round to 0, which must now be refused with a ValueError). The child runs
    with -W error::RuntimeWarning."""
    child(
        """
        from fastbp._optimizers import AdamOptimizer

        optimizer = AdamOptimizer(10, np.float64, 0.001)
        error = raised(lambda: optimizer.epoch_ends(0))
        check(error is None, f"epoch_ends(0): {describe(error)}")

        clf = BackpropClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
        error = raised(
            lambda: clf.fit(X.astype(np.float32), y_binary, sample_weight=np.full(60, 1e-50))
        )
        check(
            not isinstance(error, RuntimeWarning),
            f"fit with weights that vanish in float32: {describe(error)}",
        )
        """,
        python_options=("-W", "error::RuntimeWarning"),
    )
