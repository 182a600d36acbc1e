"""Ctrl-C and SIGTERM on the command line: one line, exit status 130 or 143, never a traceback.

The first signal raises an exception in the main thread (``KeyboardInterrupt`` for SIGINT,
:class:`Terminated` for SIGTERM), so ``finally`` blocks and context managers run: a
temporary file is removed, a lock released. Third-party code does not always let such an
exception through: an import that catches everything (measured here: an interrupt during
NumPy's import was swallowed and training went on to the end, or left NumPy half-loaded
and crashed later). So the first signal also starts a watchdog: unless the command line
has reported the interrupt within :data:`GRACE` seconds, the process prints the line and
exits at once. A second signal exits at once too. Exiting at once is safe because every
write is crash-safe (:mod:`softreg.system.io`): it is what ``kill -9`` does, minus the message.

A signal that lands while a module is being imported exits at once without raising: an
import may run Python under C++ frames (torch's pybind11 modules), where an exception
aborts the process with a C++ traceback (``terminate called ...``, status -6). Whatever
exits at once first runs the hooks registered with :func:`at_abrupt_exit`: the lock files
and temporary files this process holds are removed, as the ``finally`` blocks would have.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable

from softreg.system import processes

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as shells report
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
GRACE = 3.0  # seconds the orderly path gets before the watchdog ends the process
MESSAGES = {signal.SIGINT: "softreg: interrupted", signal.SIGTERM: "softreg: terminated"}
CODES = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: EXIT_TERMINATED}

_received: int | None = None  # the first signal of this command, if any
_reported = False
_abrupt_exit_hooks: list[Callable[[], None]] = []


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so ``except Exception`` lets it pass."""


def received() -> int | None:
    """The signal that interrupted this command (SIGINT or SIGTERM), or None."""
    return _received


def report(signum: int) -> int:
    """Print the one line for ``signum`` (once) and return its exit status."""
    global _reported
    if not _reported:
        _reported = True
        if not processes.is_main():  # a distributed job: rank 0 speaks for it
            return CODES[signum]
        try:
            sys.stderr.write(MESSAGES[signum] + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return CODES[signum]


def at_abrupt_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` (which must not raise, block or take locks) when a signal ends the process at once."""
    _abrupt_exit_hooks.append(hook)


def _exit_now(signum: int) -> None:
    """End the process without unwinding: remove what the hooks name, flush, report, exit."""
    for hook in _abrupt_exit_hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 - the process is ending; nothing may stop that
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):
            pass
    if sys.stderr is not None and getattr(sys.stderr, "isatty", lambda: False)():
        try:
            sys.stderr.write("\x1b[?25h")  # a progress bar may have hidden the cursor
        except (OSError, ValueError):
            pass
    os._exit(report(signum))


def exit_now(code: int) -> None:
    """Flush stdout and stderr and end the process with ``code``, skipping interpreter teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError, AttributeError):
            pass
    os._exit(code)


def _importing(frame) -> bool:
    """Whether ``frame`` runs inside an import (a frame of importlib's bootstrap is on the stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _handler(signum: int, frame) -> None:
    global _received
    if _received is not None:  # a second Ctrl-C: the user means it
        _exit_now(_received)
    _received = signum
    if _importing(frame):
        _exit_now(signum)
    import threading

    watchdog = threading.Timer(GRACE, _exit_now, args=(signum,))
    watchdog.daemon = True
    watchdog.start()
    raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


def install() -> dict | None:
    """Route SIGINT and SIGTERM to :func:`_handler`; return the previous handlers
    (None when not on the main thread, where Python cannot set handlers)."""
    global _received, _reported
    _received, _reported = None, False
    try:
        previous = {sig: signal.getsignal(sig) for sig in MESSAGES}
        for sig in MESSAGES:
            signal.signal(sig, _handler)
    except ValueError:  # not the main thread
        return None
    return previous


def restore(previous: dict | None) -> None:
    """Put back the handlers :func:`install` replaced."""
    if previous is None:
        return
    for sig, handler in previous.items():
        try:
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        except ValueError:
            pass


def ignore() -> None:
    """Ignore both signals from now on (while the process reports and exits)."""
    for sig in MESSAGES:
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:
            pass
