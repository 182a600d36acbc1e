"""Exclusive locks beside a path, for writers that must not run twice at once (a run's --out).

:func:`lock` takes an exclusive ``flock`` on ``.NAME.<hash>.softreg-lock`` beside the path,
without waiting: a second holder fails at once with a message naming the first (pid,
host, start time, command line, which the holder writes into the file). ``flock`` locks
belong to an open file, so two holders in one process (threads, tests) exclude each
other too, and the kernel drops them when a holder dies: a killed run leaves no stale
lock (the file itself is removed on release, and reused if a killed holder left it).
On file systems without ``flock`` (some FUSE and old network mounts answer ENOLCK or
EOPNOTSUPP) the lock falls back to creating the file exclusively; a file left by a dead
process on this host is taken over, one left by another host must be deleted by hand,
and the message says so. The thread that holds a lock may take it again (``save_run``
inside a training that holds it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from softreg.system import signals
from softreg.errors import UserInputError
from softreg.system.io import absolute_path, os_reason, hidden_name, try_flock


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int
    flock: bool  # False: held by exclusive creation (file system without flock)


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _remove_held() -> None:
    """A signal ends the process at once: remove the lock files it holds (no guard: it may be held)."""
    for key in list(_HELD):
        with contextlib.suppress(OSError):
            os.unlink(key)


signals.at_abrupt_exit(_remove_held)


def lock_file(path: str | os.PathLike) -> Path:
    """Where the lock of ``path`` lives: a hidden file beside it."""
    target = absolute_path(path)
    return target.parent / f"{hidden_name(target.name)}.softreg-lock"


def _holder_info() -> bytes:
    command = " ".join(["softreg", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    doc = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
           "command": command[:200]}
    return (json.dumps(doc) + "\n").encode()


def _describe_holder(raw: bytes) -> tuple[str, dict]:
    try:
        doc = json.loads(raw.decode("utf-8"))
        pid, host, since, command = int(doc["pid"]), str(doc["host"]), str(doc["since"]), str(doc["command"])
    except (ValueError, KeyError, TypeError):
        return "another process", {}
    return f"another softreg process (pid {pid} on {host}, since {since}: {' '.join(command.split())})", doc


def _read_holder(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def _current_holder(path: Path) -> str:
    """Who holds the lock at ``path``: the holder writes its name just after taking the lock, so an
    empty file is read again for a moment before giving up on the name."""
    for _ in range(20):
        holder, doc = _describe_holder(_read_holder(path))
        if doc:
            return holder
        time.sleep(0.005)
    return holder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(path: Path, what: str, fix: str) -> tuple[int, bool]:
    """Open and lock ``path``; (fd, uses flock). Raise UserInputError when another holds it."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(20):
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise UserInputError(f"cannot lock {what}: {os_reason(exc)} ({path}); {fix}.") from None
        keep = False
        try:
            got = try_flock(fd)
            if got is None:
                empty = os.fstat(fd).st_size == 0  # created just now by this open, holding no one's name
                os.close(fd)
                fd = -1
                if empty:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                return _acquire_exclusive(path, what, fix), False
            if not got:
                raise UserInputError(f"{what} is in use by {_current_holder(path)}; wait for it to finish or {fix}.")
            # the previous holder unlinks the file on release: make sure ours is still the one at `path`
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, _holder_info(), 0)
                keep = True
                return fd, True
        except OSError as exc:
            raise UserInputError(f"cannot lock {what}: {os_reason(exc)} ({path}); {fix}.") from None
        finally:
            if not keep and fd >= 0:  # whatever happened (an interrupt included), no leaked lock
                os.close(fd)
    raise UserInputError(f"cannot lock {what}: the lock file {path} keeps changing; {fix}.")


def _acquire_exclusive(path: Path, what: str, fix: str) -> int:
    """The lock without flock: whoever creates the file holds it."""
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except FileExistsError:
            holder, doc = _describe_holder(_read_holder(path))
            if doc.get("host") == socket.gethostname() and not _pid_alive(int(doc.get("pid", 0)) or -1):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # left by a process of this host that is gone
                continue
            raise UserInputError(
                f"{what} is in use by {holder} (this file system has no flock: if that process is gone, "
                f"delete {path}); wait for it to finish or {fix}."
            ) from None
        except OSError as exc:
            raise UserInputError(f"cannot lock {what}: {os_reason(exc)} ({path}); {fix}.") from None
        os.write(fd, _holder_info())
        return fd
    raise UserInputError(f"cannot lock {what}: {path} keeps reappearing; {fix}.")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created, outermost first."""
    missing = []
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for p in reversed(missing):
        try:
            os.mkdir(p)
        except FileExistsError:
            pass
    return list(reversed(missing))


@contextlib.contextmanager
def lock(path: str | os.PathLike, *, what: str | None = None,
         fix: str = "choose another path") -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (which need not exist) for the ``with`` block.

    Fails at once, without waiting, with a UserInputError naming the holder:
    "``what`` is in use by another softreg process (pid ..., since ...: softreg train ...);
    wait for it to finish or ``fix``." Missing parent folders are created (and removed
    again on release when ``path`` was never created). Yields the absolute path.
    """
    target = absolute_path(path)
    what = what or str(target)
    where = lock_file(target)
    key, me = str(where), threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held.thread == me:
            held.depth += 1
    if held is not None and held.thread == me:
        try:
            yield target
        finally:
            held.depth -= 1
        return
    if held is not None:
        raise UserInputError(f"{what} is in use by another thread of this process; wait for it to finish or {fix}.")
    try:
        created = _make_parents(target.parent)
    except OSError as exc:
        raise UserInputError(f"cannot create the folder of {what}: {os_reason(exc)}; {fix}.") from None
    try:
        fd, uses_flock = _acquire(where, what, fix)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        with _HELD_GUARD:
            _HELD[key] = _Held(fd, me, 1, uses_flock)
        yield target
    finally:
        try:
            with _HELD_GUARD:
                _HELD.pop(key, None)
            with contextlib.suppress(OSError):
                os.unlink(where)  # before closing: one who opened it meanwhile re-checks the inode
        finally:
            os.close(fd)  # releases the lock, whatever interrupted the lines above
            if not os.path.lexists(target):
                _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    for p in reversed(folders):
        try:
            os.rmdir(p)
        except OSError:
            break
