"""
Hyperparameter search on a Dask cluster
=======================================

The same ``GridSearchCV`` in one process and on a Dask cluster through joblib's dask
backend, with identical results (needs ``pip install "fastbp[dask]"``).

Here the cluster is a ``LocalCluster`` of two worker processes on this machine, bound
to 127.0.0.1. To use a real cluster, start a scheduler and workers there
(``dask scheduler``, ``dask worker tcp://SCHEDULER:8786``) and replace the
``LocalCluster`` block by ``client = Client("tcp://SCHEDULER:8786")``. On each worker
machine:

* put ``NUMBA_CACHE_DIR`` on local disk (not NFS) so compiled kernels load fast, and
* run ``client.run(fastbp.warmup)`` once, so no task pays for compilation.

Dask already limits BLAS to one thread per worker process (``OPENBLAS_NUM_THREADS=1``),
so workers do not oversubscribe the cores; give each worker one thread.

Run: ``python examples/grid_search_dask.py``
"""

import time
import warnings

import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import fastbp
from fastbp import BackpropClassifier

# 30 epochs keep the demo short; the search does not need converged models.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
grid = {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2]}


def search():
    return GridSearchCV(BackpropClassifier(max_iter=30, random_state=0), grid, cv=3, n_jobs=-1)


# %%
# The search, in one process, then on the cluster
# -----------------------------------------------
# Worker processes start by importing this script, so the work sits under
# ``if __name__ == "__main__":``.
if __name__ == "__main__":
    fastbp.warmup()  # compile once here; the workers load the cached kernels
    start = time.perf_counter()
    local = search().set_params(n_jobs=1).fit(X, y)
    local_seconds = time.perf_counter() - start
    print(f"one process: best {local.best_params_}, {local_seconds:.1f} s")

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(fastbp.warmup)  # on a real cluster: every worker ready before the search
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            distributed = search().fit(X, y)
        dask_seconds = time.perf_counter() - start
        print(f"dask, 2 workers: best {distributed.best_params_}, {dask_seconds:.1f} s")
    same = (
        local.cv_results_["mean_test_score"] == distributed.cv_results_["mean_test_score"]
    ).all()
    print(f"identical cross-validation scores: {same}")

    # The cross-validated score of every candidate, from both runs.
    fig, ax = plt.subplots(figsize=(7, 3.5))
    positions = np.arange(len(local.cv_results_["params"]))
    for offset, (name, result) in zip((-0.2, 0.2), (("one process", local),
                                                   ("dask, 2 workers", distributed))):  # fmt: skip
        ax.bar(positions + offset, result.cv_results_["mean_test_score"], width=0.4, label=name)
    names = [f"{params['hidden_layer_sizes']}, alpha={params['alpha']:g}"
             for params in local.cv_results_["params"]]  # fmt: skip
    ax.set_xticks(positions, names, fontsize=8)
    ax.set_ylim(0.8, 1)
    ax.set_ylabel("mean cross-validated accuracy")
    ax.set_title(f"identical scores: {same}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    plt.show()
