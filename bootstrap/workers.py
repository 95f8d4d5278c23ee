"""Worker processes that end with the session's: the handoff's trainings, the LabelModel's fits,
``bootstrap simulate --jobs``'s seeds.

They are spawned, not forked: the server's threads, locks and sockets must not be copied into
them. Being spawned, each imports the main module of the program, as every ``multiprocessing``
user does: a script that starts a session keeps its work under ``if __name__ == "__main__":``.
Each ends once the process that started it is gone (``kill -9`` included,
:func:`exit_with_parent`): a training or an idle interpreter holding torch nobody waits for.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable


def worker_pool(workers: int = 1) -> ProcessPoolExecutor:
    """Spawned worker processes (one by default) that end with this one."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(),))


def exit_with_parent(parent: int, every: float = 2.0) -> None:
    """End this worker process once the session's process ``parent`` is gone (killed, say): a
    training nobody waits for must not hold the machine's cores for minutes. A worker pool's
    initializer: ``parent`` comes from the session, since by the time a slow spawn gets here the
    parent may already be dead and the worker adopted by another."""
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="bootstrap-parent-watch", daemon=True).start()


_shared: ProcessPoolExecutor | None = None
_shared_lock = threading.Lock()


def run_in_worker(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in this process's shared worker (started on first use, kept for the
    next call: the LabelModel's refits, :mod:`bootstrap.refit`); in this thread if no worker can
    run. ``function`` must be importable by name and its arguments picklable. An exception of
    the function itself is raised here, as it is."""
    global _shared
    with _shared_lock:
        if _shared is None:
            try:
                _shared = worker_pool()
            except (OSError, ValueError):  # no processes here (a sandbox, a missing /dev/shm)
                return function(*args)
        worker = _shared
    try:
        return worker.submit(function, *args).result()
    except (BrokenProcessPool, RuntimeError, OSError):  # the worker died, or cannot start: a new one next time
        with _shared_lock:
            if _shared is worker:
                _shared = None
        worker.shutdown(wait=False)
        return function(*args)
