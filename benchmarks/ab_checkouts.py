"""Two checkouts of fastbp, side by side: training and prediction speed, A/B.

For a change's before/after table: each measurement runs in a fresh process that
imports fastbp from one checkout (``PYTHONPATH``), the two checkouts alternating
round by round, on the same data, at one BLAS thread; the table gives each
checkout's median and the median of the per-round ratios B/A (above 1: B slower).
Warm caches: each checkout's kernels are compiled by a first, uncounted round.

Run by hand, never in CI; for a fair BLAS, unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE together in that one command::

    git worktree add /tmp/before HEAD~3
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/ab_checkouts.py /tmp/before . --rounds 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

# Each case prints one JSON number: seconds (or microseconds) per operation, the
# minimum over a few repeats inside the process (the least disturbed).
SETUP = """
import json, os, time, warnings
import numpy as np
from threadpoolctl import threadpool_limits
warnings.simplefilter("ignore")
from sklearn.datasets import load_digits
from fastbp import BackpropClassifier, BackpropRegressor
X, y = load_digits(return_X_y=True)
X = X / 16.0
rng = np.random.RandomState(0)
Xr = rng.uniform(-1, 1, (2000, 20))
yr = np.sin(Xr[:, 0] * 2) + Xr[:, 1] * Xr[:, 2]
Xt = rng.uniform(-1, 1, (60, 4))
yt = (Xt[:, 0] > 0).astype(int)

# --clock cpu: the process's CPU time, which another process's load disturbs less
# than the wall clock (one BLAS thread and numba's kernels run on one core).
clock = time.process_time if os.environ.get("AB_CLOCK") == "cpu" else time.perf_counter

def best(function, repeats):
    times = []
    for _ in range(repeats * int(os.environ.get("AB_REPEATS", "1"))):
        start = clock()
        function()
        times.append(clock() - start)
    return min(times)
"""

CASES = {
    "digits adam fit, 50 epochs (s)": """
clf = BackpropClassifier(max_iter=50, tol=0, random_state=0)
value = best(lambda: clf.fit(X, y), 3)
""",
    "regression sgd fit, 50 epochs (s)": """
reg = BackpropRegressor(solver="sgd", max_iter=50, tol=0, random_state=0)
value = best(lambda: reg.fit(Xr, yr), 3)
""",
    "tiny, early stopping, 100 epochs (s)": """
clf = BackpropClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=100,
                         n_iter_no_change=1000, random_state=0)
value = best(lambda: clf.fit(Xt, yt), 3)
""",
    "digits lbfgs fit, 50 iterations (s)": """
clf = BackpropClassifier(solver="lbfgs", max_iter=50, tol=0, random_state=0)
value = best(lambda: clf.fit(X, y), 3)
""",
    "partial_fit, 200-row chunk (us)": """
clf = BackpropClassifier(random_state=0).partial_fit(X[:200], y[:200], classes=np.arange(10))
value = 1e6 * best(lambda: [clf.partial_fit(X[:200], y[:200]) for _ in range(50)], 5) / 50
""",
    "one-row predict_proba (us)": """
clf = BackpropClassifier(max_iter=5, random_state=0).fit(X, y)
row = X[:1].copy()
value = 1e6 * best(lambda: [clf.predict_proba(row) for _ in range(2000)], 7) / 2000
""",
}


def measure(source, case, clock="wall", repeats=1, cpu=None):
    code = SETUP + "\nwith threadpool_limits(1):\n" + textwrap.indent(CASES[case], "    ")
    code += "\nprint(json.dumps(value))\n"
    env = {**os.environ, "PYTHONPATH": os.path.abspath(source), "AB_CLOCK": clock,
           "AB_REPEATS": str(repeats)}  # fmt: skip
    # --cpu: both checkouts' processes on one core (on a shared 2-core machine, which
    # core a process lands on moves its time by up to 40%).
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    # In the checkout: ``python -c`` puts the working directory before PYTHONPATH, so a
    # run started in the other checkout measured that one twice.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
        cwd=os.path.abspath(source), preexec_fn=pin,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="checkout A (the baseline)")
    parser.add_argument("after", help="checkout B")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="time each case by the wall clock or by the process's CPU time",
    )  # fmt: skip
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="multiply each case's repeats inside a process (its time: their minimum)",
    )  # fmt: skip
    parser.add_argument("--cpu", type=int, help="run every process on this core only")
    args = parser.parse_args()
    options = {"clock": args.clock, "repeats": args.repeats, "cpu": args.cpu}
    import numpy  # noqa: F401  (loads the BLAS library that threadpool_info reports)
    from threadpoolctl import threadpool_info

    blas = [(i.get("internal_api"), i.get("version"), i.get("architecture")) for i in
            threadpool_info() if i.get("user_api") == "blas"]  # fmt: skip
    print(
        f"BLAS: {blas}; {args.rounds} rounds; {args.clock} clock; repeats x{args.repeats}; "
        f"core {args.cpu if args.cpu is not None else 'any'}; "
        f"A = {args.before}, B = {args.after}\n"
    )
    for case in args.cases:  # warm both caches (uncounted)
        measure(args.before, case, **options)
        measure(args.after, case, **options)
    # The lower half: processes of this machine run in a fast and a slow mode (up to
    # 40% apart, whichever checkout); the median of each checkout's faster half compares
    # like with like.
    print(
        "| case | A median | B median | B/A (median of rounds) | B/A min-max "
        "| A lower-half median | B lower-half median | B/A lower halves |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        before, after, ratios = [], [], []
        for _ in range(args.rounds):
            a = measure(args.before, case, **options)
            b = measure(args.after, case, **options)
            before.append(a)
            after.append(b)
            ratios.append(b / a)
        half = max(1, args.rounds // 2)
        low_a = statistics.median(sorted(before)[:half])
        low_b = statistics.median(sorted(after)[:half])
        print(
            f"| {case} | {statistics.median(before):.4g} | {statistics.median(after):.4g} | "
            f"{statistics.median(ratios):.3f} | {min(ratios):.3f}-{max(ratios):.3f} "
            f"| {low_a:.4g} | {low_b:.4g} | {low_b / low_a:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
