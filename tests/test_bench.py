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


def test_search_timing_reports_both_libraries_and_the_epochs(monkeypatch):
    from fastbp import _search_timing

    # the grid, cut to 2 candidates x 2 folds and a few epochs
    loader, _, _, _ = _search_timing.SEARCHES["breast_cancer"]
    monkeypatch.setitem(
        _search_timing.SEARCHES,
        "breast_cancer",
        (loader, {"max_iter": 5}, {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(8,)]}, 2),
    )
    row = _search_timing.run_search("breast_cancer", n_jobs=1, progress=lambda message: None)
    assert row["fits"] == 5 and row["fastbp_s"] > 0 and row["sklearn_s"] > 0
    assert row["epochs"]["count"] == 5 * 5  # every fit's epochs, counted in the kernel
    assert row["epochs"]["floor_per_epoch_s"] > 0
    table = _search_timing.format_search_table([row])
    assert table.splitlines()[2].startswith("| breast_cancer | 1 | 5 |")
