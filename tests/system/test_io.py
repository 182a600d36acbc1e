"""softreg.system.io: atomic writes, locks and whole-folder commits, including crashes at every step."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from softreg.system import folders
from softreg.system import io
from softreg.system import locks
from softreg.errors import UserInputError

OWNED = {"config.json": None, "model.bin": None, "checkpoint": frozenset({"state.json"})}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ atomic_write


def test_atomic_write_bytes_text_and_callable(tmp_path):
    p = tmp_path / "f"
    io.atomic_write(p, b"\x00bytes")
    assert p.read_bytes() == b"\x00bytes"
    io.atomic_write(p, "t\u00e9xt")
    assert p.read_text(encoding="utf-8") == "t\u00e9xt"
    io.atomic_write(p, lambda f: (f.write(b"a"), f.write(b"b")))
    assert p.read_bytes() == b"ab"
    assert _hidden(tmp_path) == []


def test_atomic_write_keeps_permissions_and_gives_new_files_umask_ones(tmp_path):
    p = tmp_path / "f"
    io.atomic_write(p, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask
    p.chmod(0o600)
    io.atomic_write(p, "y")
    assert p.stat().st_mode & 0o777 == 0o600


def test_atomic_write_refuses_a_symlink_and_a_folder(tmp_path):
    target = tmp_path / "outside.txt"
    target.write_text("precious")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(UserInputError, match=r"link is a symbolic link; softreg does not write through links"):
        io.atomic_write(tmp_path / "link", "overwrite")
    assert target.read_text() == "precious"
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserInputError, match=r"cannot write .*dir: it is a folder"):
        io.atomic_write(tmp_path / "dir", "x")


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    p = tmp_path / "f"
    p.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserInputError, match=r"cannot write .*f: No space left on device; free it"):
        io.atomic_write(p, "new", fix="free it")
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert _hidden(tmp_path) == []


def test_a_writers_own_error_propagates_unchanged(tmp_path):
    p = tmp_path / "f"

    def writer(f):
        f.write(b"half")
        raise ConnectionResetError("the server went away")

    with pytest.raises(ConnectionResetError, match="the server went away"):
        io.atomic_write(p, writer)
    assert not p.exists() and _hidden(tmp_path) == []


def test_stale_temporaries_of_killed_writers_are_removed_live_ones_kept(tmp_path):
    import fcntl

    p = tmp_path / "f"
    stem = io.hidden_name("f")
    stale = tmp_path / f"{stem}.dead{io.TMP_SUFFIX}"
    live = tmp_path / f"{stem}.live{io.TMP_SUFFIX}"
    stale.write_text("left by a killed writer")
    live.write_text("being written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a writer in progress holds
    try:
        io.atomic_write(p, "x")
    finally:
        os.close(fd)
    assert not stale.exists() and live.exists()


def test_ensure_folder_refuses_links_and_files(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UserInputError, match="is a symbolic link"):
        io.ensure_folder(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        io.ensure_folder(tmp_path / "file")
    assert io.ensure_folder(tmp_path / "a" / "b").is_dir()


# ------------------------------------------------------------------ locks


def _hold_in_child(path: Path, seconds: float = 30) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        from softreg.system.locks import lock
        with lock({str(path)!r}):
            print("held", flush=True)
            time.sleep({seconds})
    """)
    child = subprocess.Popen([sys.executable, "-c", code, "train", "--out", "x"], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_second_holder_fails_fast_naming_the_first(tmp_path):
    target = tmp_path / "run"
    child = _hold_in_child(target)
    try:
        start = time.monotonic()
        with pytest.raises(UserInputError) as info:
            with locks.lock(target, what="--out run", fix="choose another --out"):
                pass
        assert time.monotonic() - start < 5
        msg = str(info.value)
        assert msg.startswith("--out run is in use by another softreg process (pid ")
        assert f"pid {child.pid} on " in msg and msg.endswith("wait for it to finish or choose another --out.")
    finally:
        child.kill()
        child.wait()
    with locks.lock(target):  # the kernel released the dead holder's lock
        pass
    assert _hidden(tmp_path) == []


def test_lock_is_reentrant_for_its_thread_and_exclusive_for_others(tmp_path):
    target = tmp_path / "run"
    errors = []

    def other():
        try:
            with locks.lock(target):
                pass
        except UserInputError as exc:
            errors.append(str(exc))

    with locks.lock(target):
        with locks.lock(target):
            pass
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "in use by another thread of this process" in errors[0]
    other()  # free again
    assert len(errors) == 1


def test_lock_creates_missing_parents_and_removes_them_when_nothing_was_written(tmp_path):
    target = tmp_path / "a" / "b" / "run"
    with locks.lock(target):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()


def test_lock_without_flock_falls_back_to_exclusive_creation(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "try_flock", lambda fd: None)  # as on a file system without flock
    target = tmp_path / "run"
    with locks.lock(target):
        with pytest.raises(UserInputError, match=r"in use by another softreg process .*no flock"):
            locks._acquire(locks.lock_file(target), "run", "choose another path")
    assert not locks.lock_file(target).exists()
    # a lock file left by a process of this host that is gone is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    locks.lock_file(target).write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename,
                                                "since": "then", "command": "softreg train"}))
    with locks.lock(target):
        pass


