"""Time fastbp against scikit-learn's MLP (and PyTorch, when installed) on one shape.

Run ``python -m fastbp.bench --help``; for example::

    python -m fastbp.bench --samples 60000 --features 784 --hidden 256 --batch 128
    python -m fastbp.bench --search breast_cancer digits --jobs 1 2

Every case is synthetic data of the given shape (a random teacher network plus
noise; the "digits" case has the shape of scikit-learn's digits, not its images).
Every contender trains the same architecture (ReLU, Adam, the given batch size) for
the same number of epochs on the same data, in the same process, one after the
other; the table reports medians over the repeats, the ratios, the final training
loss and a held-out score (to show equal work), the fraction of the *matmul floor*
(the time the same matrix products take alone, with numpy) and GFLOP/s next to the
machine's GEMM rate measured in the same run.
"""

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_info, threadpool_limits

from fastbp import BackpropClassifier, BackpropRegressor, __version__
from fastbp._search_timing import SEARCHES, format_search_table, run_search

#: name -> (n_samples, n_features, n_classes (0: regression), hidden, batch, epochs).
#: Every case trains on synthetic data of that shape (see make_data): "digits" has the
#: shape of scikit-learn's digits (1797 x 64, 10 classes), not its images.
CASES = {
    "tiny": (2000, 20, 3, (32,), 32, 20),
    "digits": (1797, 64, 10, (100,), 200, 30),
    "regression": (20000, 50, 0, (64, 64), 64, 3),
    "medium": (60000, 784, 10, (256,), 128, 1),
    "deep": (20000, 100, 10, (512, 512, 512), 256, 1),
}


def make_data(n_samples, n_features, n_classes, dtype, seed=0):
    """A learnable synthetic problem (a random teacher network plus noise)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    hidden = np.tanh(X @ rng.normal(size=(n_features, 16)) / np.sqrt(n_features))
    if n_classes:
        logits = hidden @ rng.normal(size=(16, n_classes)) * 3
        y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    else:
        y = (hidden @ rng.normal(size=16) + 0.1 * rng.normal(size=n_samples)).astype(dtype)
    return X, y


def machine_description():
    """CPU, cores, library versions and the BLAS libraries threadpoolctl sees."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba
    import scipy
    import sklearn

    versions = (
        f"Python {platform.python_version()}, fastbp {__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, numba {numba.__version__}, scikit-learn {sklearn.__version__}"
    )
    torch = _torch()
    if torch is not None:
        versions += f", torch {torch.__version__}"
    blas = sorted(
        {
            f"{info['internal_api']} {info.get('version')} ({info.get('architecture')} kernel, "
            f"{os.path.basename(info['filepath'])})"
            for info in threadpool_info()
            if info["user_api"] == "blas"
        }
    )
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "versions": versions,
        "blas": "; ".join(blas),
        "openblas_coretype": coretype or "unset",
    }


def gemm_rate(dtype, threads, size=1024, repeats=5):
    """The machine's GEMM rate in GFLOP/s (numpy, square matrices), now."""
    rng = np.random.RandomState(0)
    a = rng.normal(size=(size, size)).astype(dtype)
    b = rng.normal(size=(size, size)).astype(dtype)
    out = np.empty_like(a)
    with threadpool_limits(threads):
        np.matmul(a, b, out=out)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


def epoch_gemms(n_samples, units, batch):
    """The (m, k, n) shapes of every matrix product in one epoch of backprop:
    forward, weight gradients, and deltas (none for the input layer)."""
    shapes = []
    for start in range(0, n_samples, batch):
        rows = min(batch, n_samples - start)
        for fan_in, fan_out in zip(units[:-1], units[1:]):
            shapes.append((rows, fan_in, fan_out))  # forward
            shapes.append((fan_in, rows, fan_out))  # weight gradient
        for fan_in, fan_out in zip(units[1:-1], units[2:]):
            shapes.append((rows, fan_out, fan_in))  # delta to the layer below
    return shapes


