"""Where and how the compiled kernels are cached on disk.

numba compiles a kernel the first time it runs and, with ``cache=True``, saves the
machine code so that later processes load it. This module finds a writable cache
location (or warns that there is none), gives the kernels their compile options,
makes each cache survive damaged files, lets processes that write one cache take
turns, stamps each cache with every kernel source file (numba checks only the file
that defines a kernel, and the kernels call helpers in several), and pauses the
garbage collector while a kernel compiles.
"""

import contextlib
import gc
import inspect
import os
import warnings

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; warm one process at a time
    fcntl = None

from numba import njit
from numba.core.caching import Cache
from numba.core.registry import CPUDispatcher
from numba.core.runtime import rtsys


def _cache_probe():  # pragma: no cover - only decorated, never called
    return 0


def _numba_cache_location():
    """Where numba caches this file's kernels, or None when no location is writable.

    With ``cache=True`` numba raises at decoration time when no location is writable
    (a read-only install and home directory), which would make ``import fastbp``
    fail. Probe once with a function of this package, and fall back to compiling
    without a cache.
    """
    try:
        return njit(cache=True)(_cache_probe)._cache.cache_path
    except RuntimeError:
        return None


def _cache_warning(location):
    """The warning to give about the cache location, or None when all is well.

    numba tries NUMBA_CACHE_DIR first, then the package directory, then a user-wide
    cache directory, silently skipping those it cannot write to: name the ones
    that failed, so the right one gets fixed.
    """
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    package_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    if location is not None:
        if user_dir and not os.path.abspath(location).startswith(os.path.abspath(user_dir)):
            return (
                f"fastbp: NUMBA_CACHE_DIR ({user_dir}) is not writable, so numba caches "
                f"fastbp's compiled kernels in {location} instead."
            )
        return None
    tried = ([f"NUMBA_CACHE_DIR ({user_dir})"] if user_dir else []) + [
        f"the package directory ({package_dir})",
        "numba's user cache directory",
    ]
    return (
        "fastbp: numba found no writable cache location for its compiled kernels ("
        + ", ".join(tried)
        + " are not writable), so they are compiled anew in every process. Set "
        "NUMBA_CACHE_DIR to a writable directory to cache them."
    )


CACHE_LOCATION = _numba_cache_location()
CACHE_ENABLED = CACHE_LOCATION is not None
if _cache_warning(CACHE_LOCATION) is not None:
    warnings.warn(_cache_warning(CACHE_LOCATION), RuntimeWarning, stacklevel=2)

# error_model="numpy": float division by zero gives inf/NaN as in numpy (which the
# epoch kernel detects) instead of a per-division check that also stops LLVM from
# vectorising the loops.
_JIT = dict(cache=CACHE_ENABLED, nogil=True, error_model="numpy")
# Internal helpers have no Python or C entry points: they are only called from other
# kernels, and the wrappers cost compile time (start-up time) for nothing.
_HELPER = dict(_JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)


# ---------------------------------------------------------------------------------
# One stamp for all kernel sources. numba marks a cache stale when the file that
# defines the cached function changes; an edit to a helper in another file would go
# unnoticed and the old machine code would keep running. So every cache is stamped
# with all the files below, and an edit to any of them recompiles every kernel.
# ---------------------------------------------------------------------------------
KERNEL_SOURCES = (
    "_kernel_codes.py",
    "_kernel_cache.py",
    "_layer_math.py",
    "_batch_passes.py",
    "_kernels.py",
    "_common_path.py",
    "_argument_checks.py",
)


def sources_stamp():
    """(modification time, size) of each kernel source file."""
    here = os.path.dirname(os.path.abspath(__file__))
    stamp = []
    for name in KERNEL_SOURCES:
        status = os.stat(os.path.join(here, name))
        stamp.append((status.st_mtime, status.st_size))
    return tuple(stamp)


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
        warnings.warn(message, RuntimeWarning, stacklevel=4)


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
            return _load_without_refresh(self._cache, sig, target_context)
        except Exception as exc:  # unpickling a damaged file raises almost anything
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


def prepare_caches(namespace):
    """Stamp and wrap the cache of every kernel defined in a module's ``namespace``."""
    try:
        stamp = sources_stamp()
    except OSError:  # sources not on disk (a zipped install): numba's own stamps
        stamp = None
    for value in list(namespace.values()):
        if isinstance(value, CPUDispatcher) and isinstance(value._cache, Cache):
            if stamp is not None:
                value._cache._cache_file._source_stamp = stamp
            value._cache = _SelfHealingCache(value._cache)


# ---------------------------------------------------------------------------------
# Python's cyclic garbage collector runs again and again during a compilation, over
# the many short-lived objects numba and LLVM make: pausing it while a kernel
# compiles saves about a tenth of the time. It is restored however compilation ends.
# ---------------------------------------------------------------------------------
def pause_gc_while_compiling(dispatcher):
    compile_signature = dispatcher.compile

    def compile(sig):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return compile_signature(sig)
        finally:
            if was_enabled:
                gc.enable()

    dispatcher.compile = compile
