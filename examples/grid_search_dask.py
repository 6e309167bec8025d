"""Hyperparameter search on a Dask cluster, with results identical to n_jobs=1.

Run: python examples/grid_search_dask.py   (needs: pip install "fastbp[dask]")

Here the cluster is a LocalCluster of two worker processes on this machine, bound to
127.0.0.1. To use a real cluster, start a scheduler and workers there
(`dask scheduler`, `dask worker tcp://SCHEDULER:8786`) and replace the LocalCluster
block by `client = Client("tcp://SCHEDULER:8786")`. On each worker machine:

* put NUMBA_CACHE_DIR on local disk (not NFS) so compiled kernels load fast, and
* run `client.run(fastbp.warmup)` once, so no task pays for compilation.

Dask already limits BLAS to one thread per worker process (OPENBLAS_NUM_THREADS=1),
so workers do not oversubscribe the cores; give each worker one thread.
"""

import time
import warnings

import joblib
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
grid = {
    "hidden_layer_sizes": [(32,), (64,)],
    "alpha": [1e-4, 1e-2],
    "learning_rate_init": [1e-3, 3e-3],
}


def search():
    return GridSearchCV(BackpropClassifier(max_iter=30, random_state=0), grid, cv=3, n_jobs=-1)


if __name__ == "__main__":
    fastbp.warmup()  # compile once here; the workers load the cached kernels
    start = time.perf_counter()
    local = search().set_params(n_jobs=1).fit(X, y)
    print(f"one process: best {local.best_params_}, {time.perf_counter() - start:.1f} s")

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
        print(
            f"dask, 2 workers: best {distributed.best_params_}, {time.perf_counter() - start:.1f} s"
        )
    same = (
        local.cv_results_["mean_test_score"] == distributed.cv_results_["mean_test_score"]
    ).all()
    print(f"identical cross-validation scores: {same}")