def matmul_floor_seconds(shapes, dtype, threads, repeats):
    """Time of the same matrix products alone (numpy, preallocated outputs)."""
    rng = np.random.RandomState(0)
    operands = {}
    for m, k, n in set(shapes):
        operands[(m, k, n)] = (
            rng.normal(size=(m, k)).astype(dtype),
            rng.normal(size=(k, n)).astype(dtype),
            np.empty((m, n), dtype=dtype),
        )
    times = []
    with threadpool_limits(threads):
        for _ in range(repeats):
            start = time.perf_counter()
            for shape in shapes:
                a, b, out = operands[shape]
                np.matmul(a, b, out=out)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _fit_quietly(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def time_estimator(estimator_class, params, X_train, y_train, repeats, threads, progress):
    times, estimator = [], None
    with threadpool_limits(threads):
        for repeat in range(repeats):
            estimator = estimator_class(**params)
            start = time.perf_counter()
            _fit_quietly(estimator, X_train, y_train)
            times.append(time.perf_counter() - start)
            progress(f"  {estimator_class.__name__} run {repeat + 1}/{repeats}: {times[-1]:.3f} s")
    return times, estimator


def time_torch(X_train, y_train, X_test, y_test, hidden, batch, epochs, alpha, classification,
               repeats, threads, progress):  # fmt: skip
    """An equivalent nn.Sequential loop: ReLU layers, Adam, shuffled minibatches."""
    torch = _torch()
    if torch is None:
        return None
    torch.manual_seed(0)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    dtype = torch.float32 if X_train.dtype == np.float32 else torch.float64
    Xt = torch.from_numpy(np.ascontiguousarray(X_train)).to(dtype)
    if classification:
        yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
        n_out = int(max(y_train.max(), y_test.max())) + 1
    else:
        yt = torch.from_numpy(np.asarray(y_train)).to(dtype)
        n_out = 1
    times, loss_value = [], float("nan")
    try:
        for repeat in range(repeats):
            layers, width = [], X_train.shape[1]
            for units in hidden:
                layers += [torch.nn.Linear(width, units, dtype=dtype), torch.nn.ReLU()]
                width = units
            layers.append(torch.nn.Linear(width, n_out, dtype=dtype))
            model = torch.nn.Sequential(*layers)
            # scikit-learn's L2 term is alpha / (2 * batch) * ||W||^2 per batch.
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=alpha / batch)
            loss_fn = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
            start = time.perf_counter()
            for _ in range(epochs):
                order = torch.randperm(len(Xt))
                total = 0.0
                for i in range(0, len(Xt), batch):
                    idx = order[i : i + batch]
                    optimizer.zero_grad()
                    out = model(Xt[idx])
                    target = yt[idx]
                    loss = loss_fn(out, target) if classification else loss_fn(out[:, 0], target)
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(idx)
                loss_value = total / len(Xt)
            times.append(time.perf_counter() - start)
            progress(f"  torch run {repeat + 1}/{repeats}: {times[-1]:.3f} s")
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(X_test)).to(dtype))
            if classification:
                score = float((out.argmax(dim=1).numpy() == y_test).mean())
            else:
                residual = ((out[:, 0].numpy() - y_test) ** 2).sum()
                score = float(1 - residual / ((y_test - y_test.mean()) ** 2).sum())
    finally:
        torch.set_num_threads(previous_threads)
        # PyTorch's OpenMP threads keep spinning for a while after its last call and
        # would steal a core from the next timing in this interleaved run: let them
        # go idle first (setting OMP_WAIT_POLICY=passive instead slows PyTorch).
        time.sleep(1.0)
    if not classification:
        loss_value /= 2  # MSELoss is twice scikit-learn's half squared error
    return {"times": times, "loss": loss_value, "score": score}


def run_case(name, shape, dtype, threads=1, repeats=3, use_torch=True, progress=print):
    """Time one case in one dtype and thread count; return a result row (dict)."""
    n_samples, n_features, n_classes, hidden, batch, epochs = shape
    dtype = np.dtype(dtype)
    X, y = make_data(int(n_samples * 1.25), n_features, n_classes, dtype)
    X_train, X_test, y_train, y_test = X[:n_samples], X[n_samples:], y[:n_samples], y[n_samples:]
    params = dict(hidden_layer_sizes=tuple(hidden), batch_size=batch, max_iter=epochs,
                  tol=0.0, n_iter_no_change=10**9, random_state=0)  # fmt: skip
    ours_class, theirs_class = (
        (BackpropClassifier, MLPClassifier) if n_classes else (BackpropRegressor, MLPRegressor)
    )
    progress(f"{name} {dtype.name}, {threads} thread(s): {n_samples}x{n_features} synthetic "
             f"data, hidden {tuple(hidden)}, batch {batch}, {epochs} epoch(s)")  # fmt: skip
    # Compile (or load the cache) outside the timings, on 64 rows: a batch that fits
    # them, or scikit-learn's "batch_size larger than sample size" warning would show.
    warm_params = {**params, "max_iter": 1, "batch_size": min(batch, 64)}
    _fit_quietly(ours_class(**warm_params), X_train[:64], y_train[:64])
    ours_times, ours = time_estimator(ours_class, params, X_train, y_train, repeats, threads,
                                      progress)  # fmt: skip
    theirs_times, theirs = time_estimator(theirs_class, params, X_train, y_train, repeats,
                                          threads, progress)  # fmt: skip
    torch_result = None
    if use_torch:
        torch_result = time_torch(
            X_train, y_train, X_test, y_test, hidden, batch, epochs, ours.alpha,
            bool(n_classes), repeats, threads, progress,
        )  # fmt: skip
    units = [n_features, *hidden, n_classes if n_classes > 2 else 1]
    shapes = epoch_gemms(n_samples, units, batch)
    floor = matmul_floor_seconds(shapes, dtype, threads, repeats) * epochs
    flops = 2 * sum(m * k * n for m, k, n in shapes) * epochs
    work = n_samples * epochs
    row = {
        "case": name,
        "dtype": dtype.name,
        "threads": threads,
        "fastbp": _rates(work, ours_times),
        "sklearn": _rates(work, theirs_times),
        "torch": _rates(work, torch_result["times"]) if torch_result else None,
        "floor_rate": work / floor,
        "floor_fraction": floor / statistics.median(ours_times),
        "gflops": flops / statistics.median(ours_times) / 1e9,
        "loss": {
            "fastbp": ours.loss_,
            "sklearn": theirs.loss_,
            "torch": torch_result["loss"] if torch_result else None,
        },  # fmt: skip
        "score": {
            "fastbp": ours.score(X_test, y_test),
            "sklearn": theirs.score(X_test, y_test),
            "torch": torch_result["score"] if torch_result else None,
        },  # fmt: skip
    }
    return row


