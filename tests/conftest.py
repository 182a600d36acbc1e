"""Shared fixtures: fixed seeds, an isolated environment, small IDX folders and a CLI runner."""

from __future__ import annotations

import contextlib
import io
import random

import numpy as np
import pytest
import torch

from helpers import call_main, write_idx_folder
from softreg.data.idx import catalog


@pytest.fixture(autouse=True)
def fixed_seeds_and_isolated_env(tmp_path_factory, monkeypatch):
    """Same random numbers in every test; no real cache, no system datasets, no user settings.

    The cache lives in a folder of its own (not ``tmp_path``) so tests that list
    ``tmp_path`` see only what they wrote.
    """
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    home = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("SOFTREG_DATA", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg"))
    monkeypatch.setattr(catalog, "SYSTEM_DATA_DIRS", {})


@pytest.fixture
def make_idx(tmp_path):
    """Factory: ``make_idx(name="idx", **kwargs)`` writes an IDX folder under tmp_path."""

    def make(name: str = "idx", **kwargs) -> Path:
        return write_idx_folder(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def idx_dir(make_idx) -> Path:
    """A fresh folder of 60 train / 20 test 28x28 images of 3 classes (gzipped IDX files)."""
    return make_idx()


@pytest.fixture
def run_cli(capsys):
    """Run ``softreg ARGS`` in this process; returns (exit code, stdout, stderr)."""

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        code = call_main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def trained_idx_run(tmp_path_factory) -> tuple[Path, Path]:
    """(IDX folder, run folder) of one small softmax run, shared read-only by the whole session.

    Tests that damage a run must copy it first.
    """
    base = tmp_path_factory.mktemp("shared-run")
    folder = write_idx_folder(base / "idx")
    run_dir = base / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = call_main(["train", "--data", folder, "--epochs", "5", "--batch-size", "20",
                           "--seed", "0", "--device", "cpu", "--out", run_dir])
    assert code == 0, err.getvalue()
    return folder, run_dir