# ------------------------------------------------------------------ commit_folder


def _writer(tag: str):
    def write(stage: Path) -> None:
        (stage / "config.json").write_text(json.dumps({"tag": tag}))
        (stage / "model.bin").write_text(tag * 100)

    return write


def _assert_complete(out: Path, tags=("old", "new")) -> str:
    tag = json.loads((out / "config.json").read_text())["tag"]
    assert tag in tags and (out / "model.bin").read_text() == tag * 100
    return tag


def _user_files(out: Path) -> None:
    (out / "mydata.csv").write_text("a,b\n1,2\n")
    (out / "notes").mkdir()
    (out / "notes" / "n.txt").write_text("mine")
    (out / "photos").symlink_to("/nonexistent/elsewhere")
    (out / "checkpoint").mkdir()
    (out / "checkpoint" / "state.json").write_text("{}")


def _assert_user_files(out: Path) -> None:
    assert (out / "mydata.csv").read_text() == "a,b\n1,2\n"
    assert (out / "notes" / "n.txt").read_text() == "mine"
    assert os.readlink(out / "photos") == "/nonexistent/elsewhere"


@pytest.fixture(params=[True, False], ids=["exchange", "journal"])
def mode(request, monkeypatch):
    monkeypatch.setattr(folders, "use_exchange", request.param)
    return request.param


def test_commit_creates_then_replaces_keeping_the_users_entries(tmp_path, mode):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("old"), owned=OWNED)
    _user_files(out)
    inode = (out / "mydata.csv").stat().st_ino
    folders.commit_folder(out, _writer("new"), owned=OWNED)
    assert _assert_complete(out) == "new"
    _assert_user_files(out)
    assert (out / "mydata.csv").stat().st_ino == inode  # the same file, not a copy
    assert not (out / "checkpoint").exists()  # softreg's, removed by the final save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_owned_names_holding_user_content_are_kept(tmp_path, mode):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("old"), owned=OWNED)
    (out / "checkpoint").mkdir()
    (out / "checkpoint" / "my-notes.txt").write_text("not softreg's")
    folders.commit_folder(out, _writer("new"), owned=OWNED)
    assert (out / "checkpoint" / "my-notes.txt").read_text() == "not softreg's"


