"""Where the compiled kernels are cached: outside the package, per user, one folder
per fastbp, numba and Python version; NUMBA_CACHE_DIR first; a read-only warm cache
loaded as it is; ``python -m fastbp --cache-info`` and ``--clear-cache``."""

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from fastbp import _kernel_cache
from fastbp.__main__ import main

PACKAGE_DIR = pathlib.Path(_kernel_cache.__file__).parent


def _clean_env(**extra):
    """This environment without NUMBA_CACHE_DIR (so the default applies), plus
    ``extra``."""
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env.update(extra)
    return env


def _run(code, env, prefix=(), cwd=None):
    return subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=900, env=env, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize(
    "platform, env, expected",
    [
        ("linux", {"XDG_CACHE_HOME": "/xdg"}, "/xdg/fastbp"),
        ("linux", {}, "~/.cache/fastbp"),
        # the XDG specification: a relative path is invalid and is ignored
        ("linux", {"XDG_CACHE_HOME": "relative"}, "~/.cache/fastbp"),
        ("darwin", {"XDG_CACHE_HOME": "/xdg"}, "~/Library/Caches/fastbp"),
        ("win32", {"LOCALAPPDATA": "C:/Local"}, "C:/Local/fastbp/Cache"),
        ("win32", {}, "~/AppData/Local/fastbp/Cache"),
    ],
)
def test_the_user_cache_root_follows_the_platform_convention(
    monkeypatch, tmp_path, platform, env, expected
):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))  # expanduser's home on Windows
    for name in ("XDG_CACHE_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    wanted = expected.replace("~", str(tmp_path))
    assert pathlib.PurePath(_kernel_cache.user_cache_root()) == pathlib.PurePath(wanted)


def test_different_fastbp_numba_or_python_versions_never_share_a_folder(monkeypatch):
    import numba

    keys = {_kernel_cache.version_key()}
    assert _kernel_cache.version_key().startswith(f"fastbp-{_kernel_cache.__version__}-")
    monkeypatch.setattr(numba, "__version__", "0.0.1")
    keys.add(_kernel_cache.version_key())
    monkeypatch.setattr(_kernel_cache, "__version__", "99.0")
    keys.add(_kernel_cache.version_key())
    monkeypatch.setattr(sys.implementation, "cache_tag", "cpython-399")
    keys.add(_kernel_cache.version_key())
    assert len(keys) == 4


def test_the_cache_is_outside_the_package_directory():
    location = pathlib.Path(_kernel_cache.CACHE_LOCATION).resolve()
    assert PACKAGE_DIR.resolve() not in location.parents
    assert location.parent.name == _kernel_cache.version_key()


def _location_of_copy(package, env):
    code = "from fastbp import _kernel_cache; print(_kernel_cache.CACHE_LOCATION)"
    # run from the copy's folder: python -c puts the working directory first on the path
    result = _run(code, {**env, "PYTHONPATH": str(package.parent)}, cwd=package.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_copies_of_the_same_sources_share_a_folder_and_an_edited_copy_does_not(tmp_path):
    """The checkout and a wheel installed from it load each other's kernels; a copy
    whose kernel sources differ caches apart (and leaves the other's entries be)."""
    env = _clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg"))
    copies = []
    for name in ("one", "two", "edited"):
        package = tmp_path / name / "fastbp"
        shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(package)
    with open(copies[2] / "_layer_math.py", "a") as file:
        file.write("\n# an edit\n")
    one, two, edited = (_location_of_copy(package, env) for package in copies)
    assert one == two == _location_of_copy(PACKAGE_DIR, env)
    assert edited != one and pathlib.Path(edited).parent == pathlib.Path(one).parent


def test_numba_cache_dir_wins_over_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(_kernel_cache.numba_config, "CACHE_DIR", str(tmp_path))
    root, location, writable, warning = _kernel_cache._choose_location()
    assert root == str(tmp_path / "fastbp") and writable and warning is None
    assert pathlib.Path(location).parent == tmp_path / "fastbp" / _kernel_cache.version_key()
    assert pathlib.Path(location).is_dir()


def _unwritable(directory):
    return False  # as a read-only mount answers, whoever asks


def test_a_read_only_location_is_used_only_when_it_holds_kernels(monkeypatch, tmp_path):
    monkeypatch.setattr(_kernel_cache.numba_config, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_kernel_cache, "_is_writable", _unwritable)
    monkeypatch.setattr(_kernel_cache, "user_cache_root", lambda: str(tmp_path / "user"))
    # empty: of no use, and nothing else is writable either
    root, location, writable, warning = _kernel_cache._choose_location()
    assert location is None and "found no writable cache location" in warning
    assert f"NUMBA_CACHE_DIR ({tmp_path})" in warning
    # warm (an image built with --warmup, mounted read-only): loaded as it is
    folder = _kernel_cache._sources_folder(_kernel_cache.SOURCES_DIGEST)
    warm = tmp_path / "fastbp" / _kernel_cache.version_key() / folder
    warm.mkdir(parents=True)
    (warm / "_kernels.predict_forward-1.py311.nbi").write_bytes(b"index")
    root, location, writable, warning = _kernel_cache._choose_location()
    assert (location, writable, warning) == (str(warm), False, None)


def test_an_unwritable_numba_cache_dir_falls_back_to_the_user_cache(tmp_path):
    blocker = tmp_path / "a-file"  # no directory can be made under a file, even by root
    blocker.write_text("")
    code = """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from fastbp import _kernel_cache
        print(_kernel_cache.CACHE_LOCATION)
        print([str(w.message) for w in caught])
    """
    env = _clean_env(NUMBA_CACHE_DIR=str(blocker / "cache"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    result = _run(code, env)
    assert result.returncode == 0, result.stderr
    location, warnings = result.stdout.splitlines()
    assert location.startswith(str(tmp_path / "xdg" / "fastbp" / _kernel_cache.version_key()))
    assert f"NUMBA_CACHE_DIR ({blocker / 'cache'}) is not writable" in warnings


def _fake_cache(root, kernels=2):
    """A cache folder as fastbp lays it out, with ``kernels`` index and data files."""
    location = root / "fastbp" / _kernel_cache.version_key() / "src-0123456789abcdef"
    location.mkdir(parents=True)
    for number in range(kernels):
        (location / f"_kernels.kernel{number}-10.py311.nbi").write_bytes(b"i" * 100)
        (location / f"_kernels.kernel{number}-10.py311.1.nbc").write_bytes(b"d" * 1000)
    return location


def test_cache_info_reports_location_entries_and_writability(tmp_path):
    env = _clean_env(NUMBA_CACHE_DIR=str(tmp_path))
    _fake_cache(tmp_path, kernels=3)
    result = subprocess.run(
        [sys.executable, "-m", "fastbp", "--cache-info"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"fastbp kernel cache: {tmp_path / 'fastbp'}")
    assert lines[1] == "writable: yes"
    assert lines[2] == "entries: 0 kernels, 0 compiled variants, 0.0 MB"  # this copy: none
    assert lines[3] == f"all versions under {tmp_path / 'fastbp'}: 3 compiled variants, 0.0 MB"


def test_clear_cache_removes_fastbps_folder_and_nothing_else(tmp_path):
    env = _clean_env(NUMBA_CACHE_DIR=str(tmp_path))
    _fake_cache(tmp_path, kernels=2)
    other = tmp_path / "another_library_1234"  # numba's cache of another package
    other.mkdir()
    (other / "f-1.py311.nbi").write_bytes(b"keep")
    result = subprocess.run(
        [sys.executable, "-m", "fastbp", "--clear-cache"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cleared {tmp_path / 'fastbp'}: 2 compiled variants, 0.0 MB"
    assert not (tmp_path / "fastbp").exists()
    assert (other / "f-1.py311.nbi").read_bytes() == b"keep"


def test_clear_cache_on_a_read_only_cache_fails_with_a_clear_error(monkeypatch, tmp_path, capsys):
    _fake_cache(tmp_path)
    monkeypatch.setattr(_kernel_cache, "CACHE_ROOT", str(tmp_path / "fastbp"))

    def refuse(path, *args, **kwargs):
        raise PermissionError(30, "Read-only file system", path)

    monkeypatch.setattr(shutil, "rmtree", refuse)
    assert main(["--clear-cache"]) == 1
    error = capsys.readouterr().err
    assert f"could not clear the kernel cache {tmp_path / 'fastbp'}" in error
    assert "Read-only file system" in error


# ------------------------------------------------------------ a real read-only cache
def _read_only_mounts_work(directory):
    """Whether this machine lets us bind-mount ``directory`` read-only in a private
    mount namespace (root in a container usually may): the honest test of a
    read-only cache, since root writes through file permissions."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", _READ_ONLY_MOUNT + " && touch \"$D/probe\""],
        capture_output=True, env={**os.environ, "D": str(directory)}, timeout=60,
    )  # fmt: skip
    return probe.returncode != 0 and b"Read-only file system" in probe.stderr


_READ_ONLY_MOUNT = 'mount --bind "$D" "$D" && mount -o remount,bind,ro "$D"'

FIT_AND_REPORT = """
    import time
    import warnings
    import numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from fastbp import BackpropClassifier, _common_epochs, _kernel_cache
        X = np.random.RandomState(0).normal(size=(40, 3))
        y = np.arange(40) % 2
        start = time.perf_counter()
        BackpropClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y).predict(X)
        seconds = time.perf_counter() - start
    stats = _common_epochs.common_epochs.stats
    print(_kernel_cache.CACHE_LOCATION, _kernel_cache.CACHE_WRITABLE)
    print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
    print([str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)])
    print(f"{seconds:.3f}")
"""


@pytest.mark.slow
def test_a_warm_read_only_cache_is_loaded_and_nothing_lands_in_the_package(tmp_path):
    """Warm the per-user cache of a copy of the package (as an image build would),
    mount it read-only, and fit in a fresh process: the kernels load from it (cache
    hits, no compilation), with no warning; no cache file lands in the package."""
    package = tmp_path / "copy" / "fastbp"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    env = _clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(package.parent))
    root = tmp_path / "xdg" / "fastbp"
    root.mkdir(parents=True)
    if not _read_only_mounts_work(root):
        pytest.skip("no read-only bind mounts here (needs unshare and mount rights)")
    warm = _run(FIT_AND_REPORT, env, cwd=tmp_path)
    assert warm.returncode == 0, warm.stderr
    location, writable = warm.stdout.splitlines()[0].split()
    assert pathlib.Path(location).parent == root / _kernel_cache.version_key()
    assert writable == "True"
    assert warm.stdout.splitlines()[1] == "0 1"  # compiled, and saved
    files = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    assert any(path.suffix == ".nbi" for path in files)

    mounted = _run(FIT_AND_REPORT, {**env, "D": str(root)},
                   prefix=("unshare", "-m", "sh", "-c", _READ_ONLY_MOUNT + ' && exec "$@"', "-"),
                   cwd=tmp_path)  # fmt: skip
    assert mounted.returncode == 0, mounted.stderr
    lines = mounted.stdout.splitlines()
    assert lines[0] == f"{location} False"  # the same folder, seen read-only
    assert lines[1] == "1 0"  # loaded from the cache, not compiled
    assert lines[2] == "[]"  # and no warning
    after = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    assert after == files
    assert not [path for path in package.parent.rglob("*") if path.suffix in (".nbi", ".nbc")]


def test_warmup_compiles_in_this_process_when_the_cache_is_read_only(monkeypatch):
    # Children compiling into a read-only cache could not hand the kernels over.
    from fastbp import _warmup

    monkeypatch.setattr(_kernel_cache, "CACHE_ENABLED", True)
    monkeypatch.setattr(_kernel_cache, "LOCKS_WORK", True)
    monkeypatch.setattr(_kernel_cache, "CACHE_WRITABLE", True)
    assert _warmup._processes(-1, 2) == min(2, os.cpu_count())
    monkeypatch.setattr(_kernel_cache, "CACHE_WRITABLE", False)
    assert _warmup._processes(-1, 2) == 1


# ------------------------------------------------------------ where its warnings point
def test_cache_warnings_point_at_the_users_line_past_fastbp_and_numba_frames():
    """The cache's warnings are raised deep inside numba's dispatch; they are shown
    at the first line outside fastbp and numba (here: this test's), whatever the
    depth."""
    import os
    import warnings

    import numba

    from fastbp import _kernel_cache

    # A caller that lives in numba's directory, as numba's dispatcher does.
    numba_file = os.path.join(os.path.dirname(numba.__file__), "dispatcher_like.py")
    namespace = {"warn_once": _kernel_cache._warn_once}
    source = "def dispatch(kind):\n    warn_once(kind, 'cache message ' + kind)\n"
    exec(compile(source, numba_file, "exec"), namespace)
    for kind, call in (
        ("direct", lambda: _kernel_cache._warn_once("direct", "cache message direct")),
        ("through numba", lambda: namespace["dispatch"]("through numba")),
    ):
        _kernel_cache._cache_warnings_given.discard(kind)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        [warning] = caught
        assert warning.filename == __file__, (kind, warning.filename)
        assert str(warning.message) == f"cache message {kind}"
