import os
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_import_and_fit_work_when_no_cache_location_is_writable(tmp_path):
    # No cache folder can be made under a file, not even by root (who writes through
    # file permissions): what a read-only home gives.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(blocker / "cache")
    code = textwrap.dedent(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import fastbp
            from fastbp import _kernel_cache
        messages = [str(w.message) for w in caught if "no writable cache" in str(w.message)]
        assert len(messages) == 1, messages
        assert not _kernel_cache.CACHE_ENABLED
        import numpy as np
        X = np.random.RandomState(0).normal(size=(30, 3))
        y = (X[:, 0] > 0).astype(int)
        clf = fastbp.BackpropClassifier(max_iter=5, random_state=0).fit(X, y)
        print("accuracy", clf.score(X, y))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
