"""Time limits on user code: a rule's regex and a labeling function may not hang the tool.

Rules and functions are user input, and a catastrophic regex (``(a+)+$``) or a function with an
endless loop would otherwise stop start-up for good. Each gets a bounded time; one that runs
past it counts as no match (a rule) or as abstaining (a function) there, is reported once with
a count (:class:`~bootstrap.lfs.LFErrors`), and after :data:`SWITCH_OFF_AFTER` timeouts it is no
longer run at all, so a function that never returns costs seconds, not hours.

How each is bounded, and why:

* **Regexes** (text-level ``"regex"`` and token-level ``REGEX``) run with the ``regex`` module's
  own ``timeout=``, which stops the matching engine from inside: no signal, no thread, and it
  works in any thread (a Dask worker's too).
* **Python functions** run under :func:`call_with_deadline`: in the main thread a ``SIGALRM`` timer
  (``signal.setitimer``) raises :class:`TimedOut` inside the function, which interrupts loops
  and sleeps alike and never touches spaCy's code (the timer is armed only around the user's
  call, on a Span or Doc spaCy has finished making). Signals reach only the main thread; in any
  other thread a watchdog raises :class:`TimedOut` in the calling thread
  (``PyThreadState_SetAsyncExc``), which stops Python loops but not a blocking call.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from typing import Any, Callable, TypeVar

REGEX_SECONDS = 1.0  # per regex rule and text (text-level) or per token string (token-level REGEX)
FUNCTION_SECONDS = 1.0  # per call: a labeling function on one span, a proposer on one text
SWITCH_OFF_AFTER = 3  # timeouts after which a rule or function is not run any more
T = TypeVar("T")


class TimedOut(Exception):
    """User code ran past its time limit."""


def call_with_deadline(seconds: float, func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``, or :class:`TimedOut` raised inside it once it has run ``seconds``.

    A plain function, not a context manager: it wraps every labeling-function call (hundreds of
    thousands at start-up), and costs about 3 µs in the main thread.
    """
    if threading.current_thread() is threading.main_thread():
        return _with_alarm(seconds, func, args)
    _WATCHDOG.arm(seconds)
    try:
        return func(*args)
    finally:
        _WATCHDOG.disarm()


class _Armed:
    """Whether a deadline runs; the SIGALRM handler is installed once and then left in place
    (it hands a signal it does not expect to the handler it replaced)."""

    on = False
    installed = False
    previous: Any = signal.SIG_DFL


def _on_alarm(signum, frame) -> None:
    if _Armed.on:
        _Armed.on = False  # a SIGALRM just after the call ended is ignored
        raise TimedOut()
    if callable(_Armed.previous):
        _Armed.previous(signum, frame)


def _with_alarm(seconds: float, func: Callable[..., T], args: tuple) -> T:
    if not _Armed.installed:
        _Armed.previous = signal.signal(signal.SIGALRM, _on_alarm)
        _Armed.installed = True
    _Armed.on = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return func(*args)
    finally:
        _Armed.on = False
        signal.setitimer(signal.ITIMER_REAL, 0)


class _Watchdog:
    """One daemon thread that raises TimedOut in threads whose deadline has passed."""

    def __init__(self) -> None:
        self._deadlines: dict[int, float] = {}  # thread id -> monotonic deadline
        self._fired: set[int] = set()  # threads TimedOut was sent to, not yet disarmed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> None:
        with self._lock:
            self._deadlines[threading.get_ident()] = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="bootstrap-deadline", daemon=True)
                self._thread.start()

    def disarm(self) -> None:
        """End the thread's deadline; a TimedOut sent but not yet raised (the block ended just
        then) is withdrawn, so it cannot surface in the caller's code after the block."""
        ident = threading.get_ident()
        with self._lock:
            self._deadlines.pop(ident, None)
            if ident in self._fired:
                self._fired.discard(ident)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)

    def _watch(self) -> None:
        while True:
            time.sleep(0.02)
            now = time.monotonic()
            with self._lock:
                late = [ident for ident, until in self._deadlines.items() if until <= now]
                for ident in late:
                    del self._deadlines[ident]
                    self._fired.add(ident)
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(TimedOut))


_WATCHDOG = _Watchdog()