def test_entries_that_cannot_be_carried_over_are_refused_by_name(tmp_path):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("old"), owned=OWNED)
    os.mkfifo(out / "pipe")
    with pytest.raises(UserInputError, match=r"holds .*pipe, which is not a file, folder or link"):
        folders.commit_folder(out, _writer("new"), owned=OWNED)
    assert _assert_complete(out) == "old" and (out / "pipe").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_file_system_without_hard_links_is_refused_before_anything(tmp_path, monkeypatch):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("old"), owned=OWNED)
    (out / "mydata.csv").write_text("keep me")

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(UserInputError, match=r"holds files softreg did not write \(mydata.csv\) .*cannot link"):
        folders.check_replaceable(out, OWNED)
    with pytest.raises(UserInputError, match=r"mydata.csv"):
        folders.commit_folder(out, _writer("new"), owned=OWNED)
    assert _assert_complete(out) == "old" and (out / "mydata.csv").read_text() == "keep me"
    (out / "mydata.csv").rename(tmp_path / "moved.csv")
    (out / "notes").mkdir()
    (out / "notes" / "deep.txt").write_text("files inside folders count too")
    with pytest.raises(UserInputError, match=r"holds files softreg did not write \(notes\)"):
        folders.check_replaceable(out, OWNED)


def test_a_failing_writer_leaves_the_old_folder_and_nothing_else(tmp_path, mode):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("old"), owned=OWNED)
    _user_files(out)

    def broken(stage):
        (stage / "config.json").write_text("half")
        raise RuntimeError("bug in the writer")

    with pytest.raises(RuntimeError, match="bug in the writer"):
        folders.commit_folder(out, broken, owned=OWNED)
    assert _assert_complete(out) == "old"
    _assert_user_files(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# Every system call the commit makes, in order; the fault injection below fails each in turn.
_CALLS = ("mkdir", "rename", "link", "symlink", "unlink", "rmdir", "fsync", "chmod", "replace", "open")


def _count_calls(monkeypatch, fail_at: int | None, exc=KeyboardInterrupt):
    count = [0]
    for name in _CALLS:
        real = getattr(os, name)

        def wrapped(*args, _real=real, **kwargs):
            count[0] += 1
            if fail_at is not None and count[0] == fail_at:
                raise exc()
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, wrapped)
    real_exchange = folders.exchange

    def exchange(a, b):
        count[0] += 1
        if fail_at is not None and count[0] == fail_at:
            raise exc()
        return real_exchange(a, b)

    monkeypatch.setattr(folders, "exchange", exchange)
    return count


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError], ids=["interrupt", "io-error"])
def test_an_interruption_at_every_step_leaves_a_complete_folder(tmp_path, mode, monkeypatch, exc):
    """Fail the n-th system call of a save, for every n: the folder is always the complete old
    or new one with the user's files, and the next start leaves nothing else behind."""
    base = tmp_path / "base"
    folders.commit_folder(base / "run", _writer("old"), owned=OWNED)
    _user_files(base / "run")
    with monkeypatch.context() as m:
        total = _count_calls(m, None)
        folders.commit_folder(tmp_path / "probe", _writer("old"), owned=OWNED)
        folders.commit_folder(tmp_path / "probe", _writer("new"), owned=OWNED)
    n_calls = total[0]
    assert n_calls > 20
    import shutil

    for k in range(1, n_calls + 1):
        case = tmp_path / f"case{k}"
        shutil.copytree(base, case, symlinks=True)
        out = case / "run"
        with monkeypatch.context() as m:
            _count_calls(m, k, exc)
            try:
                folders.commit_folder(out, _writer("new"), owned=OWNED)
            except (KeyboardInterrupt, OSError, UserInputError):
                pass
        if not out.exists():  # cut between the journal's two renames: a reader recovers first
            assert folders.interrupted(out)
        with locks.lock(out):
            folders.recover(out, OWNED)
        _assert_complete(out)
        _assert_user_files(out)
        assert sorted(p.name for p in case.iterdir()) == ["run"], k
        folders.commit_folder(out, _writer("new"), owned=OWNED)  # and the next save works
        assert _assert_complete(out) == "new"


