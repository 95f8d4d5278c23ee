"""Refitting the LabelModel off the request path, every ``refit_every`` decisions.

The shape of all background work in bootstrap (``Aggregate.compute_fit`` / ``apply_fit``): the
slow fit reads only its inputs and runs in a thread; the swap is quick and happens under the
session's lock, and only if the aggregate it was fit for is still the session's (a model adopted
meanwhile brings a new table and its own fit). Answering never waits for it.

**The LabelModel itself is fit in a worker process** (:func:`run_in_worker`), the thread only
waiting for it. In a thread of the session's process, the fit's hundreds of small torch steps
fought the answering thread for the GIL: on a 100k-text corpus, answered back to back, a refit
that takes 0.6 s of CPU alone was still running 100 answers later, and every answer → next
question step meanwhile took twice as long (200 of 300 steps; the first fit, importing torch,
held some steps for 100-300 ms). The worker is a fresh interpreter (``spawn``), started at the
first refit and kept for the next ones; its input is the label matrix's distinct rows (a few
dozen), its output their probabilities. Being spawned, it imports the main module of the
program, as every ``multiprocessing`` user does: a script that starts a session must keep its
work under ``if __name__ == "__main__":``. If the worker cannot start or dies, the fit runs in
the thread as before.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from .aggregate import Aggregate

_worker: ProcessPoolExecutor | None = None
_worker_lock = threading.Lock()


def run_in_worker(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in the worker process (started on first use, shared by the process's
    sessions); in this thread if no worker can run. ``function`` must be importable by name and
    its arguments picklable. An exception of the function itself is raised here, as it is."""
    global _worker
    with _worker_lock:
        if _worker is None:
            try:
                _worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                              initializer=_exit_with_parent)
            except (OSError, ValueError):  # no processes here (a sandbox, a missing /dev/shm)
                return function(*args)
        worker = _worker
    try:
        return worker.submit(function, *args).result()
    except (BrokenProcessPool, RuntimeError, OSError):  # the worker died, or cannot start: a new one next time
        with _worker_lock:
            if _worker is worker:
                _worker = None
        worker.shutdown(wait=False)
        return function(*args)


def _exit_with_parent() -> None:
    """In the worker: end it when the process that started it ends, even by ``kill -9`` (it
    would wait for work forever, holding torch's memory)."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(0)), name="bootstrap-worker-parent", daemon=True).start()


class BackgroundRefit:
    """At most one refit at a time; ``current()`` is the session's aggregate at the moment of the swap."""

    def __init__(self, every: int, background: bool, lock: threading.RLock, current: Callable[[], Aggregate]):
        self.every = every
        self.background = background
        self._lock = lock
        self._current = current
        self._thread: threading.Thread | None = None
        self.applied = 0  # background fits swapped in so far

    def maybe(self) -> None:
        """Refit if ``every`` decisions came since the last fit and no refit is running."""
        aggregate = self._current()
        if not self.every or aggregate.decisions_since_fit < self.every or self._thread is not None:
            return
        self._refit(aggregate)

    def now(self) -> None:
        """Fit again now, the LabelModel included (a session's first fit ran without it), in the
        background unless refits run in the foreground."""
        aggregate = self._current()
        aggregate.label_model_later = None
        if self._thread is None:
            self._refit(aggregate)

    def _refit(self, aggregate: Aggregate) -> None:
        balance = aggregate.decision_class_balance()
        if not self.background:
            aggregate.fit(balance)
            return

        def refit() -> None:
            try:
                fitted = aggregate.compute_fit(balance, run=run_in_worker)
                with self._lock:
                    if self._current() is aggregate:  # a model adopted meanwhile brought a new table and fit
                        aggregate.apply_fit(fitted)
                        self.applied += 1
            finally:  # a failed fit leaves the previous one in place, and the next one may run
                with self._lock:
                    self._thread = None

        self._thread = threading.Thread(target=refit, name="bootstrap-refit", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until a background refit (if any) is applied: for tests and clean shutdown."""
        thread = self._thread
        if thread is not None:
            thread.join()
