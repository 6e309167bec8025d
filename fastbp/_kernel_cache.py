"""Where and how the compiled kernels are cached on disk.

numba compiles a kernel the first time it runs and, with a cache, saves the machine
code so that later processes load it. This module chooses the cache directory (a
per-user one by the platform's convention, or ``NUMBA_CACHE_DIR``; never the package
directory), gives the kernels their compile options, makes each cache survive damaged
files, lets processes that write one cache take turns, stamps each cache with every
kernel source file (numba checks only the file that defines a kernel, and the kernels
call helpers in several), and pauses the garbage collector while a kernel compiles.
"""

import contextlib
import hashlib
import inspect
import os
import shutil
import sys
import tempfile
import threading
import warnings

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; warm one process at a time
    fcntl = None

import numba
from numba.core import config as numba_config
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    NullCache,
    _CacheLocator,
    _SourceFileBackedLocatorMixin,
)
from numba.core.registry import CPUDispatcher
from numba.core.runtime import rtsys

from fastbp import __version__
from fastbp._collection import collection_paused

# ---------------------------------------------------------------------------------
# Where the cache lives. numba's own default is the ``__pycache__`` next to the
# source: inside site-packages, where an uninstall leaves the files behind and the
# orphaned folder then shadows a later editable install (``import fastbp`` finds a
# namespace package). So fastbp gives its kernels a cache of its own, outside the
# package: ``NUMBA_CACHE_DIR/fastbp`` when that is set, else the per-user cache
# directory. Inside it, one folder per fastbp, numba and Python version (each writes
# and reads only its own: versions never overwrite each other's index), and in that
# one per content of the kernel sources: copies of the same sources (the checkout and
# an installed wheel of it) share their compiled kernels, and an edited copy gets a
# folder of its own instead of invalidating the other's entries in turn.
# ---------------------------------------------------------------------------------


def user_cache_root():
    """The per-user directory that holds fastbp's kernel cache, by the platform's
    convention (it need not exist yet).

    Returns
    -------
    path : str
        ``%LOCALAPPDATA%\\fastbp\\Cache`` on Windows, ``~/Library/Caches/fastbp`` on
        macOS, else ``$XDG_CACHE_HOME/fastbp`` (``~/.cache/fastbp`` when
        ``XDG_CACHE_HOME`` is unset or not an absolute path, as the XDG specification
        asks).

    Examples
    --------
    >>> import os
    >>> from fastbp._kernel_cache import user_cache_root
    >>> os.path.basename(user_cache_root()) in ("fastbp", "Cache")
    True
    """
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "fastbp", "Cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "fastbp")
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return os.path.join(xdg if os.path.isabs(xdg) else os.path.join(home, ".cache"), "fastbp")


def version_key():
    """The folder name that keeps one fastbp, numba and Python version's kernels apart,
    e.g. ``fastbp-0.1.0-numba-0.60.0-cpython-311``."""
    return f"fastbp-{__version__}-numba-{numba.__version__}-{sys.implementation.cache_tag}"


def _sources_folder(digest):
    """The folder name for one content of the kernel sources."""
    return "src-" + digest[:16]


# ---------------------------------------------------------------------------------
# One stamp for all kernel sources. numba marks a cache stale when the file that
# defines the cached function changes; an edit to a helper in another file would go
# unnoticed and the old machine code would keep running. So every cache is stamped
# with all the files below, and an edit to any of them recompiles every kernel.
# (Reading them takes under a millisecond.)
# ---------------------------------------------------------------------------------
KERNEL_SOURCES = (
    "_kernel_codes.py",
    "_kernel_cache.py",
    "_kernel_arguments.py",
    "_layer_math.py",
    "_optimizer_steps.py",
    "_batch_passes.py",
    "_kernels.py",
    "_common_epochs.py",
    "_convergence.py",
    "_argument_checks.py",
    "_exact_steps.py",
)


