"""A fresh process to its first prediction: import, a small fit, one row predicted.

The start-up section of ``benchmarks/startup.py`` times this whole process, and reads
the in-process steps it prints (seconds, JSON) as its profile.
"""

import time

start = time.perf_counter()
import json  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

numpy_imported = time.perf_counter()
import sklearn.base  # noqa: E402, F401  - shared by both libraries

sklearn_base_imported = time.perf_counter()
from _library import mlp_classifier  # noqa: E402

MLPClassifier = mlp_classifier()
estimator_imported = time.perf_counter()
from sklearn.datasets import load_iris  # noqa: E402

X, y = load_iris(return_X_y=True)
X = np.ascontiguousarray(X)
warnings.simplefilter("ignore")  # 20 epochs do not converge
data_loaded = time.perf_counter()
model = MLPClassifier(hidden_layer_sizes=(20,), max_iter=20, random_state=0).fit(X, y)
fitted = time.perf_counter()
model.predict_proba(X[:1])
predicted = time.perf_counter()
print(
    json.dumps(
        {
            "import numpy": numpy_imported - start,
            "import sklearn.base": sklearn_base_imported - numpy_imported,
            "import the estimator": estimator_imported - sklearn_base_imported,
            "load iris": data_loaded - estimator_imported,
            "first fit (20 epochs)": fitted - data_loaded,
            "first prediction (1 row)": predicted - fitted,
        }
    )
)
