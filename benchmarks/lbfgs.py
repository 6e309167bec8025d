"""L-BFGS: fastbp against scikit-learn side by side, and two fastbp checkouts A/B.

Cases: scikit-learn's gallery example "Varying regularization in MLP"
(``plot_mlp_alpha.py``: 3 datasets x 5 alphas, MLP (10, 10), after StandardScaler),
breast cancer (scaled, (100,)), digits ((100,), /16) and one case above fastbp's
exact budget (20000 x 100 synthetic, (200,), 10 iterations: the compiled chunked
objective). Every case runs at one BLAS thread (threadpoolctl), in a fresh process
per checkout; inside it fastbp and scikit-learn alternate, a few times, and each
reports its fastest run (the least disturbed). Rounds repeat that; the table gives
medians over rounds with their min-max, the ratios of the medians, and whether
fastbp's weights were bit-identical to scikit-learn's. ``--clock cpu`` times each fit
by the CPU time of its thread instead of the wall clock: on a shared machine, time
spent waiting for a core does not count (cache and memory contention still do).

Run by hand, never in CI; for a fair BLAS, unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE together in that one command::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lbfgs.py
    # before/after: an export of the old commit, then both, alternating round by round
    mkdir /tmp/before && git archive main | tar -x -C /tmp/before
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/lbfgs.py --before /tmp/before --rounds 5

``benchmarks/run.py --lbfgs-rounds N`` adds the one-checkout table to its report.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import textwrap

HERE = pathlib.Path(__file__).resolve().parent

WORKER = """
import json, time, warnings
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
warnings.simplefilter("ignore")
import fastbp
from fastbp import BackpropClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

def alpha_example():
    from sklearn.datasets import make_circles, make_classification, make_moons
    from sklearn.model_selection import train_test_split
    X, y = make_classification(n_features=2, n_redundant=0, n_informative=2,
                               random_state=0, n_clusters_per_class=1)
    X += 2 * np.random.RandomState(2).uniform(size=X.shape)
    data = []
    for features, target in (make_moons(noise=0.3, random_state=0),
                             make_circles(noise=0.2, factor=0.5, random_state=1), (X, y)):
        X_train, _, y_train, _ = train_test_split(features, target, test_size=0.4,
                                                  random_state=42)
        data.append((StandardScaler().fit_transform(X_train), y_train))
    def fit(Estimator):
        return [Estimator(solver="lbfgs", alpha=alpha, random_state=1, max_iter=2000,
                          early_stopping=True, hidden_layer_sizes=[10, 10]).fit(X, y)
                for X, y in data for alpha in np.logspace(-1, 1, 5)]
    return fit, 2

def breast_cancer():
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return lambda Estimator: [Estimator(solver="lbfgs", random_state=0).fit(X, y)], 7

def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16
    return (lambda Estimator: [Estimator(solver="lbfgs", hidden_layer_sizes=(100,),
                                         random_state=0).fit(X, y)], 2)

def above_budget():
    from fastbp.bench import make_data
    X, y = make_data(20000, 100, 10, np.float64)
    return (lambda Estimator: [Estimator(solver="lbfgs", hidden_layer_sizes=(200,),
                                         max_iter=10, random_state=0).fit(X, y)], 1)

def same_bits(ours, theirs):
    return all(
        a.n_iter_ == b.n_iter_ and all(np.array_equal(p, q) for p, q in
                                       zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))
        for a, b in zip(ours, theirs))

fit, repeats = {CASE}()
times = {"fastbp": [], "sklearn": []}
clock = {CLOCK}
with threadpool_limits(1):
    fit(BackpropClassifier)  # kernels loaded (or compiled) outside the timing
    for _ in range(repeats):
        for name, Estimator in (("fastbp", BackpropClassifier), ("sklearn", MLPClassifier)):
            start = clock()
            models = fit(Estimator)
            times[name].append(clock() - start)
            if name == "fastbp":
                ours = models
            else:
                theirs = models
blas = sorted({(i.get("internal_api"), i.get("version"), i.get("architecture"))
               for i in threadpool_info() if i.get("user_api") == "blas"})
print(json.dumps({"fastbp": min(times["fastbp"]), "sklearn": min(times["sklearn"]),
                  "same_bits": same_bits(ours, theirs), "blas": blas,
                  "fastbp_file": fastbp.__file__}))
