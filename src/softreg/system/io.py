"""Atomic writes: every file softreg writes goes through :func:`atomic_write`.

:func:`atomic_write` writes a temporary file beside the target (same folder,
so the rename never crosses file systems), fsyncs it, renames it over the target and
fsyncs the folder: readers see the old file or the new one, never a mix, even after a
power cut. It refuses to write through a symbolic link or over a folder or device.
While it writes, the temporary ``.NAME.<hash>.<token>.softreg-tmp`` is ``flock``-ed;
a killed writer leaves an unlocked one, which the next write of the same file removes.

Beside it: :mod:`softreg.system.locks` (an exclusive lock beside a path that a second holder
fails to take at once, naming the first) and :mod:`softreg.system.folders` (replacing a whole
folder, a run, so that a complete folder, old or new, is at its path at every instant).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import BinaryIO, Callable, Union

from softreg.system import signals
from softreg.errors import UserInputError

try:
    import fcntl
except ImportError:  # not POSIX: locks fall back to exclusive creation
    fcntl = None  # type: ignore[assignment]

Data = Union[bytes, str, Callable[[BinaryIO], None]]

TMP_SUFFIX = ".softreg-tmp"
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def notice(message: str) -> None:
    """A note on stderr for something the user may want to act on (not an error)."""
    print(f"softreg: note: {' '.join(message.split())}", file=sys.stderr)


def hidden_name(name: str) -> str:
    """A short stem, unique per name, for the hidden files that belong to ``name`` beside it."""
    raw = os.fsencode(name)
    return f".{os.fsdecode(raw[:40])}.{hashlib.sha1(raw).hexdigest()[:10]}"


def absolute_path(path: str | os.PathLike) -> Path:
    """The absolute path, with symbolic links resolved in the parent but not in the last part."""
    path = Path(os.path.abspath(os.fspath(path)))
    return path.parent.resolve() / path.name if path.name else path


def os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a folder's entries (renames, new files) durable; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS):
            raise
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- files


class _WriteFailed(Exception):
    """An OSError from writing the temporary file, kept apart from the writer's own errors."""

    def __init__(self, exc: OSError):
        super().__init__(str(exc))
        self.exc = exc


class _Sink:
    """The file object handed to a writer callable: writes go to the temporary file."""

    def __init__(self, f: BinaryIO):
        self._f = f

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            raise _WriteFailed(exc) from None

    def tell(self) -> int:
        return self._f.tell()

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    # what stream writers (pyarrow's CSV and Parquet writers) also ask of a file; closing is
    # atomic_write's job, so a writer that closes its sink leaves the temporary file open
    closed = False

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass


def check_target(path: Path, what: str, fix: str) -> os.stat_result | None:
    """The target's lstat, or None when absent; refuse a symbolic link or a non-regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserInputError(f"cannot write {what}: {os_reason(exc)}; {fix}.") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserInputError(
            f"{what} is a symbolic link; softreg does not write through links: remove it or {fix}."
        )
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserInputError(f"cannot write {what}: it is {kind}; {fix}.")
    return st


def try_flock(fd: int) -> bool | None:
    """True when locked, False when another holds it, None when the file system has no flock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _NO_FLOCK:
            return None
        raise


def clean_stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Remove ``name``'s temporaries in ``folder`` left by killed writers (unlocked ones)."""
    prefix, removed = hidden_name(name) + ".", []
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(prefix) and e.name.endswith(TMP_SUFFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            fd = os.open(folder / entry, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if try_flock(fd):  # its writer is gone
                os.unlink(folder / entry)
                removed.append(folder / entry)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


_LIVE_TEMPORARIES: set[Path] = set()  # being written by this process


def _remove_live_temporaries() -> None:
    for tmp in list(_LIVE_TEMPORARIES):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


signals.at_abrupt_exit(_remove_live_temporaries)


def atomic_write(path: str | os.PathLike, data: Data, *, fix: str = "choose another path",
                 what: str | None = None) -> Path:
    """Write ``data`` to ``path`` so that it holds the old content or the new, never a mix.

    data : bytes, text (written as UTF-8), or a callable that writes into the binary
        file object it is given (errors it raises abort the write and propagate).
    fix : the end of the error message, e.g. ``"choose another --out"``.
    what : how to name the file in messages (default: the path).

    The folder must exist. A file that exists keeps its permission bits; a new one
    gets those a plain ``open`` would give. Raises UserInputError when the file
    cannot be written (a symlink or folder in the way, no space, no permission).
    """
    path = Path(path)
    what = what or str(path)
    folder = path.absolute().parent
    existing = check_target(path, what, fix)
    clean_stale_temporaries(folder, path.name)
    tmp = folder / f"{hidden_name(path.name)}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        raise UserInputError(f"cannot write {what}: {os_reason(exc)}; {fix}.") from None
    done, writer_error = False, None
    _LIVE_TEMPORARIES.add(tmp)
    try:
        try_flock(fd)  # marks the temporary as alive for clean_stale_temporaries
        with os.fdopen(os.dup(fd), "wb") as f:
            if callable(data):
                try:
                    data(_Sink(f))  # type: ignore[arg-type]
                except _WriteFailed:
                    raise
                except BaseException as exc:
                    writer_error = exc  # the writer's own failure (a network error...): not ours to word
                    raise
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
        os.replace(tmp, path)
        done = True
        fsync_dir(folder)
    except _WriteFailed as exc:
        raise UserInputError(f"cannot write {what}: {os_reason(exc.exc)}; {fix}.") from None
    except OSError as exc:
        if exc is writer_error:
            raise
        if done:  # the new file is in place; only the folder's fsync failed
            return path
        raise UserInputError(f"cannot write {what}: {os_reason(exc)}; {fix}.") from None
    finally:
        os.close(fd)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _LIVE_TEMPORARIES.discard(tmp)
    return path


def write_text(path: str | os.PathLike, text: str, fix: str = "choose another folder") -> Path:
    """Write ``text`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, text, fix=fix)


def write_json(path: str | os.PathLike, doc, fix: str = "make the folder writable or use --no-save") -> Path:
    """Write ``doc`` as indented JSON, atomically."""
    return atomic_write(path, json.dumps(doc, indent=2) + "\n", fix=fix)


def ensure_folder(path: str | os.PathLike, what: str | None = None, fix: str = "choose another path") -> Path:
    """Create ``path`` (and its parents) as a real folder; refuse a symbolic link or a file there."""
    path = Path(path)
    what = what or str(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot write {what}: {os_reason(exc)}; {fix}.") from None
        return path
    except OSError as exc:
        raise UserInputError(f"cannot write {what}: {os_reason(exc)}; {fix}.") from None
    if stat.S_ISLNK(st.st_mode):
        raise UserInputError(f"{what} is a symbolic link; softreg does not write through links: remove it or {fix}.")
    if not stat.S_ISDIR(st.st_mode):
        raise UserInputError(f"{what} is a file; give a folder, or {fix}.")
    return path


def probe_writable(folder: Path, what: str, fix: str = "choose another --out") -> None:
    """Create and remove a temporary folder in ``folder``: a real write, since permission
    bits do not tell (root, read-only mounts, /proc)."""
    probe = folder / f".softreg-probe.{secrets.token_hex(4)}"
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        raise UserInputError(f"cannot write {what}: {folder} is not writable ({os_reason(exc)}); {fix}.") from None
