"""Exits that are not errors: a reader that closes the pipe early (`... | head -1`), Ctrl-C while loading."""

from __future__ import annotations

import os
import subprocess
import sys


def _run_into_closed_pipe(*args) -> subprocess.CompletedProcess:
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE, as after `head -1` exits
    try:
        return subprocess.run([sys.executable, "-m", "softreg", *map(str, args)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


def test_predict_into_a_closed_pipe_exits_0_quietly(trained_idx_run):
    folder, run_dir = trained_idx_run
    done = _run_into_closed_pipe("predict", run_dir, "--index", "0")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_train_into_a_closed_pipe_exits_0_quietly(tmp_path):
    done = _run_into_closed_pipe("train", "--data", "toy", "--epochs", "2", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_ctrl_c_while_the_command_line_loads_is_one_line(monkeypatch, capsys):
    """Ctrl-C during the imports, before the command line's own handler runs: status 130, one line."""
    import types

    import pytest

    from softreg import _entry

    class Interrupted(types.ModuleType):
        def __getattr__(self, name):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "softreg.cli", Interrupted("softreg.cli"))
    with pytest.raises(SystemExit) as exc:
        _entry.main(["--help"])
    assert exc.value.code == 130
    assert capsys.readouterr().err == "softreg: interrupted\n"
