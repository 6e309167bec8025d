"""One SGD step on a 2-2-1 network, worked out by hand.

x = (1, 2), target 1; hidden ReLU layer W1 = [[0.1, 0.2], [0.3, -0.4]], b1 = (0, 0.1);
identity output W2 = (0.5, -0.6)^T, b2 = 0.2; squared error, no penalty, lr = 0.1.

forward   z1 = x W1 + b1 = (0.7, -0.5)        a1 = relu(z1) = (0.7, 0)
          z2 = a1 W2 + b2 = 0.35 + 0 + 0.2 = 0.55
error     E = (1 - 0.55)^2 / 2 = 0.10125
backward  d2 = 0.55 - 1 = -0.45
          dE/dW2 = a1^T d2 = (-0.315, 0)     dE/db2 = -0.45
          d1 = (d2 W2^T) * relu'(z1) = (-0.225, 0.27) * (1, 0) = (-0.225, 0)
          dE/dW1 = x^T d1 = [[-0.225, 0], [-0.45, 0]]   dE/db1 = (-0.225, 0)
update    W <- W - 0.1 dE/dW
"""

import warnings

import numpy as np
from numpy.testing import assert_allclose

from fastbp import BackpropRegressor


def test_one_sgd_step_matches_the_hand_worked_example():
    X = np.array([[1.0, 2.0]])
    y = np.array([1.0])
    est = BackpropRegressor(
        hidden_layer_sizes=(2,),
        solver="sgd",
        learning_rate_init=0.1,
        momentum=0.0,
        alpha=0.0,
        batch_size=1,
        max_iter=1,
        shuffle=False,
        warm_start=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)  # creates the network; its weights are replaced below
        est.coefs_ = [np.array([[0.1, 0.2], [0.3, -0.4]]), np.array([[0.5], [-0.6]])]
        est.intercepts_ = [np.array([0.0, 0.1]), np.array([0.2])]
        assert_allclose(est.predict(X), [0.55])
        est.fit(X, y)

    assert_allclose(est.loss_, 0.10125)
    assert_allclose(est.coefs_[0], [[0.1225, 0.2], [0.345, -0.4]])
    assert_allclose(est.intercepts_[0], [0.0225, 0.1])
    assert_allclose(est.coefs_[1], [[0.5315], [-0.6]])
    assert_allclose(est.intercepts_[1], [0.245])
