"""Time the hyperparameter search a user runs: ``GridSearchCV`` over a scaled pipeline,
fastbp against scikit-learn's MLP on the same grid, folds and data.

A search is hundreds of short fits, so what it measures is what a single long fit
hides: the cost of entering the compiled code, of each epoch's bookkeeping, of each
fit's validation, and of starting worker processes (``n_jobs=2``). In one process it
also counts fastbp's epochs and the time inside the epoch kernel, and sets the time
per epoch against the epoch's *GEMM floor*: the same matrix products timed alone.
"""

import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fastbp import BackpropClassifier, _kernels

#: name -> (loader, estimator parameters, grid of the estimator's parameters, folds)
SEARCHES = {
    # The grid of the performance issue: 9 candidates x 5 folds, breast cancer.
    "breast_cancer": (
        load_breast_cancer,
        {"max_iter": 300},
        {"alpha": [1e-4, 1e-2, 1.0], "hidden_layer_sizes": [(30,), (30, 30), (100,)]},
        5,
    ),
    # 24 candidates x 5 folds on digits: width/depth x L2 x step size.
    "digits": (
        load_digits,
        {"max_iter": 60},
        {
            "hidden_layer_sizes": [(50,), (100,), (50, 50)],
            "alpha": [1e-4, 1e-2],
            "learning_rate_init": [1e-3, 3e-3, 1e-2, 3e-2],
        },
        5,
    ),
}


def _search(estimator, name, n_jobs):
    loader, params, grid, folds = SEARCHES[name]
    pipeline = Pipeline([("scale", StandardScaler()), ("est", estimator.set_params(**params))])
    grid = {f"est__{key}": values for key, values in grid.items()}
    return GridSearchCV(pipeline, grid, cv=folds, n_jobs=n_jobs)


def _timed_search(estimator, name, n_jobs, X, y):
    search = _search(estimator, name, n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        search.fit(X, y)
    return time.perf_counter() - start, search


class _EpochCounter:
    """Counts the epochs fastbp's kernel runs in this process, and its time."""

    def __enter__(self):
        self.epochs, self.seconds, self.fits = 0, 0.0, []
        self._real = _kernels.run_epochs

        def counted(*args):
            start = time.perf_counter()
            n_run, finite = self._real(*args)
            self.seconds += time.perf_counter() - start
            self.epochs += n_run
            self.fits.append((args[1].units.tolist(), args[6].shape[1], n_run))
            return n_run, finite

        _kernels.run_epochs = counted
        return self

    def __exit__(self, *exc):
        _kernels.run_epochs = self._real


def epoch_floor_seconds(units, n_samples, batch, dtype, repeats=20):
    """The GEMM floor of one epoch: its matrix products timed alone (numpy)."""
    from fastbp.bench import epoch_gemms, matmul_floor_seconds

    return matmul_floor_seconds(epoch_gemms(n_samples, units, batch), dtype, 1, repeats)


def run_search(name, n_jobs=1, repeats=1, progress=print):
    """Time one search with fastbp and with scikit-learn (BLAS at one thread per
    process); return a result row (dict)."""
    loader, _, grid, folds = SEARCHES[name]
    X, y = loader(return_X_y=True)
    n_candidates = int(np.prod([len(values) for values in grid.values()]))
    progress(f"search {name}: {n_candidates} candidates x {folds} folds, n_jobs={n_jobs}")
    # Compile (or load the cache) outside the timings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        BackpropClassifier(max_iter=1).fit(X[:50], y[:50])
    ours, theirs, epochs = [], [], None
    with threadpool_limits(1):
        for repeat in range(repeats):
            with _EpochCounter() as counter:
                seconds, ours_search = _timed_search(
                    BackpropClassifier(random_state=0), name, n_jobs, X, y
                )
            ours.append(seconds)
            if n_jobs == 1:
                epochs = counter
            seconds, theirs_search = _timed_search(
                MLPClassifier(random_state=0), name, n_jobs, X, y
            )
            theirs.append(seconds)
            progress(f"  run {repeat + 1}/{repeats}: fastbp {ours[-1]:.2f} s, "
                     f"scikit-learn {theirs[-1]:.2f} s")  # fmt: skip
        row = {
            "search": name,
            "n_jobs": n_jobs,
            "fits": n_candidates * folds + 1,  # and the refit on all the data
            "fastbp_s": statistics.median(ours),
            "sklearn_s": statistics.median(theirs),
            "best_score": (ours_search.best_score_, theirs_search.best_score_),
            "epochs": None,
        }
        if epochs is not None and epochs.epochs:
            floors = {}
            floor_total = 0.0
            for units, n_rows, n_run in epochs.fits:
                key = (tuple(units), n_rows)
                if key not in floors:
                    floors[key] = epoch_floor_seconds(units, n_rows, min(200, n_rows), X.dtype)
                floor_total += floors[key] * n_run
            row["epochs"] = {
                "count": epochs.epochs,
                "per_epoch_s": statistics.median(ours) / epochs.epochs,
                "kernel_per_epoch_s": epochs.seconds / epochs.epochs,
                "floor_per_epoch_s": floor_total / epochs.epochs,
            }
    return row


def format_search_table(rows):
    """A Markdown table of search result rows."""
    lines = [
        "| search | n_jobs | fits (with the refit) | fastbp | scikit-learn | speed-up "
        "| best score fastbp / sklearn | epochs | fastbp per epoch (in kernel) "
        "| GEMM floor per epoch "
        "| per epoch / floor |",
        "|" + "---|" * 11,
    ]
    for row in rows:
        epochs = row["epochs"]
        per_epoch = "–"
        if epochs:
            per_epoch = (
                f"{epochs['count']:,} | {epochs['per_epoch_s'] * 1e6:.0f} µs "
                f"({epochs['kernel_per_epoch_s'] * 1e6:.0f} µs) "
                f"| {epochs['floor_per_epoch_s'] * 1e6:.0f} µs "
                f"| {epochs['per_epoch_s'] / epochs['floor_per_epoch_s']:.2f}×"
            )
        else:
            per_epoch = "– | – | – | –"
        ours, theirs = row["best_score"]
        lines.append(
            f"| {row['search']} | {row['n_jobs']} | {row['fits']} | {row['fastbp_s']:.2f} s "
            f"| {row['sklearn_s']:.2f} s | {row['sklearn_s'] / row['fastbp_s']:.2f}× "
            f"| {ours:.4f} / {theirs:.4f} | {per_epoch} |"
        )
    return "\n".join(lines)