def sources_digest():
    """SHA-256 (hex) of the contents of every kernel source file, or None when they
    are not files on disk. Contents, not modification times: a reinstall or a copy
    of the same sources keeps its cache valid."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    try:
        for name in KERNEL_SOURCES:
            with open(os.path.join(here, name), "rb") as file:
                digest.update(name.encode() + b"\0" + file.read())
    except OSError:
        return None
    return digest.hexdigest()


SOURCES_DIGEST = sources_digest()


def _candidate_roots():
    """(description, fastbp's cache root) in order of preference."""
    candidates = []
    if numba_config.CACHE_DIR:
        user_dir = numba_config.CACHE_DIR
        candidates.append((f"NUMBA_CACHE_DIR ({user_dir})", os.path.join(user_dir, "fastbp")))
    candidates.append((f"the user cache directory ({user_cache_root()})", user_cache_root()))
    return candidates


def _is_writable(directory):
    """Whether ``directory`` exists (or was just made) and takes a new file: the
    test numba itself applies, which also holds for root on a read-only mount."""
    try:
        os.makedirs(directory, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def _holds_kernels(directory):
    """Whether ``directory`` holds a kernel cache index that numba could load."""
    try:
        return any(name.endswith(".nbi") for name in os.listdir(directory))
    except OSError:
        return False


def _choose_location():
    """(root, location, writable, warning): the first candidate whose location is
    writable, or is read-only but already holds kernels (a cache warmed into a
    container image, mounted read-only: loaded as it is); location is None where
    none is usable."""
    if SOURCES_DIGEST is None:
        return (
            None,
            None,
            False,
            (
                "fastbp: its kernel sources are not files on disk (a zipped install?), so "
                "numba cannot cache the compiled kernels: they compile in every process."
            ),
        )
    failed = []
    for description, root in _candidate_roots():
        location = os.path.join(root, version_key(), _sources_folder(SOURCES_DIGEST))
        writable = _is_writable(location)
        if writable or _holds_kernels(location):
            warning = None
            if failed:
                warning = (
                    f"fastbp: {failed[0]} is not writable, so fastbp caches its compiled "
                    f"kernels in {location} instead."
                )
            return root, location, writable, warning
        failed.append(description)
    warning = (
        "fastbp: found no writable cache location for its compiled kernels ("
        + ", ".join(failed)
        + " are not writable), so they are compiled anew in every process. Set "
        "NUMBA_CACHE_DIR to a writable directory to cache them."
    )
    return None, None, False, warning


CACHE_ROOT, CACHE_LOCATION, CACHE_WRITABLE, _location_warning = _choose_location()
CACHE_ENABLED = CACHE_LOCATION is not None
if _location_warning is not None:
    warnings.warn(_location_warning, RuntimeWarning, stacklevel=2)

# error_model="numpy": float division by zero gives inf/NaN as in numpy (which the
# epoch kernel detects) instead of a per-division check that also stops LLVM from
# vectorising the loops. cache=False: numba's own cache would pick its own location
# (the package directory first); prepare_caches gives every kernel fastbp's instead.
_JIT = dict(cache=False, nogil=True, error_model="numpy")
# Internal helpers have no Python or C entry points: they are only called from other
# kernels, and the wrappers cost compile time (start-up time) for nothing.
_HELPER = dict(_JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)


# ---------------------------------------------------------------------------------
# A cache that heals. numba loads a cached kernel by unpickling its index and data
# files; one truncated or corrupted file (a full disk, a killed process, machines
# sharing a directory) makes that raise in every later process, forever. Each
# kernel's cache is wrapped so that a failed load drops the function's cache entries,
# warns once, and compiles instead; a failed save only warns.
# ---------------------------------------------------------------------------------
_cache_warnings_given = set()


def _warn_once(kind, message):
    if kind not in _cache_warnings_given:
        _cache_warnings_given.add(kind)
        from fastbp._warnings import warn_at_user_code

        warn_at_user_code(message, RuntimeWarning)


# ---------------------------------------------------------------------------------
# Processes that write one cache directory take turns. numba saves a kernel by
# reading the function's index, adding an entry (with a data file name that is free
# in what it read) and writing index and data back: two processes compiling at once
# (the dtypes of a parallel warmup, Dask workers sharing a directory) could each drop
# the other's entry, or leave an entry naming the other's data file. Each save (and
# each reset of a damaged index) holds an exclusive lock on a file in the cache
# directory; loads need none (numba replaces files whole).
# ---------------------------------------------------------------------------------
LOCK_FILE = "fastbp-cache.lock"
LOCKS_WORK = fcntl is not None


@contextlib.contextmanager
def cache_directory_lock(directory):
    """Hold an exclusive lock over writes to the cache ``directory`` (POSIX flock;
    without it, or where the lock file cannot be made, nothing is locked)."""
    descriptor = None
    if fcntl is not None:
        try:
            descriptor = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError:  # a read-only directory, a file system without locks
            if descriptor is not None:
                os.close(descriptor)
            descriptor = None
    try:
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # closing releases the lock


def _load_without_refresh(cache, sig, target_context):
    """numba's ``Cache.load_overload`` without its refresh of the target context.

    The refresh imports and installs every typing and lowering registry of numba,
    which only compiling needs (numba's compiler refreshes the context itself before
    it compiles): without it, the kernel load of a warm process's first fit took
    0.14-0.16 s instead of 0.27-0.30 s (measured). Running loaded machine code
    needs numba's runtime (NRT), initialised here. Where numba's internals differ,
    its own method is used.
    """
    load = getattr(cache, "_load_overload", None)
    guard = getattr(cache, "_guard_against_spurious_io_errors", None)
    if load is None or guard is None:
        return cache.load_overload(sig, target_context)
    rtsys.initialize(target_context)
    with guard():
        return load(sig, target_context)
    return None  # the guard swallowed a spurious I/O error: compile instead


class _SelfHealingCache:
    """Wraps one dispatcher's numba cache (delegating everything else to it)."""

    def __init__(self, cache):
        self._cache = cache

    def __getattr__(self, name):
        return getattr(self._cache, name)

    def load_overload(self, sig, target_context):
        try:
            loaded = _load_without_refresh(self._cache, sig, target_context)
        except Exception as exc:  # unpickling a damaged file raises almost anything
            loaded = self._heal(exc)
        if loaded is None and getattr(_loading_only, "active", False):
            raise _NotCached  # back to numba's own first dispatch, which compiles
        return loaded

    def _heal(self, exc):
        """Drop the damaged index (or disable the cache) and warn once."""
        try:
            with cache_directory_lock(self._cache.cache_path):
                self._cache.flush()  # rewrites the index empty: entries dropped
        except OSError:
            self._cache.disable()
        _warn_once(
            "load",
            f"fastbp: a damaged file in numba's cache of compiled kernels "
            f"({self._cache.cache_path}) could not be loaded ({type(exc).__name__}: "
            f"{exc}); its entries were dropped and the kernels are compiled anew, to "
            "be cached again. Where this repeats, give each machine or worker its "
            "own NUMBA_CACHE_DIR on local disk.",
        )
        return None

    def save_overload(self, sig, data):
        if not CACHE_WRITABLE:
            # A read-only cache (warmed into an image) lacked this variant: it runs,
            # compiled for this process alone. Say once how to make it last.
            _warn_once(
                "read-only",
                f"fastbp: the kernel cache {self._cache.cache_path} is read-only and "
                "lacks a kernel this process needed: it was compiled for this process "
                "only. Warm the cache where it is writable (python -m fastbp --warmup "
                "--all) to include it.",
            )
            return
        try:
            with cache_directory_lock(self._cache.cache_path):
                self._cache.save_overload(sig, data)
        except Exception as exc:  # a full disk, a vanished directory
            _warn_once(
                "save",
                f"fastbp: numba could not save a compiled kernel to its cache "
                f"({self._cache.cache_path}: {type(exc).__name__}: {exc}); it works, but "
                "will be compiled again in the next process. Check the disk, or set "
                "NUMBA_CACHE_DIR to a writable directory.",
            )


def cached_signatures(dispatcher):
    """The argument types of the variants of ``dispatcher`` in numba's on-disk cache
    (a cheap look at its index; empty when there is none or it is unreadable)."""
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(getattr(cache, "_cache", cache), "_cache_file", None)
    if cache_file is None:
        return []
    try:
        overloads = cache_file._load_index()
    except Exception:  # a damaged index unpickles into almost any error
        return []
    return [key[0] for key in overloads]


def argument_position(dispatcher, argument):
    """Where the argument named ``argument`` sits in ``dispatcher``'s signatures."""
    return list(inspect.signature(dispatcher.py_func).parameters).index(argument)


class _FastbpCacheLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """numba's cache locator for fastbp's kernels: every kernel in
    ``CACHE_LOCATION``, stamped with all the kernel sources."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno

    def get_cache_path(self):
        return CACHE_LOCATION

    def get_source_stamp(self):
        return SOURCES_DIGEST

    @classmethod
    def from_function(cls, py_func, py_file):
        if CACHE_LOCATION is None or not os.path.exists(py_file):
            return None  # numba then refuses to cache: the kernel keeps no cache
        return cls(py_func, py_file)


class _FastbpCacheImpl(CompileResultCacheImpl):
    _locator_classes = [_FastbpCacheLocator]


class _FastbpFunctionCache(FunctionCache):
    _impl_class = _FastbpCacheImpl


# ---------------------------------------------------------------------------------
# A kernel's first call without numba's first-dispatch scan. The first call of any
# compiled function in a process makes numba's dispatcher run every installed
# package's ``numba_extensions`` entry point before anything else: it reads the
# metadata of every installed distribution and imports each extension (0.10-0.16 s
# of a warm process's first fit, measured, most of it importing another package's
# extension). fastbp's kernels take numpy arrays, numbers, None and tuples of them,
# types that no extension defines, so a variant found in the disk cache is loaded
# without the scan; a variant that must be compiled, or arguments that cannot be
# typed, take numba's own path (the scan included, and its error messages).
# ---------------------------------------------------------------------------------
_loading_only = threading.local()


class _NotCached(Exception):
    """The disk cache lacks the variant asked for (raised only while loading
    without the scan, caught below)."""


def _dispatch_from_cache_first(dispatcher):
    """Make ``dispatcher``'s first call with new argument types look in the disk
    cache before it runs numba's first-dispatch path."""
    numba_path = dispatcher._compile_for_args  # what numba's C dispatcher calls

    def compile_for_args(*args, **kws):
        if not kws:
            try:
                argtypes = tuple(dispatcher.typeof_pyval(arg) for arg in args)
            except Exception:  # numba's path reports what cannot be typed
                argtypes = None
            if argtypes is not None:
                _loading_only.active = True
                try:
                    return dispatcher.compile(argtypes)
                except _NotCached:
                    pass
                finally:
                    _loading_only.active = False
        return numba_path(*args, **kws)

    dispatcher._compile_for_args = compile_for_args


def prepare_caches(namespace):
    """Give every kernel defined in a module's ``namespace`` fastbp's disk cache
    (self-healing, in ``CACHE_LOCATION``; entry points load from it without numba's
    first-dispatch scan); without a location, none."""
    module = namespace["__name__"]
    for value in list(namespace.values()):
        if (
            CACHE_ENABLED
            and isinstance(value, CPUDispatcher)
            and value.py_func.__module__ == module  # not the helpers it imports
            and isinstance(value._cache, NullCache)
        ):
            try:
                cache = _FastbpFunctionCache(value.py_func)
            except RuntimeError:  # no locator: the kernel compiles in every process
                continue
            value._cache = _SelfHealingCache(cache)
            if not value.targetoptions.get("no_cpython_wrapper"):  # called from Python
                _dispatch_from_cache_first(value)


# ---------------------------------------------------------------------------------
# Python's cyclic garbage collector runs again and again during a compilation (or a
# load from the disk cache), over the many objects numba and LLVM make: pausing it
# while a kernel compiles saves about a tenth of the time (fastbp._collection).
# ---------------------------------------------------------------------------------
def pause_gc_while_compiling(dispatcher):
    compile_signature = dispatcher.compile

    def compile(sig):
        with collection_paused():
            return compile_signature(sig)

    dispatcher.compile = compile


# ---------------------------------------------------------------------------------
# Seeing and clearing the cache (``python -m fastbp --cache-info``, ``--clear-cache``).
# ---------------------------------------------------------------------------------
def _folder_contents(folder):
    """(index files, data files, bytes) under ``folder``, counted recursively."""
    indexes = data = size = 0
    for directory, _, names in os.walk(folder):
        for name in names:
            indexes += name.endswith(".nbi")
            data += name.endswith(".nbc")
            try:
                size += os.path.getsize(os.path.join(directory, name))
            except OSError:  # removed meanwhile
                pass
    return indexes, data, size


def cache_info():
    """Describe fastbp's on-disk cache of compiled kernels.

    Returns
    -------
    info : dict
        ``location`` (the folder this fastbp, numba and Python use, or None when
        nothing is cached), ``root`` (the folder of all fastbp versions' caches),
        ``writable``, ``kernels`` (index files: one per cached kernel), ``variants``
        (data files: one per compiled signature), ``bytes`` (of this location), and
        ``root_bytes`` and ``root_variants`` (of every version under the root).

    Examples
    --------
    >>> from fastbp._kernel_cache import cache_info
    >>> sorted(cache_info())[:3]
    ['bytes', 'kernels', 'location']
    """
    info = dict(location=CACHE_LOCATION, root=CACHE_ROOT, writable=CACHE_WRITABLE)
    kernels, variants, size = _folder_contents(CACHE_LOCATION) if CACHE_ENABLED else (0, 0, 0)
    _, root_variants, root_size = _folder_contents(CACHE_ROOT) if CACHE_ENABLED else (0, 0, 0)
    info.update(kernels=kernels, variants=variants, bytes=size)
    info.update(root_variants=root_variants, root_bytes=root_size)
    return info


def clear_cache():
    """Delete fastbp's cache of compiled kernels, for every fastbp, numba and Python
    version (the root folder; other libraries' caches in ``NUMBA_CACHE_DIR`` stay).

    Returns
    -------
    removed : tuple of (str or None, int, int)
        The folder removed (None when no cache location is in use), and the number
        of data files and bytes it held.

    Raises
    ------
    OSError
        Where the folder cannot be removed (a read-only mount), naming it.
    """
    if not CACHE_ENABLED or not os.path.isdir(CACHE_ROOT):
        return CACHE_ROOT, 0, 0
    _, variants, size = _folder_contents(CACHE_ROOT)
    try:
        shutil.rmtree(CACHE_ROOT)
    except OSError as exc:
        raise OSError(
            f"fastbp: could not clear the kernel cache {CACHE_ROOT} ({exc.strerror or exc})."
        ) from exc
    return CACHE_ROOT, variants, size
