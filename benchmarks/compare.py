"""Side-by-side training throughput: fastbp vs scikit-learn's MLP (vs PyTorch if
installed), on the same data in the same run, reported as ratios.

Run by hand (never in CI); for a fair BLAS, unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE together in that one command:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare.py --cases tiny digits

Throughput is training samples per second: epochs x samples / fit time.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor
from threadpoolctl import threadpool_info, threadpool_limits

from fastbp import BackpropClassifier, BackpropRegressor

# name: (n_samples, n_features, n_classes or 0 for regression, hidden, batch, epochs)
CASES = {
    "tiny": (2000, 20, 3, (32,), 32, 20),
    "digits": (1797, 64, 10, (100,), 200, 30),
    "regression": (20000, 50, 0, (64, 64), 64, 5),
    "medium": (60000, 784, 10, (256,), 128, 2),
    "deep": (20000, 100, 10, (512, 512, 512), 256, 2),
}


def make_data(n_samples, n_features, n_classes, dtype, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(dtype)
    if n_classes:
        w = rng.normal(size=(n_features, n_classes))
        y = np.argmax(X @ w + rng.normal(size=(n_samples, n_classes)), axis=1)
    else:
        y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n_samples)).astype(dtype)
    return X, y


def time_fit(estimator_class, params, X, y, repeats):
    times = []
    for _ in range(repeats):
        estimator = estimator_class(**params)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)
        times.append(time.perf_counter() - start)
    return times, estimator


def torch_fit_times(X, y, hidden, batch, epochs, classification, repeats):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(torch.get_num_threads())
    dtype = torch.float32 if X.dtype == np.float32 else torch.float64
    Xt = torch.from_numpy(X).to(dtype)
    yt = torch.from_numpy(y.astype(np.int64) if classification else y.astype(X.dtype))
    n_out = int(y.max()) + 1 if classification else 1
    times = []
    for _ in range(repeats):
        layers, width = [], X.shape[1]
        for h in hidden:
            layers += [torch.nn.Linear(width, h, dtype=dtype), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_out, dtype=dtype))
        model = torch.nn.Sequential(*layers)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        loss_fn = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
        start = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(Xt))
            for i in range(0, len(Xt), batch):
                idx = order[i : i + batch]
                optimizer.zero_grad()
                out = model(Xt[idx])
                loss = loss_fn(out, yt[idx]) if classification else loss_fn(out[:, 0], yt[idx])
                loss.backward()
                optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", nargs="+", default=["tiny", "digits", "regression"], choices=sorted(CASES)
    )
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    for info in threadpool_info():
        print(
            f"# BLAS: {info['internal_api']} {info.get('version')} "
            f"kernel={info.get('architecture')} threads={info['num_threads']}"
        )
    print(f"# threads used: {args.threads}; repeats: {args.repeats}; median [min-max]\n")
    header = (
        "| case | dtype | fastbp samples/s | sklearn samples/s | torch samples/s "
        "| fastbp/sklearn | fastbp/torch | loss fastbp | loss sklearn |"
    )
    print(header)
    print("|" + "---|" * 9)
    # Compile outside the timings.
    for dtype in (np.float64, np.float32):
        time_fit(BackpropClassifier, dict(max_iter=1), *make_data(50, 3, 2, dtype), repeats=1)
    with threadpool_limits(args.threads):
        for name in args.cases:
            n_samples, n_features, n_classes, hidden, batch, epochs = CASES[name]
            for dtype in args.dtypes:
                X, y = make_data(n_samples, n_features, n_classes, np.dtype(dtype))
                params = dict(
                    hidden_layer_sizes=hidden,
                    batch_size=batch,
                    max_iter=epochs,
                    tol=0.0,
                    n_iter_no_change=10**9,
                    random_state=0,
                )
                ours_cls, theirs_cls = (
                    (BackpropClassifier, MLPClassifier)
                    if n_classes
                    else (BackpropRegressor, MLPRegressor)
                )
                work = n_samples * epochs
                ours_t, ours = time_fit(ours_cls, params, X, y, args.repeats)
                theirs_t, theirs = time_fit(theirs_cls, params, X, y, args.repeats)
                torch_t = torch_fit_times(
                    X, y, hidden, batch, epochs, bool(n_classes), args.repeats
                )
                ours_rate = work / statistics.median(ours_t)
                theirs_rate = work / statistics.median(theirs_t)
                torch_rate = work / statistics.median(torch_t) if torch_t else float("nan")
                print(
                    f"| {name} | {dtype} | {ours_rate:,.0f} [{work / max(ours_t):,.0f}-"
                    f"{work / min(ours_t):,.0f}] | {theirs_rate:,.0f} | {torch_rate:,.0f} | "
                    f"{ours_rate / theirs_rate:.2f} | {ours_rate / torch_rate:.2f} | "
                    f"{ours.loss_:.4f} | {theirs.loss_:.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