"""

#: label -> the WORKER function that builds it
CASES = {
    "plot_mlp_alpha: 15 fits, (10, 10)": "alpha_example",
    "breast cancer, (100,)": "breast_cancer",
    "digits, (100,)": "digits",
    "above the exact budget: 20000 x 100, (200,), 10 iterations": "above_budget",
}


def log(message):
    print(message, file=sys.stderr, flush=True)


#: --clock: the function that times a fit in the worker
CLOCKS = {"wall": "time.perf_counter", "cpu": "time.thread_time"}


def measure(checkout, case, clock="wall"):
    """One fresh process importing fastbp from ``checkout``: its JSON result."""
    code = textwrap.dedent(WORKER).replace("{CASE}", CASES[case]).replace("{CLOCK}", CLOCKS[clock])
    checkout = os.path.abspath(checkout)
    env = {**os.environ, "PYTHONPATH": checkout}
    # In the checkout: ``python -c`` puts the working directory before PYTHONPATH, so a
    # run started in another checkout would import that one's fastbp.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=checkout,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{case} with {checkout} failed:\n{result.stderr}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if not measured["fastbp_file"].startswith(os.path.join(checkout, "")):
        raise RuntimeError(f"imported {measured['fastbp_file']}, not {checkout}'s fastbp")
    return measured


def _spread(values, unit=1.0):
    values = [value * unit for value in values]
    return f"{statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"


def load():
    """The 1, 5 and 15 minute load averages (the machine is shared: note them)."""
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def run(checkouts, cases, rounds, clock="wall"):
    """``{case: {checkout: [result per round]}}``, the checkouts alternating in
    each round, after one uncounted round that warms every numba cache."""
    results = {case: {checkout: [] for checkout in checkouts} for case in cases}
    for case in cases:
        for checkout in checkouts:
            measure(checkout, case, clock)
    for round_number in range(rounds):
        for case in cases:
            for checkout in checkouts:
                results[case][checkout].append(measure(checkout, case, clock))
        log(f"round {round_number + 1}/{rounds} done, load {load()}")
    return results


def table(results, checkouts):
    """Markdown: one row per case; with two checkouts, A (before) and B (after)."""
    if len(checkouts) == 1:
        (only,) = checkouts
        lines = [
            "| case | scikit-learn (s) | fastbp (s) | speed-up | bit-identical |",
            "|---|---|---|---|---|",
        ]
        for case, by_checkout in results.items():
            runs = by_checkout[only]
            sklearn = [r["sklearn"] for r in runs]
            fastbp = [r["fastbp"] for r in runs]
            lines.append(
                f"| {case} | {_spread(sklearn)} | {_spread(fastbp)} "
                f"| {statistics.median(sklearn) / statistics.median(fastbp):.2f}x "
                f"| {_bit_identical(case, runs)} |"
            )
        return "\n".join(lines)
    before, after = checkouts
    lines = [
        "| case | scikit-learn (s) | fastbp before (s) | fastbp after (s) "
        "| speed-up before | speed-up after | after vs before | bit-identical after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, by_checkout in results.items():
        sklearn = [r["sklearn"] for c in checkouts for r in by_checkout[c]]
        old = [r["fastbp"] for r in by_checkout[before]]
        new = [r["fastbp"] for r in by_checkout[after]]
        median = statistics.median
        lines.append(
            f"| {case} | {_spread(sklearn)} | {_spread(old)} | {_spread(new)} "
            f"| {median(sklearn) / median(old):.2f}x | {median(sklearn) / median(new):.2f}x "
            f"| {median(old) / median(new):.2f}x "
            f"| {_bit_identical(case, by_checkout[after])} |"
        )
    return "\n".join(lines)


def _bit_identical(case, runs):
    if "above" in case:
        return "no (not promised)" if not runs[0]["same_bits"] else "yes"
    return "yes" if all(r["same_bits"] for r in runs) else "**NO**"


def section(checkouts, cases=tuple(CASES), rounds=3, clock="wall"):
    """The report section: header lines, the table, and the conditions."""
    start_load = load()
    results = run(checkouts, list(cases), rounds, clock)
    first = next(iter(results.values()))[checkouts[-1]][0]
    timed_by = "wall clock" if clock == "wall" else "CPU time of the fitting thread"
    lines = [
        "## L-BFGS (fastbp vs scikit-learn, 1 BLAS thread)",
        "",
        f"BLAS: {first['blas']}; times: {timed_by}; {rounds} rounds, each a fresh process "
        "per checkout, "
        "medians (min-max) over rounds of each process's fastest run; load average "
        f"(1/5/15 min) {start_load} before, {load()} after.",
        "",
    ]
    if len(checkouts) == 2:
        lines += [f"A (before) = {checkouts[0]}, B (after) = {checkouts[1]}.", ""]
    lines += [table(results, checkouts), ""]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a checkout to compare against (A)")
    parser.add_argument("--after", default=str(HERE.parent), help="checkout B (this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    args = parser.parse_args()
    checkouts = [args.after] if args.before is None else [args.before, args.after]
    print("\n".join(section(checkouts, args.cases, args.rounds, args.clock)))


if __name__ == "__main__":
    main()
