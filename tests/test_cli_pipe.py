"""A reader that closes the pipe early (``softreg predict RUN --index 0 | head -1``) is not an error."""

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
