"""A small mutation check for developers: does the fast test suite notice a broken rule?

Each mutation below breaks one rule of the kernel math or the training bookkeeping by
replacing an exact snippet of source. The script copies ``fastbp/``, ``tests/`` and
``pyproject.toml`` into a temporary directory (the working tree is never edited, so an
interrupted run leaves nothing behind), with a kernel cache of its own
(``NUMBA_CACHE_DIR``). For each mutation it edits the copy (and writes the common
path's kernel out again from the mutated full kernel, as a developer would with
``tools/generate_common_path.py``), runs the tests, puts the original files back
(with their times, so that the cached kernels stay valid), and reports KILLED (a
test failed), SURVIVED (every test passed) or NOT APPLIED (its snippet is no longer
in the source: update the mutation). Mutations of files without kernels run first,
from the baseline run's cache; each mutation of a kernel source recompiles the kernels.

Run by hand, never in CI (a kernel mutant recompiles the kernels: 1-4 min on two
busy cores, then its tests)::

    python tools/mutate.py                      # every mutation, the core fast tests
    python tools/mutate.py -k adam -k leaky     # the mutations whose name contains these
    python tools/mutate.py --tests fast         # each against the whole fast suite
    python tools/mutate.py --list
    python tools/mutate.py -- --deselect tests/test_x.py::test_y   # more pytest arguments

Before the mutants it runs the same tests on the unmutated copy: a failure there
makes every verdict meaningless, so it stops.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Edit(NamedTuple):
    path: str  # relative to the repository root
    original: str  # must occur exactly once
    replacement: str


class Mutation(NamedTuple):
    name: str
    what: str
    edits: tuple
    tests: tuple = ()  # where only these tests can see it: run these instead


def _mutation(name, what, *edits, tests=()):
    return Mutation(name, what, tuple(Edit(*edit) for edit in edits), tuple(tests))


CONVERGENCE = "fastbp/_convergence.py"
LAYER_MATH = "fastbp/_layer_math.py"
KERNELS = "fastbp/_kernels.py"
GENERATOR = "tools/generate_common_path.py"
GENERATED = "fastbp/_common_epochs.py"
STEPS = "fastbp/_optimizer_steps.py"

MUTATIONS = [
    _mutation(
        "zero-weight-batch-guard",
        "training steps on a batch whose weights sum to 0 (divides by 0)",
        (
            KERNELS,
            "        if weight_sum == 0:\n            continue",
            "        if False:\n            continue",
        ),
    ),
    _mutation(
        "class-weight-ignored-with-sample-weight",
        "class_weight is dropped when sample_weight is also given",
        ("fastbp/_base.py", "else sample_weight * class_sample_weight", "else sample_weight"),
    ),
    _mutation(
        "convergence-reset",
        "the convergence count never starts again after an improvement (the one rule, "
        "which Python and both kernels run)",
        (CONVERGENCE, "    else:\n        count = 0\n", "    else:\n        count = count\n"),
    ),
    _mutation(
        "convergence-best-score-kept",
        "early stopping never records a better validation score",
        (
            "fastbp/_early_stopping.py",
            "    if negated_best != -best_score:",
            "    if False:",
        ),
    ),
    _mutation(
        "leaky-relu-derivative-flipped",
        "leaky ReLU's derivative: the slope where a > 0, 1 elsewhere",
        (
            LAYER_MATH,
            "delta[i, j] = delta[i, j] if activation[i, j] > 0 else slope * delta[i, j]",
            "delta[i, j] = slope * delta[i, j] if activation[i, j] > 0 else delta[i, j]",
        ),
    ),
    _mutation(
        "adam-bias-correction-beta1",
        "Adam's first-moment bias correction left out (the one step both kernels call)",
        (STEPS, "/ (1 - float(beta_1) ** step)", "/ 1.0"),
    ),
    _mutation(
        "softmax-without-max-subtraction",
        "the softmax exponentiates z + b without subtracting the row max",
        (
            LAYER_MATH,
            "                z[i, j] -= row_max",
            "                z[i, j] -= 0.0 * row_max",
        ),
    ),
    _mutation(
        "output-delta-sign",
        "the output error is target - prediction",
        (LAYER_MATH, "            residual = p - t", "            residual = t - p"),
    ),
    _mutation(
        "l2-gradient-term",
        "the L2 penalty left out of the SGD step's gradient (the one SGD update)",
        (
            STEPS,
            "        g = (grads[k] + alpha * w) * inverse_weight_sum\n        v =",
            "        g = grads[k] * inverse_weight_sum\n        v =",
        ),
    ),
    _mutation(
        "l2-loss-term",
        "the L2 penalty left out of training's reported loss",
        (
            KERNELS,
            "batch_loss_sum / weight_sum + 0.5 * alpha * squared_norm / weight_sum",
            "batch_loss_sum / weight_sum",
        ),
    ),
    _mutation(
        "gelu-derivative-without-density",
        "GELU's derivative: Phi(z) only, without the z phi(z) term",
        (LAYER_MATH, "delta[i, j] * (cdf + x * density)", "delta[i, j] * cdf"),
    ),
    _mutation(
        "gelu-derivative-density-sign",
        "GELU's derivative: Phi(z) - z phi(z)",
        (LAYER_MATH, "delta[i, j] * (cdf + x * density)", "delta[i, j] * (cdf - x * density)"),
    ),
    _mutation(
        "optimizer-state-kept-across-fits",
        "a new fit() continues the previous fit's optimizer state (Adam moments, velocity)",
        (
            "fastbp/_stochastic.py",
            "if not incremental or optimizer is None or optimizer.problem(n_params, dtype):",
            "if optimizer is None or optimizer.problem(n_params, dtype):",
        ),
    ),
    _mutation(
        "t-counts-batches",
        "t_ counts one per epoch less than the samples seen",
        (
            "fastbp/_stochastic.py",
            "estimator.t_ = self.start_t + epoch * self.n_samples",
            "estimator.t_ = self.start_t + epoch * (self.n_samples - 1)",
        ),
    ),
    _mutation(
        "n-iter-off-by-one",
        "n_iter_ counts one epoch more than run",
        (
            "fastbp/_stochastic.py",
            "        estimator.n_iter_ = epoch\n",
            "        estimator.n_iter_ = epoch + 1\n",
        ),
    ),
    _mutation(
        "epoch-loss-unweighted-by-rows",
        "the epoch loss sums batch losses without weighting each by its rows",
        (KERNELS, "loss_sum += batch_loss * n_rows", "loss_sum += batch_loss"),
    ),
    _mutation(
        "kernels-hold-the-gil",
        "the compiled entry points keep the GIL while they run",
        (
            "fastbp/_kernel_cache.py",
            "_JIT = dict(cache=False, nogil=True,",
            "_JIT = dict(cache=False, nogil=False,",
        ),
        tests=["tests/test_threads.py"],
    ),
]

# The core fast tests, cheapest and most telling first (pytest stops at the first
# failure): the rules, the hand-worked and reference checks, parity with
# scikit-learn, the features beyond it. ``--tests fast`` runs the whole fast suite.
CORE_TESTS = [
    "tests/test_training_rules.py",
    "tests/test_one_step.py",
    "tests/test_hand_worked.py",
    "tests/test_gradients.py",
    "tests/test_parity.py",
    "tests/test_beyond_sklearn.py",
    "tests/test_multioutput_stopping.py",
]


def apply(mutation, tree):
    """Apply ``mutation`` to the copy in ``tree``; returns a problem, or None."""
    texts = {}
    for edit in mutation.edits:
        path = tree / edit.path
        text = texts.get(path) or path.read_text()
        if text.count(edit.original) != 1:
            return f"{edit.path}: snippet found {text.count(edit.original)} times"
        texts[path] = text.replace(edit.original, edit.replacement)
    for path, text in texts.items():
        path.write_text(text)
    return None


def regenerate(mutation, tree):
    """Write the common path's kernel out again from the mutated full kernel (it is
    generated from it: tools/generate_common_path.py), so both kernels carry the
    mutant; returns a problem, or None."""
    if not touches_kernels(mutation):
        return None
    result = subprocess.run(
        [sys.executable, str(tree / GENERATOR)], cwd=tree, capture_output=True, text=True
    )
    return None if result.returncode == 0 else f"generator: {result.stderr.strip()[-300:]}"


def restore(mutation, tree):
    """Put back the files ``mutation`` edited, and the generated kernel, with their
    modification times."""
    for path in {edit.path for edit in mutation.edits} | {GENERATED}:
        shutil.copy2(ROOT / path, tree / path)


def touches_kernels(mutation):
    return any("@njit" in (ROOT / edit.path).read_text() for edit in mutation.edits)


def copy_tree(destination):
    ignore = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc")
    for name in ("fastbp", "tests", "tools"):
        shutil.copytree(ROOT / name, destination / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")


def run_tests(tree, tests, timeout, extra=()):
    """pytest in ``tree`` with its own kernel cache: (passed, seconds, first failure)."""
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(tree / "numba_cache"))
    selection = ["-m", "not slow"] if tests == ["fast"] else ["-m", "not slow", *tests]
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--no-header", "-o", "addopts=", *selection, *extra]  # fmt: skip
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, f"timed out after {timeout} s"
    seconds = time.perf_counter() - start
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if result.returncode == 0:
        return True, seconds, ""
    return False, seconds, (failed[0] if failed else result.stdout.strip()[-300:])


def check_the_copy_is_imported(tree):
    env = dict(os.environ, PYTHONPATH=str(tree))
    where = subprocess.run(
        [sys.executable, "-c", "import fastbp; print(fastbp.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not where.startswith(str(tree)):
        sys.exit(f"the tests would import fastbp from {where}, not from the mutated copy")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", action="append", default=[], help="mutation names containing")
    parser.add_argument(
        "--tests", nargs="+", default=CORE_TESTS,
        help="test files or node ids ('fast': the whole -m 'not slow' suite)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per mutant")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.k or any(k in m.name for k in args.k)]
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name:42} {mutation.what}")
        return 0
    # mutations of files without kernels first: they reuse the baseline's kernels
    chosen.sort(key=touches_kernels)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # clean up the copy on kill
    rows = []
    with tempfile.TemporaryDirectory(prefix="fastbp-mutants-") as scratch:
        tree = Path(scratch) / "tree"
        copy_tree(tree)
        check_the_copy_is_imported(tree)
        if not args.no_baseline:
            passed, seconds, failure = run_tests(tree, args.tests, args.timeout, args.pytest_args)
            print(f"baseline (no mutation): {'passed' if passed else 'FAILED'} in {seconds:.0f} s",
                  flush=True)  # fmt: skip
            if not passed:
                print(failure)
                return 2
        for mutation in chosen:
            problem = apply(mutation, tree) or regenerate(mutation, tree)
            if problem:
                restore(mutation, tree)
                rows.append((mutation.name, "NOT APPLIED", 0.0, problem))
            else:
                tests = list(mutation.tests) or args.tests
                passed, seconds, failure = run_tests(tree, tests, args.timeout, args.pytest_args)
                verdict = {True: "SURVIVED", False: "KILLED", None: "TIMED OUT"}[passed]
                rows.append((mutation.name, verdict, seconds, failure))
                restore(mutation, tree)
            name, verdict, seconds, failure = rows[-1]
            print(f"{name:42} {verdict:11} {seconds:6.0f} s  {failure}", flush=True)
    print("\n| mutation | verdict | seconds | first failing test |\n|---|---|---|---|")
    for name, verdict, seconds, failure in rows:
        print(f"| {name} | {verdict} | {seconds:.0f} | {failure.replace('|', '/')} |")
    survived = [row for row in rows if row[1] != "KILLED"]
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
