"""Refitting the LabelModel off the request path, every ``refit_every`` decisions.

The shape of all background work in bootstrap (``Aggregate.compute_fit`` / ``apply_fit``): the
slow fit reads only its inputs and runs in a thread; the swap is quick and happens under the
session's lock, and only if the aggregate it was fit for is still the session's (a model adopted
meanwhile brings a new table and its own fit). Answering never waits for it.

**The LabelModel itself is fit in a worker process** (:func:`bootstrap.workers.run_in_worker`),
the thread only waiting for it. In a thread of the session's process, the fit's hundreds of small
torch steps fought the answering thread for the GIL: on a 100k-text corpus, answered back to
back, a refit that takes 0.6 s of CPU alone was still running 100 answers later, and every
answer → next question step meanwhile took twice as long (200 of 300 steps; the first fit,
importing torch, held some steps for 100-300 ms). The worker is started at the first refit and
kept for the next ones; its input is the label matrix's distinct rows (a few dozen), its output
their probabilities. If it cannot start or dies, the fit runs in the thread as before.
"""

from __future__ import annotations

import threading
from typing import Callable

from .aggregate import Aggregate
from .workers import run_in_worker


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
