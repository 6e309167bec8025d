"""What differs across the dependency versions fastbp supports (pyproject.toml's
floors to the latest), detected by behaviour rather than by version number."""

import numpy as np

#: Whether arithmetic on a float32 scalar with a Python float stays float32: numpy 2's
#: promotion rules (NEP 50). numpy 1.x gives float64, and so scikit-learn's regressors
#: record a float32 fit's losses as float64 there.
SCALAR_ARITHMETIC_KEEPS_FLOAT32 = (np.float32(1) * 0.5).dtype == np.float32
