"""The vectorised exp and tanh of the kernels against numpy, ulp by ulp."""

import numpy as np
import pytest
from numba import njit

from fastbp import _layer_math


# The kernels' helpers have no Python entry point (it costs compile time): call
# them through small compiled wrappers.
@njit
def exp_inplace(values):
    _layer_math._exp_all(values, np.empty(2 * _layer_math._BLOCK, dtype=np.int64))


@njit
def tanh_inplace(values):
    bits = np.empty(2 * _layer_math._BLOCK, dtype=np.int64)
    _layer_math._tanh_all(values, bits, np.empty(_layer_math._BLOCK, dtype=values.dtype))


def _ulps(actual, expected):
    """|actual - expected| in units of the last place of ``expected``'s dtype."""
    spacing = np.spacing(np.abs(expected)).astype(np.float64)
    return np.abs(actual.astype(np.float64) - expected.astype(np.float64)) / spacing


def _inputs(dtype):
    rng = np.random.RandomState(0)
    lo, hi = (-745.0, 709.7) if dtype == np.float64 else (-103.0, 88.7)
    return np.concatenate(
        [rng.uniform(-40, 40, 50000), rng.uniform(lo, hi, 20000), rng.normal(size=20000) * 1e-4]
    ).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_within_two_ulps_of_numpy(dtype):
    x = _inputs(dtype)
    result = x.copy()
    exp_inplace(result)
    expected = np.exp(x.astype(np.float64)).astype(dtype)
    normal = np.isfinite(expected) & (expected >= np.finfo(dtype).tiny)
    assert _ulps(result[normal], expected[normal]).max() <= 2
    # subnormal results: right to within rounding of the smallest subnormals
    tiny = ~normal & np.isfinite(expected)
    assert np.allclose(
        result[tiny], expected[tiny], rtol=1e-6, atol=4 * np.finfo(dtype).smallest_subnormal
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exp_special_values(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 709.8, -746.0], dtype=dtype)
    exp_inplace(x)
    with np.errstate(over="ignore"):
        expected = np.exp(np.array([0, 0, np.inf, -np.inf, np.nan, 1e4, -1e4, 709.8, -746.0]))
    np.testing.assert_array_equal(x, expected.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_within_two_ulps_of_numpy(dtype):
    x = np.concatenate([_inputs(dtype), np.array([0.0, np.inf, -np.inf, np.nan, 1e-30], dtype)])
    result = x.copy()
    tanh_inplace(result)
    expected = np.tanh(x.astype(np.float64)).astype(dtype)
    finite = np.isfinite(expected) & (expected != 0)
    assert _ulps(result[finite], expected[finite]).max() <= 2
    np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    np.testing.assert_array_equal(
        result[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)]
    )
