import os
import re
import subprocess
import sys

import pytest


def test_demo_runs_and_reports_both_estimators():
    result = subprocess.run(
        [sys.executable, "-m", "fastbp", "--max-iter", "5"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert "BackpropClassifier" in result.stdout and "MLPClassifier" in result.stdout
    assert "test accuracy" in result.stdout
    assert "same weights as MLPClassifier (rtol 1e-6): yes" in result.stdout


def test_warmup_flag_compiles_and_exits():
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "fastbp", "--warmup"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert "fastbp kernels for float64: ready in" in result.stdout
    assert "fastbp kernels for float32: ready in" in result.stdout


@pytest.mark.slow
def test_demo_announces_the_first_compilation_and_times_it_apart(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run(
            [sys.executable, "-m", "fastbp", "--max-iter", "3"],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
            env=env,
        ).stdout
        for _ in range(2)
    ]
    cold, warm = runs
    assert "First run in this environment: numba compiles" in cold
    assert "First run" not in warm  # the cache is warm now: nothing to announce
    for output in runs:
        assert re.search(r"ready in \d+\.\d\d s", output)
        assert "fit times exclude fastbp's one-off kernel compilation or cache load" in output
