"""The install sequence that once broke: ``pip install .``, use fastbp from another
folder, then ``pip install -e .`` in the same environment and use it again.

numba used to cache the kernels in ``site-packages/fastbp/__pycache__``; the
uninstall that ``pip install -e .`` does first left those files behind, and the
orphaned folder then shadowed the editable install (``import fastbp`` found a
namespace package, and ``from fastbp import BackpropClassifier`` failed)."""

import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]

USE = textwrap.dedent(
    """
    import numpy as np
    import fastbp
    from fastbp import BackpropClassifier, _common_epochs
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = BackpropClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0)
    print(fastbp.__file__)
    print(model.fit(X, y).score(X, y) > 0.5)
    stats = _common_epochs.common_epochs.stats  # loaded from the cache, or compiled
    print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
    """
)


def _source_copy(destination):
    """What ``pip install .`` needs of the checkout, copied (the editable install
    then writes its metadata there, not into the checkout)."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, destination / name)
    shutil.copytree(CHECKOUT / "fastbp", destination / "fastbp",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return destination


def _kernel_cache_files(folder):
    return sorted(str(path) for path in folder.rglob("*") if path.suffix in (".nbi", ".nbc"))


@pytest.mark.slow
def test_regular_then_editable_install_imports_and_fits_from_another_folder(tmp_path):
    # The venv sees this interpreter's packages (numpy, numba, scikit-learn: no
    # downloads), but fastbp itself is installed into the venv's own site-packages,
    # which comes first on its path: the files that once shadowed the editable
    # install are written, and looked up, exactly where they were.
    source = _source_copy(tmp_path / "source")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)  # fmt: skip
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = pathlib.Path(
        subprocess.run([str(python), "-c", purelib], capture_output=True, text=True,
                       check=True).stdout.strip()
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONNOUSERSITE": "1"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # a cold cache of its own

    def pip_install(*args):
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "--no-deps", *args],
            capture_output=True, text=True, timeout=600, env=env, cwd=source,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def use():
        result = subprocess.run([str(python), "-c", USE], capture_output=True, text=True,
                                timeout=900, env=env, cwd=elsewhere)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    pip_install(".")
    first = use()
    pip_install("-e", ".")  # uninstalls the regular install first: orphans stay behind
    second = use()
    assert first == [str(site_packages / "fastbp" / "__init__.py"), "True", "0", "1"]
    # the same sources as the installed copy: its kernels load, none compiles
    assert second == [str(source / "fastbp" / "__init__.py"), "True", "1", "0"]
    assert _kernel_cache_files(site_packages) == []
    assert _kernel_cache_files(source) == []
    assert _kernel_cache_files(tmp_path / "cache")  # the kernels were cached, there
