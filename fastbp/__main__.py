"""Demo: ``python -m fastbp`` trains on scikit-learn's digits and compares with
scikit-learn's MLPClassifier under identical hyperparameters."""

import argparse
import sys
import threading
import time
import warnings

from fastbp import __version__
from fastbp._warmup import kernels_are_cached, prepare_common_path, warmup

# The demo's imports (scikit-learn, fastbp's estimators) wait until the demo runs:
# ``--warmup`` starts its compiling processes without them.


def _timed_fit(estimator, X, y):
    from sklearn.exceptions import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return time.perf_counter() - start


def _prepare_kernels():
    """Compile (or load) the float64 kernels, saying so first when that will take a
    while, with a dot per second meanwhile; return the seconds it took."""
    cached = kernels_are_cached("float64")
    if not cached:
        print(
            "First run in this environment: numba compiles fastbp's kernels once "
            "(about 20 s on a 2-core machine; later runs load them from its cache in "
            "well under a second)",
            end="",
            flush=True,
        )
    done = threading.Event()

    def dots():
        while not done.wait(1.0):
            print(".", end="", flush=True)

    ticker = threading.Thread(target=dots, daemon=True)
    ticker.start()
    start = time.perf_counter()
    try:
        prepare_common_path("float64")  # what the demo's fit and predictions run
    finally:
        done.set()
        ticker.join()
    seconds = time.perf_counter() - start
    # A warm run announced nothing above: its line must say what became ready.
    print(f"{'fastbp kernels loaded from the cache:' if cached else ''} ready in {seconds:.2f} s")
    return seconds


def _megabytes(size):
    return f"{size / 1e6:.1f} MB"


def _print_cache_info():
    from fastbp._kernel_cache import cache_info

    info = cache_info()
    if info["location"] is None:
        print("fastbp kernel cache: none (no writable location: kernels compile in every process)")
        return 0
    print(f"fastbp kernel cache: {info['location']}")
    print(f"writable: {'yes' if info['writable'] else 'no (read-only: loaded as it is)'}")
    print(
        f"entries: {info['kernels']} kernels, {info['variants']} compiled variants, "
        f"{_megabytes(info['bytes'])}"
    )
    print(
        f"all versions under {info['root']}: {info['root_variants']} compiled variants, "
        f"{_megabytes(info['root_bytes'])}"
    )
    return 0


def _clear_cache():
    from fastbp._kernel_cache import clear_cache

    try:
        root, variants, size = clear_cache()
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 1
    if root is None:
        print("fastbp kernel cache: none in use, nothing to clear")
    else:
        print(f"cleared {root}: {variants} compiled variants, {_megabytes(size)}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastbp", description=__doc__)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--solver", choices=["adam", "sgd", "lbfgs"], default="adam")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument(
        "--warmup",
        action="store_true",
        help="only compile the common-path kernels (both dtypes, in parallel) and exit",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="with --warmup: also the full kernels (sparse input, dropout, other options)",
    )
    parser.add_argument(
        "--cache-info",
        action="store_true",
        help="print where the compiled kernels are cached, how much, and exit",
    )
    parser.add_argument(
        "--clear-cache",
        action="store_true",
        help="delete the cached kernels of every fastbp version and exit",
    )
    args = parser.parse_args(argv)
    if args.cache_info:
        return _print_cache_info()
    if args.clear_cache:
        return _clear_cache()
    if args.warmup:
        start = time.perf_counter()
        # one process per dtype, at the same time (their cache writes take turns)
        for name, spent in warmup(everything=args.all, n_jobs=-1).items():
            print(f"fastbp kernels for {name}: ready in {spent:.2f} s")
        print(f"all ready in {time.perf_counter() - start:.2f} s")
        return 0

    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_info, threadpool_limits

    from fastbp import BackpropClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    params = dict(
        hidden_layer_sizes=tuple(args.hidden),
        solver=args.solver,
        max_iter=args.max_iter,
        random_state=0,
    )
    print(
        f"fastbp {__version__}: digits, {len(X_train)} train / {len(X_test)} test samples "
        "(a split stratified by class, random_state=0)"
    )
    print(f"hyperparameters: {params}, BLAS threads: {args.threads}")
    # BLAS libraries only (threadpoolctl lists OpenMP runtimes too, without a version).
    blas = [
        " ".join(filter(None, [info["internal_api"], info.get("version")]))
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    print(f"BLAS: {', '.join(sorted(set(blas))) or 'unknown'}")

    with threadpool_limits(args.threads):
        compile_time = _prepare_kernels()
        ours = BackpropClassifier(**params)
        ours_time = _timed_fit(ours, X_train, y_train)
        theirs = MLPClassifier(**params)
        theirs_time = _timed_fit(theirs, X_train, y_train)

    rows = [
        ("BackpropClassifier", ours.score(X_test, y_test), ours_time, ours.n_iter_),
        ("MLPClassifier", theirs.score(X_test, y_test), theirs_time, theirs.n_iter_),
    ]
    print()
    print(f"{'estimator':<20} {'test accuracy':>14} {'fit time (s)':>13} {'epochs':>7}")
    for name, accuracy, seconds, epochs in rows:
        print(f"{name:<20} {accuracy:>14.4f} {seconds:>13.3f} {epochs:>7d}")
    print()
    print(
        f"speed-up: {theirs_time / ours_time:.1f}x (fit times exclude fastbp's one-off "
        f"kernel compilation or cache load: {compile_time:.2f} s)"
    )
    same = all(np.allclose(a, b, rtol=1e-6, atol=1e-9) for a, b in zip(ours.coefs_, theirs.coefs_))
    print(f"same weights as MLPClassifier (rtol 1e-6): {'yes' if same else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
