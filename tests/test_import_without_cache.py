import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_import_and_fit_work_when_no_cache_location_is_writable():
    # Make numba find no cache locator at all, exactly what a read-only package
    # directory and a read-only home give (root would bypass file permissions).
    code = textwrap.dedent(
        """
        import warnings
        import numba.core.caching
        numba.core.caching.CacheImpl._locator_classes = []
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
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
