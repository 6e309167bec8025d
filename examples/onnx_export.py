"""
Export to ONNX
==============

Export straight from skl2onnx, and check ONNX Runtime's predictions against fastbp's
(needs ``pip install "fastbp[onnx]"``). skl2onnx takes fastbp's estimators directly,
with every activation fastbp has: here an ELU network, which scikit-learn's MLP (and
so ``to_sklearn()``) cannot express. fastbp registers its converters by itself when
skl2onnx is imported.

Run: ``python examples/onnx_export.py``
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from fastbp import BackpropClassifier

# fixed epoch budgets, on purpose: not converging is expected here
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)  # ONNX models commonly take float32
clf = BackpropClassifier(activation="elu", max_iter=50, random_state=0).fit(X, y)

# %%
# Convert, and run with ONNX Runtime
# ----------------------------------
# ``zipmap=False``: probabilities as one array rather than one dict per row.
onnx_model = to_onnx(clf, X[:1], options={"zipmap": False})
session = onnxruntime.InferenceSession(
    onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
)
labels, probabilities = session.run(None, {session.get_inputs()[0].name: X})
print(f"ONNX model: {len(onnx_model.SerializeToString()) / 1024:.0f} KiB")
print(f"operators: {sorted({node.op_type for node in onnx_model.graph.node})}")
print(f"same labels as fastbp: {np.array_equal(labels, clf.predict(X))}")
difference = np.abs(probabilities - clf.predict_proba(X)).max()
print(f"largest probability difference: {difference:.2e}")

# %%
# Every probability, both ways
# ----------------------------
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(clf.predict_proba(X).ravel(), probabilities.ravel(), s=3)
ax.set_xlabel("fastbp predict_proba")
ax.set_ylabel("ONNX Runtime probability")
ax.set_title(f"{probabilities.size} probabilities, largest difference {difference:.1e}")
plt.show()
