"""What the demo and the benchmark print says what happened, and nothing confusing."""

import re
import warnings

import numpy as np
import pytest

from fastbp import __main__ as demo
from fastbp import bench


@pytest.fixture
def demo_output(monkeypatch, capsys):
    def run(cached):
        monkeypatch.setattr(demo, "kernels_are_cached", lambda dtype: cached)
        demo.main(["--max-iter", "2", "--hidden", "8"])
        return capsys.readouterr().out

    return run


def test_demo_blas_line_names_blas_libraries_only(demo_output):
    (line,) = [line for line in demo_output(True).splitlines() if line.startswith("BLAS:")]
    assert "None" not in line and "openmp" not in line.lower()
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info["user_api"] == "blas":
            assert info["internal_api"] in line


def test_demo_warm_run_says_what_is_ready(demo_output):
    lines = demo_output(True).splitlines()
    (ready,) = [line for line in lines if "ready in" in line]
    assert re.fullmatch(r"fastbp kernels loaded from the cache: ready in \d+\.\d\d s", ready)
    assert not any(line.startswith(" ") for line in lines)


def test_demo_cold_run_announces_compilation_on_the_same_line(demo_output):
    output = demo_output(False)
    assert re.search(r"First run in this environment: .*\.* ready in \d+\.\d\d s\n", output)


def test_demo_says_its_split_is_stratified(demo_output):
    assert "stratified" in demo_output(True).splitlines()[0]


def test_bench_warms_up_without_a_batch_size_warning():
    shape = (200, 5, 3, (8,), 128, 1)  # a batch larger than the 64 warm-up rows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bench.run_case("custom", shape, np.float64, repeats=1, use_torch=False,
                       progress=lambda message: None)  # fmt: skip
    assert not [w for w in caught if "batch_size" in str(w.message)]


def test_bench_says_its_cases_are_synthetic():
    messages = []
    bench.run_case("digits", (200, 5, 3, (8,), 32, 1), np.float64, repeats=1,
                   use_torch=False, progress=messages.append)  # fmt: skip
    assert "synthetic data" in messages[0]
    assert "not its images" in bench.__doc__


def test_quickstart_times_the_fit_apart_from_the_kernels():
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=600, env={**__import__("os").environ,
                                                       "MPLBACKEND": "Agg"}).stdout  # fmt: skip
    assert re.search(r"^kernels ready in \d+\.\d\d s", out, re.M)
    assert re.search(r"^trained \d+ epochs in \d+\.\d\d s$", out, re.M)
    assert "includes compilation" not in out