def _rates(work, times):
    return {
        "median": work / statistics.median(times),
        "min": work / max(times),
        "max": work / min(times),
    }


def _number(value, digits=0):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def format_table(rows, gemm_rates):
    """A Markdown table of result rows; ``gemm_rates`` maps (dtype, threads) to GFLOP/s."""
    lines = [
        "| case | dtype | threads | fastbp samples/s (min–max) | sklearn samples/s "
        "| torch samples/s | fastbp / sklearn | fastbp / torch | matmul floor samples/s "
        "| fraction of floor | fastbp GFLOP/s (machine GEMM) | train loss fastbp / sklearn / torch "
        "| held-out score fastbp / sklearn / torch |",
        "|" + "---|" * 13,
    ]
    for row in rows:
        ours, theirs, torch = row["fastbp"], row["sklearn"], row["torch"]
        loss, score = row["loss"], row["score"]
        lines.append(
            f"| {row['case']} | {row['dtype']} | {row['threads']} "
            f"| {_number(ours['median'])} ({_number(ours['min'])}–{_number(ours['max'])}) "
            f"| {_number(theirs['median'])} | {_number(torch['median'] if torch else None)} "
            f"| {ours['median'] / theirs['median']:.2f}× "
            f"| {_number(ours['median'] / torch['median'] if torch else None, 2)}"
            f"{'×' if torch else ''} "
            f"| {_number(row['floor_rate'])} | {row['floor_fraction']:.0%} "
            f"| {row['gflops']:.1f} ({gemm_rates[(row['dtype'], row['threads'])]:.0f}) "
            f"| {_number(loss['fastbp'], 4)} / {_number(loss['sklearn'], 4)} / "
            f"{_number(loss['torch'], 4)} "
            f"| {_number(score['fastbp'], 3)} / {_number(score['sklearn'], 3)} / "
            f"{_number(score['torch'], 3)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastbp.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--case", choices=sorted(CASES), help="a predefined case")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10, help="0 for regression")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument(
        "--search", nargs="+", choices=sorted(SEARCHES),
        help="time these GridSearchCV searches instead (fastbp vs scikit-learn)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, nargs="+", default=[1], help="n_jobs of --search")
    args = parser.parse_args(argv)

    if args.case:
        shape = CASES[args.case]
        name = args.case
    else:
        shape = (args.samples, args.features, args.classes, tuple(args.hidden), args.batch,
                 args.epochs)  # fmt: skip
        name = "custom"
    machine = machine_description()
    for key, value in machine.items():
        print(f"# {key}: {value}")
    if _torch() is None and not args.no_torch:
        print("# torch: not installed (pip install torch==2.13.0 for the CPU build)")

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    if args.search:
        rows = [
            run_search(name, n_jobs, args.repeats, progress)
            for name in args.search
            for n_jobs in args.jobs
        ]
        print(format_search_table(rows))
        return 0
    rows, gemm_rates = [], {}
    for threads in args.threads:
        for dtype in args.dtype:
            gemm_rates[(dtype, threads)] = gemm_rate(np.dtype(dtype), threads)
            rows.append(run_case(name, shape, dtype, threads, args.repeats,
                                 not args.no_torch, progress))  # fmt: skip
    print(format_table(rows, gemm_rates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
