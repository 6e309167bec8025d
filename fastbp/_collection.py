"""Python's cyclic garbage collector paused over a burst of allocation.

Importing numba (with fastbp's kernel modules) and compiling or loading a kernel each
make hundreds of thousands of objects, nearly all of which live on. Every 700 new
objects the collector runs, and every tenth or so of those runs goes over every
object in the process: after scikit-learn, scipy and pandas are imported that is
about 160,000 objects a time, several times over during numba's import. None of
those passes can free anything numba made. Pausing the collector for the burst
(and restoring it, however the burst ends) leaves the same objects alive and saves
the passes: measured in a fresh process after ``import sklearn.neural_network``,
``import numba`` took 281-346 ms with the collector running and 221-229 ms paused.
"""

import contextlib
import gc


@contextlib.contextmanager
def collection_paused():
    """Pause the cyclic garbage collector inside the block; afterwards it runs again
    if it ran before (a caller that disabled it keeps it disabled). Nested or
    concurrent pauses leave it enabled once the outermost that found it enabled
    ends: at worst a collection comes early, never is lost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
