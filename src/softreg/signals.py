"""Ctrl-C and SIGTERM on the command line: each becomes an exception in the main thread.

SIGINT raises ``KeyboardInterrupt`` (as Python's own handler does) and SIGTERM raises
:class:`Terminated`, so ``finally`` blocks and context managers run either way (a
temporary file is removed, a lock released) and the command line can answer with one
line and its own exit status: 130 and 143 (128 + the signal number, as shells report).
"""

from __future__ import annotations

import signal
import threading

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so ``except Exception`` lets it pass."""


def _terminate(signum, frame) -> None:
    raise Terminated


def install() -> dict | None:
    """Route SIGINT and SIGTERM to exceptions; return the previous handlers (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    return previous


def restore(previous: dict | None) -> None:
    """Put back the handlers :func:`install` replaced."""
    if previous is None or threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def ignore() -> None:
    """Ignore both signals from now on (while the process reports and exits)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
