"""Replacing a folder (a run) as one step, keeping every entry softreg did not write.

:func:`commit_folder` runs under the folder's :func:`~softreg.system.locks.lock`:

1. ``write(stage)`` fills a staging folder ``.NAME.<hash>.softreg-stage.<token>`` beside
   the target; every file in it is fsynced.
2. Every entry of the old folder that softreg does not own (``owned`` names them) is
   linked into the stage: hard links for files (the same data, not a copy), the same
   symbolic links, folders re-created. Entries that cannot be linked (devices, mount
   points, a file system without hard links) are refused beforehand by
   :func:`check_replaceable`, naming them.
3. The stage and the target are exchanged with one ``renameat2(RENAME_EXCHANGE)`` call
   (Linux 3.15+, through ctypes): at every instant the path is the complete old folder
   or the complete new one. Where the call is missing or the file system refuses it
   (NFS, non-Linux), a journal ``.NAME.<hash>.softreg-journal`` naming both folders is
   written first and two renames follow; :func:`recover` (run at the next start, and by
   readers that find the folder missing) rolls forward from it.
4. The old folder is discarded: owned entries are deleted, a user entry only when the
   very same file (same inode) is in the new folder; anything else (a file created
   during the save) is moved back. Nothing the user wrote is deleted.

The exchange was chosen over replacing files in place under a journal because a reader
then never needs a recovery step to see a consistent run, and a crash at any moment
leaves at most a hidden stage or old copy, which :func:`recover` settles by the same
rule as step 4 on the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import stat
import sys
from pathlib import Path
from typing import Callable, Mapping

from softreg.errors import UserInputError
from softreg.system.io import (TMP_SUFFIX, absolute_path, atomic_write, clean_stale_temporaries, fsync_dir, hidden_name,
                        notice, os_reason)
from softreg.system.locks import lock

Owned = Mapping[str, "frozenset[str] | None"]  # name -> None (a file) or the names a folder may hold

MAX_KEPT = 10_000  # user entries carried over when replacing a folder
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}
use_exchange = True  # False forces the journalled two-rename path (tests)


def _is_temporary(name: str) -> bool:
    return name.endswith(TMP_SUFFIX) or name.startswith(".softreg-probe.")


def is_owned(folder: Path, name: str, owned: Owned) -> bool:
    """Whether entry ``name`` of ``folder`` is softreg's: an owned file name holding a regular
    file, an owned folder name holding only the names declared for it, or a temporary."""
    if _is_temporary(name):
        return True
    if name not in owned:
        return False
    try:
        st = os.lstat(folder / name)
    except OSError:
        return False
    allowed = owned[name]
    if allowed is None:
        return stat.S_ISREG(st.st_mode)
    if not stat.S_ISDIR(st.st_mode):
        return False
    try:
        children = list(os.scandir(folder / name))
    except OSError:
        return False
    return all((c.name in allowed or _is_temporary(c.name)) and c.is_file(follow_symlinks=False)
               for c in children)


def _user_entries(out: Path, owned: Owned, what: str, fix: str) -> tuple[list[str], Path | None]:
    """Names in ``out`` that softreg must keep, and one regular file among them (to probe hard
    links with); refuse entries that cannot be linked."""
    names = sorted(e.name for e in os.scandir(out))
    users = [n for n in names if not is_owned(out, n, owned)]
    device, count, a_file = os.lstat(out).st_dev, 0, None
    stack = [out / n for n in users]
    while stack:
        p = stack.pop()
        count += 1
        if count > MAX_KEPT:
            raise UserInputError(
                f"{what} holds more than {MAX_KEPT} files and folders softreg did not write; move them "
                f"out of it or {fix}."
            )
        st = os.lstat(p)
        if stat.S_ISDIR(st.st_mode):
            if st.st_dev != device:
                raise UserInputError(f"{what} holds a mount point ({p}) that softreg cannot carry into a new "
                                     f"run; unmount or move it, or {fix}.")
            stack.extend(p / c for c in os.listdir(p))
        elif stat.S_ISREG(st.st_mode):
            a_file = a_file or p
        elif not stat.S_ISLNK(st.st_mode):
            raise UserInputError(f"{what} holds {p}, which is not a file, folder or link, so softreg cannot keep "
                                 f"it when replacing the run; move it out of the folder or {fix}.")
    return users, a_file


def check_replaceable(out: str | os.PathLike, owned: Owned, *, what: str | None = None,
                      fix: str = "choose another path") -> None:
    """Fail now, not after training, when ``out`` could not be replaced keeping the user's files."""
    out = absolute_path(out)
    what = what or str(out)
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UserInputError(f"{what} is a symbolic link; give the real folder path, or {fix}.")
    if not stat.S_ISDIR(st.st_mode):
        raise UserInputError(f"{what} is a file; give a folder path, or {fix}.")
    if os.lstat(out.parent).st_dev != st.st_dev:
        raise UserInputError(f"{what} is a mount point, which cannot be replaced; give a folder inside it, or {fix}.")
    users, first = _user_entries(out, owned, what, fix)
    if first is None:
        return
    probe = out.parent / f"{hidden_name(out.name)}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    try:
        os.link(first, probe)
    except OSError as exc:
        raise UserInputError(
            f"{what} holds files softreg did not write ({', '.join(users[:3])}{', ...' if len(users) > 3 else ''}) "
            f"and this file system cannot link them into a new run ({os_reason(exc)}); move them out or {fix}."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _link_tree(src: Path, dst: Path) -> None:
    """Re-create ``src`` at ``dst`` sharing its files: hard links, the same symlinks, new folders."""
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(dst, stat.S_IMODE(st.st_mode) | 0o700)
        for child in os.listdir(src):
            _link_tree(src / child, dst / child)
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    else:
        os.link(src, dst, follow_symlinks=False)


def _fsync_tree(folder: Path) -> None:
    for root, dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


def _settle(src: Path, dst: Path) -> list[Path]:
    """Dispose of a user's entry ``src`` from a discarded folder; never lose data.

    Deleted when ``dst`` is the same file (or a symlink, which holds no data, is in
    the way); moved to ``dst`` when nothing is there; folders are merged. Returns what
    could not be placed (a different file already at ``dst``).
    """
    st = os.lstat(src)
    try:
        dt = os.lstat(dst)
    except FileNotFoundError:
        os.makedirs(dst.parent, exist_ok=True)
        os.rename(src, dst)
        return []
    if stat.S_ISLNK(st.st_mode) or os.path.samestat(st, dt):
        os.unlink(src)
        return []
    if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(dt.st_mode):
        left = [p for child in os.listdir(src) for p in _settle(src / child, dst / child)]
        if not left:
            os.rmdir(src)
        return left
    return [src]


def discard(folder: Path, out: Path, owned: Owned) -> list[Path]:
    """Remove a staging or old copy of ``out``: softreg's entries go, the user's are settled
    back into ``out`` (see :func:`_settle`). Returns the entries left in place."""
    left: list[Path] = []
    for name in sorted(os.listdir(folder)):
        p = folder / name
        if is_owned(folder, name, owned):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else os.unlink(p)
        else:
            left += _settle(p, out / name)
    if not left:
        os.rmdir(folder)
    else:
        notice(f"kept {len(left)} file(s) that differ from those in {out} in {folder} "
               f"(for example {left[0].name}); look at them and delete the folder when done.")
    fsync_dir(out.parent)
    return left


def _is_same(path: Path, st: os.stat_result) -> bool:
    try:
        return os.path.samestat(os.lstat(path), st)
    except OSError:
        return False


def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where unsupported."""
    fn = _renameat2() if use_exchange and sys.platform.startswith("linux") else None
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(b))


def _journal(out: Path) -> Path:
    return out.parent / f"{hidden_name(out.name)}.softreg-journal"


def _swap_in(stage: Path, out: Path) -> Path | None:
    """Put ``stage`` at ``out``; return where the old folder now is (None when there was none)."""
    if not os.path.lexists(out):
        try:
            os.rename(stage, out)
            fsync_dir(out.parent)
            return None
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if exchange(stage, out):
        fsync_dir(out.parent)
        return stage
    old = out.parent / f"{hidden_name(out.name)}.softreg-old.{secrets.token_hex(4)}"
    journal = _journal(out)
    atomic_write(journal, json.dumps({"stage": stage.name, "old": old.name}))
    os.rename(out, old)
    os.rename(stage, out)  # between the two renames, recover() rolls forward from the journal
    fsync_dir(out.parent)
    os.unlink(journal)
    fsync_dir(out.parent)
    return old


def interrupted(out: str | os.PathLike) -> bool:
    """Whether a replacement of ``out`` was cut between its two renames (journal path only)."""
    return os.path.lexists(_journal(absolute_path(out)))


def recover(out: str | os.PathLike, owned: Owned) -> None:
    """Finish or undo an interrupted :func:`commit_folder` of ``out`` and remove its leftovers.

    Call while holding :func:`lock` on ``out``. A journal whose folder is missing is rolled
    forward (the complete new folder is put in place; the old one if the new is gone);
    staging and old copies are then discarded by the rule of :func:`discard`.
    """
    out = absolute_path(out)
    tag, journal = hidden_name(out.name), _journal(out)
    if os.path.lexists(journal):
        try:
            with open(journal, "rb") as f:
                doc = json.loads(f.read(4096))
            names = [str(doc["stage"]), str(doc["old"])]
        except (OSError, ValueError, KeyError, TypeError):
            names = []
        if not os.path.lexists(out):
            for name in names:
                candidate = out.parent / name
                if name.startswith(tag + ".softreg-") and "/" not in name and candidate.is_dir():
                    os.rename(candidate, out)
                    break
        os.unlink(journal)
        fsync_dir(out.parent)
    for name in (out.name, journal.name):  # temporaries of killed writers (unlocked ones)
        clean_stale_temporaries(out.parent, name)
    stale = [out.parent / e.name for e in os.scandir(out.parent)
             if e.name.startswith((tag + ".softreg-stage.", tag + ".softreg-old."))
             and e.is_dir(follow_symlinks=False)]
    for folder in stale:
        discard(folder, out, owned)


def commit_folder(out: str | os.PathLike, write: Callable[[Path], None], *, owned: Owned,
                  what: str | None = None, fix: str = "choose another path") -> Path:
    """Replace the folder ``out`` by what ``write(stage)`` puts into an empty staging folder.

    owned : the names softreg writes in such a folder (see :func:`is_owned`); every
        other entry of the old folder is kept in the new one.
    what, fix : name the folder and the remedy in messages ("cannot write {what}: ...; {fix}").

    Takes the lock of ``out`` (re-entrant for the thread that holds it), recovers an
    interrupted earlier commit, and guarantees a complete folder, old or new, at
    ``out`` at every instant (see the module docstring). OSErrors become UserInputError;
    other exceptions from ``write`` propagate after the stage is removed.
    """
    out = absolute_path(out)
    what = what or str(out)
    with lock(out, what=what, fix=fix):
        try:
            recover(out, owned)
            check_replaceable(out, owned, what=what, fix=fix)
            users = _user_entries(out, owned, what, fix)[0] if os.path.lexists(out) else []
            stage = out.parent / f"{hidden_name(out.name)}.softreg-stage.{secrets.token_hex(4)}"
            os.mkdir(stage)
            if os.path.lexists(out):
                os.chmod(stage, stat.S_IMODE(os.lstat(out).st_mode))
        except OSError as exc:
            raise UserInputError(f"cannot write {what} ({os_reason(exc)}); {fix}.") from None
        made = os.lstat(stage)
        old: Path | None = None
        try:
            write(stage)
            _fsync_tree(stage)
            for name in users:
                if not os.path.lexists(stage / name):
                    _link_tree(out / name, stage / name)
            fsync_dir(stage)
            old = _swap_in(stage, out)
        except OSError as exc:
            raise UserInputError(f"cannot write {what} ({os_reason(exc)}); {fix}.") from None
        finally:
            if old is not None:
                discard(old, out, owned)
            elif not _is_same(out, made) and os.path.lexists(stage):
                # never swapped in: the stage holds our files and links to the user's (not their data)
                shutil.rmtree(stage, ignore_errors=True)
            # swapped but interrupted before `old` was known: recover() settles it at the next start
    return out
