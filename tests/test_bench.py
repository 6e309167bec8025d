"""The benchmark command runs and reports (timings themselves are never asserted)."""

import subprocess
import sys

from fastbp.bench import epoch_gemms


def test_epoch_gemms_lists_forward_gradient_and_delta_products():
    shapes = epoch_gemms(n_samples=5, units=[3, 4, 2], batch=4)
    # batches of 4 and 1 rows; per batch: 2 forward, 2 weight gradients, 1 delta
    assert len(shapes) == 10
    assert shapes[:5] == [(4, 3, 4), (3, 4, 4), (4, 4, 2), (4, 4, 2), (4, 2, 4)]


def test_bench_command_prints_a_comparison_table():
    result = subprocess.run(
        [sys.executable, "-m", "fastbp.bench", "--samples", "300", "--features", "5",
         "--hidden", "8", "--batch", "50", "--epochs", "1", "--repeats", "1",
         "--dtype", "float64", "--no-torch"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    table = [line for line in result.stdout.splitlines() if line.startswith("| custom")]
    assert len(table) == 1 and "×" in table[0]
    assert "BackpropClassifier run 1/1" in result.stderr  # one progress line per run
    assert "# blas:" in result.stdout
