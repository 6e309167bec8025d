"""Deterministic interleavings for the thread-safety cases of ``test_hostile.py``.

Races that a free-running loop hits once in thousands of tries (a reader landing
between two statements of ``fit``) are made certain here: :func:`step_through` runs
a piece of work (a ``fit``, a ``partial_fit``) in the calling thread under a profile
hook that pauses it after every call made from fastbp's own code, and at each pause
lets an *observer* (a prediction, a pickle, a concurrent fit) run once in a second
thread while the work waits. :func:`sweep` repeats that with the observer at one
pause at a time, for observers that change the estimator.

When the code under test serialises the two (a lock held by the work), the observer
cannot finish while the work waits for it: after ``handoff_timeout`` seconds the work
goes on without it (that pause counts as ``blocked``), the observer finishes when the
lock is released, and the pauses after that hand off again. Serialising is one of the
allowed answers, so a blocked observer is no failure.
"""

import os
import sys
import threading

import fastbp

FASTBP_DIR = os.path.dirname(os.path.abspath(fastbp.__file__)) + os.sep


class Outcome:
    """What one stepped run gave: the work's exception (or None), how many pauses
    there were, the observer's exceptions, and at how many pauses it was blocked."""

    def __init__(self, error, pauses, observer_errors, blocked):
        self.error = error
        self.pauses = pauses
        self.observer_errors = observer_errors
        self.blocked = blocked

    def __repr__(self):
        return (
            f"Outcome(error={self.error!r}, pauses={self.pauses}, "
            f"observer_errors={self.observer_errors!r}, blocked={self.blocked})"
        )


def step_through(work, observe, at=None, handoff_timeout=0.1, join_timeout=60.0):
    """Run ``work()`` here; at each pause (or only the pause numbered ``at``, from 0)
    run ``observe()`` once in another thread while ``work`` waits for it.

    ``observe`` may be None to count the pauses only. Raises RuntimeError when the
    observer is still running ``join_timeout`` seconds after the work ended (a hang).
    """
    request, done = threading.Event(), threading.Event()
    state = {"finished": False, "pauses": 0, "blocked": 0, "waiting": False}
    observer_errors = []

    def observer():
        while True:
            request.wait()
            request.clear()
            if state["finished"]:
                return
            try:
                observe()
            except BaseException as exc:  # reported, judged by the caller
                observer_errors.append(exc)
            done.set()

    def hook(frame, event, arg):
        if event not in ("return", "c_return"):
            return
        if not frame.f_code.co_filename.startswith(FASTBP_DIR):
            return
        pause = state["pauses"]
        state["pauses"] += 1
        if observe is None or (at is not None and pause != at):
            return
        if state["waiting"]:  # the last observation is still blocked
            if not done.is_set():
                return
            state["waiting"] = False
        done.clear()
        request.set()
        if not done.wait(handoff_timeout):
            state["waiting"] = True  # it waits for the work: let the work go on
            state["blocked"] += 1

    thread = None
    if observe is not None:
        thread = threading.Thread(target=observer, daemon=True)
        thread.start()
    error = None
    sys.setprofile(hook)
    try:
        work()
    except Exception as exc:
        error = exc
    finally:
        sys.setprofile(None)
        state["finished"] = True
        request.set()
        if thread is not None:
            thread.join(join_timeout)
            if thread.is_alive():
                raise RuntimeError("the observer thread hung after the work ended")
    return Outcome(error, state["pauses"], observer_errors, state["blocked"])


def sweep(setup, work, observe, max_runs=16, **kwargs):
    """For (at most ``max_runs``, evenly spread) pause positions of ``work``: call
    ``setup()``, then run ``work`` with ``observe`` at that one pause. Returns the
    list of (position, Outcome)."""
    setup()
    n_pauses = step_through(work, None).pauses
    positions = range(n_pauses)
    if n_pauses > max_runs:
        positions = sorted({round(i * (n_pauses - 1) / (max_runs - 1)) for i in range(max_runs)})
    outcomes = []
    for position in positions:
        setup()
        outcomes.append((position, step_through(work, observe, at=position, **kwargs)))
    return outcomes