def test_recovery_moves_back_a_file_created_during_the_save(tmp_path):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("new"), owned=OWNED)
    old = tmp_path / f"{io.hidden_name('run')}.softreg-stage.dead"  # the old folder after an exchange
    old.mkdir()
    (old / "config.json").write_text("{}")
    (old / "written-meanwhile.txt").write_text("user data")
    with locks.lock(out):
        folders.recover(out, OWNED)
    assert (out / "written-meanwhile.txt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_recovery_keeps_and_reports_a_conflicting_file(tmp_path, capsys):
    out = tmp_path / "run"
    folders.commit_folder(out, _writer("new"), owned=OWNED)
    (out / "notes.txt").write_text("new version")
    old = tmp_path / f"{io.hidden_name('run')}.softreg-old.dead"
    old.mkdir()
    (old / "notes.txt").write_text("a different file")
    with locks.lock(out):
        folders.recover(out, OWNED)
    assert (old / "notes.txt").read_text() == "a different file"  # never deleted
    assert "kept 1 file(s)" in capsys.readouterr().err


_KILL_CHILD = """
import json, sys
from pathlib import Path
from softreg.system import folders
from softreg.system import io
folders.use_exchange = sys.argv[2] == "exchange"
OWNED = {"config.json": None, "model.bin": None}
out = Path(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    tag = "ab"[i % 2]
    def write(stage, tag=tag):
        (stage / "config.json").write_text(json.dumps({"tag": tag}))
        (stage / "model.bin").write_text(tag * 100000)
    folders.commit_folder(out, write, owned=OWNED)
    i += 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["exchange", "journal"])
def test_kill_9_at_random_moments_of_repeated_saves(tmp_path, how):
    """A real process saving in a loop, killed with SIGKILL at random moments: each time the
    folder holds a complete run and the user's file, and the next start cleans up."""
    import random

    out = tmp_path / "run"
    rng = random.Random(0)
    for attempt in range(12):
        child = subprocess.Popen([sys.executable, "-c", _KILL_CHILD, str(out), how], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        if attempt == 0:
            time.sleep(0.3)
            (out / "mydata.csv").write_text("mine")
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        owned = {"config.json": None, "model.bin": None}
        with locks.lock(out):
            folders.recover(out, owned)
        tag = json.loads((out / "config.json").read_text())["tag"]
        assert (out / "model.bin").read_text() == tag * 100000
        assert (out / "mydata.csv").read_text() == "mine"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_simultaneous_saves_fail_fast_or_succeed_and_leave_one_complete_run(tmp_path):
    out = tmp_path / "run"
    code = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from softreg.system import folders
        from softreg.errors import UserInputError
        tag = sys.argv[2]
        def write(stage):
            (stage / "config.json").write_text(json.dumps({"tag": tag}))
            (stage / "model.bin").write_text(tag * 100)
        try:
            folders.commit_folder(Path(sys.argv[1]), write, owned={"config.json": None, "model.bin": None})
            print("saved")
        except UserInputError as exc:
            print("refused:", exc)
    """)
    children = [subprocess.Popen([sys.executable, "-c", code, str(out), f"t{i}"], stdout=subprocess.PIPE, text=True)
                for i in range(16)]
    results = [c.communicate(timeout=120)[0].strip() for c in children]
    assert all(r == "saved" or (r.startswith("refused:") and "is in use by another softreg process" in r)
               for r in results), results
    assert "saved" in results
    _assert_complete(out, tags=[f"t{i}" for i in range(16)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_lock_taken_a_moment_ago_is_named_once_its_holder_has_written(tmp_path):
    """The holder writes its name just after taking the lock; a second writer arriving in between
    still names it (16 simultaneous saves once met the empty file and said 'another process')."""
    import fcntl

    from softreg.system import locks

    target = tmp_path / "run"
    fd = os.open(locks.lock_file(target), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        writer = threading.Timer(0.03, lambda: os.pwrite(fd, locks._holder_info(), 0))
        writer.start()
        with pytest.raises(UserInputError, match=r"is in use by another softreg process \(pid"):
            with locks.lock(target):
                pass
        writer.join()
    finally:
        os.close(fd)
