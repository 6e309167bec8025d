"""
Backpropagation, step by step
=============================

A network small enough to follow by hand: 2 inputs -> 2 hidden units (tanh) -> 1
output (logistic), with the binary cross-entropy as the error.

We compute one forward pass, the error, the backward pass by the chain rule and the
SGD update with numpy, printing every quantity, and then check that fastbp's compiled
kernels take exactly the same step. The user guide's page on backpropagation walks
through the same numbers.

Run: ``python examples/backprop_walkthrough.py``
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np

from fastbp import BackpropClassifier

np.set_printoptions(precision=6, suppress=True)
x = np.array([[0.5, -1.0]])  # one sample, as a row
target = np.array([[1.0]])  # its class
W1 = np.array([[0.2, -0.3], [0.4, 0.1]])  # input -> hidden
b1 = np.array([0.1, -0.1])
W2 = np.array([[0.5], [-0.6]])  # hidden -> output
b2 = np.array([0.05])
learning_rate = 0.5

# %%
# 1. The forward pass
# -------------------
# Each layer multiplies its input by a weight matrix, adds a bias and applies its
# activation: tanh in the hidden layer, the logistic sigmoid at the output.
print("1. Forward pass")
z1 = x @ W1 + b1
a1 = np.tanh(z1)
z2 = a1 @ W2 + b2
p = 1 / (1 + np.exp(-z2))
print(f"   hidden pre-activation z1 = x W1 + b1 = {z1}")
print(f"   hidden activation     a1 = tanh(z1)  = {a1}")
print(f"   output pre-activation z2 = a1 W2 + b2 = {z2}")
print(f"   output                p  = sigmoid(z2) = {p}")

# %%
# 2. The error
# ------------
print("2. The error (binary cross-entropy)")
error = -(target * np.log(p) + (1 - target) * np.log(1 - p)).sum()
print(f"   E = -[t log p + (1 - t) log(1 - p)] = {error:.6f}")

# %%
# 3. The backward pass
# --------------------
# The sigmoid's derivative and the cross-entropy's cancel, so the output delta is
# simply ``p - t``. Each layer's weight gradient is its input (transposed) times its
# delta; the delta moves one layer down through the weights and the derivative of
# tanh, written from its output: ``1 - a**2``.
print("3. Backward pass, by the chain rule, from the output down")
delta2 = p - target  # dE/dz2: sigmoid and cross-entropy cancel to p - t
print(f"   dE/dz2 = p - t                      = {delta2}")
grad_W2 = a1.T @ delta2
grad_b2 = delta2.sum(axis=0)
print(f"   dE/dW2 = a1^T dE/dz2                = {grad_W2.ravel()}")
print(f"   dE/db2 = dE/dz2                     = {grad_b2}")
delta1 = (delta2 @ W2.T) * (1 - a1**2)  # back through W2, then tanh' = 1 - a^2
print(f"   dE/dz1 = (dE/dz2 W2^T) * (1 - a1^2) = {delta1}")
grad_W1 = x.T @ delta1
grad_b1 = delta1.sum(axis=0)
print(f"   dE/dW1 = x^T dE/dz1                 =\n{grad_W1}")
print(f"   dE/db1 = dE/dz1                     = {grad_b1}")

# %%
# 4. The update
# -------------
print(f"4. The update: W <- W - {learning_rate} dE/dW")
new = [W1 - learning_rate * grad_W1, W2 - learning_rate * grad_W2,
       b1 - learning_rate * grad_b1, b2 - learning_rate * grad_b2]  # fmt: skip
print(f"   W1 =\n{new[0]}\n   b1 = {new[2]}\n   W2 = {new[1].ravel()}\n   b2 = {new[3]}")

# %%
# 5. fastbp takes the same step
# -----------------------------
# A classifier with the same architecture, its weights replaced by ours, takes one
# SGD step on our sample with ``partial_fit``.
print("5. fastbp takes the same step")
X = np.vstack([x, -x])  # two samples, one per class, so the classifier has 2 classes
y = np.array([1, 0])
clf = BackpropClassifier(hidden_layer_sizes=(2,), activation="tanh", solver="sgd",
                         learning_rate_init=learning_rate, momentum=0.0, alpha=0.0,
                         batch_size=1, max_iter=1, shuffle=False)  # fmt: skip
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf.fit(X, y)  # builds the network; its weights are replaced next
    clf.coefs_ = [W1.copy(), W2.copy()]
    clf.intercepts_ = [b1.copy(), b2.copy()]
    clf.partial_fit(X[:1], y[:1])  # one minibatch: our sample, one SGD step
fastbp_weights = [clf.coefs_[0], clf.coefs_[1], clf.intercepts_[0], clf.intercepts_[1]]
same = all(np.allclose(a, b, rtol=1e-12, atol=1e-15) for a, b in zip(fastbp_weights, new))
print(f"   fastbp's weights after its compiled step equal the hand-computed ones: {same}")
print(f"   and its reported loss equals E: {np.isclose(clf.loss_, error)}")

# %%
# The network, drawn
# ------------------
# Each edge carries its weight before the step and, below it, the gradient of the
# error with respect to it; each unit shows its activation.
positions = {"x1": (0, 1), "x2": (0, 0), "h1": (1, 1), "h2": (1, 0), "p": (2, 0.5)}
values = {"x1": x[0, 0], "x2": x[0, 1], "h1": a1[0, 0], "h2": a1[0, 1], "p": p[0, 0]}
edges = [(f"x{i + 1}", f"h{j + 1}", W1[i, j], grad_W1[i, j]) for i in range(2) for j in range(2)]
edges += [(f"h{i + 1}", "p", W2[i, 0], grad_W2[i, 0]) for i in range(2)]
fig, ax = plt.subplots(figsize=(8, 4.5))
for start, end, weight, gradient in edges:
    (x0, y0), (x_end, y_end) = positions[start], positions[end]
    ax.plot([x0, x_end], [y0, y_end], color="tab:blue" if weight > 0 else "tab:red",
            linewidth=1 + 4 * abs(weight), alpha=0.6, zorder=1)  # fmt: skip
    fraction = 0.3 if start.startswith("x") and start[1] != end[1] else 0.5
    label_x, label_y = x0 + fraction * (x_end - x0), y0 + fraction * (y_end - y0)
    ax.annotate(f"w={weight:+.2f}\ndE/dw={gradient:+.3f}", (label_x, label_y), fontsize=8,
                ha="center", va="center", bbox={"boxstyle": "round", "fc": "white"})  # fmt: skip
for name, (node_x, node_y) in positions.items():
    ax.scatter([node_x], [node_y], s=1600, color="lightgrey", edgecolor="black", zorder=2)
    ax.annotate(f"{name}\n{values[name]:+.3f}", (node_x, node_y), ha="center", va="center")
ax.set_title(f"one sample, target t = 1: error E = {error:.4f}; blue > 0, red < 0")
ax.set_xlim(-0.3, 2.3)
ax.set_ylim(-0.3, 1.3)
ax.axis("off")
plt.show()
