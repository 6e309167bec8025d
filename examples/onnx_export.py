"""Export to ONNX through to_sklearn() and skl2onnx, and check ONNX Runtime's
predictions against fastbp's (needs: pip install "fastbp[onnx]").

Run: python examples/onnx_export.py
"""

import warnings

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
clf = BackpropClassifier(max_iter=50, random_state=0).fit(X, y)

onnx_model = to_onnx(clf.to_sklearn(), X[:1], options={"zipmap": False})
session = onnxruntime.InferenceSession(
    onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
)
labels, probabilities = session.run(None, {session.get_inputs()[0].name: X})
print(f"ONNX model: {len(onnx_model.SerializeToString()) / 1024:.0f} KiB")
print(f"same labels as fastbp: {np.array_equal(labels, clf.predict(X))}")
print(f"largest probability difference: {np.abs(probabilities - clf.predict_proba(X)).max():.2e}")
