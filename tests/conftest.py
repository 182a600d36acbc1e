"""Shared fixtures: fixed seeds, an isolated environment, small IDX folders and a CLI runner."""

from __future__ import annotations

import contextlib
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from softreg.data import catalog
from softreg.data.idx import write_idx

N_CLASSES = 3
IMAGE = (28, 28)


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


def easy_images(n: int, n_classes: int = N_CLASSES, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 28, 28) uint8 images where class c is a bright horizontal band at rows 4+7c..9+7c.

    A little noise keeps the images distinct; any linear model separates the classes.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_classes
    x = torch.randint(0, 40, (n, *IMAGE), generator=g, dtype=torch.uint8)
    for c in range(n_classes):
        x[y == c, 4 + 7 * c : 10 + 7 * c, 4:24] = 255
    return x, y


def write_idx_folder(folder: Path, n_train: int = 60, n_test: int | None = 20,
                     n_classes: int = N_CLASSES, gz: bool = True) -> Path:
    """Write train (and test, unless ``n_test`` is None) IDX files of ``easy_images`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    splits = [("train", n_train, 1)] + ([("t10k", n_test, 2)] if n_test is not None else [])
    for prefix, n, seed in splits:
        x, y = easy_images(n, n_classes, seed)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", y.to(torch.uint8))
    return folder


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


def call_main(args: list[str]) -> int:
    from softreg.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


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


def run_subprocess(*args, cwd: Path | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m softreg ARGS`` in a child process (the real entry point)."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "softreg", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_user_error(code: int, err: str, *words: str) -> str:
    """Exit status 2 and exactly one stderr line, 'softreg: error: ...', naming ``words``."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    line = lines[0]
    assert line.startswith("softreg: error: "), line
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    return line


def assert_no_run_left(out: Path) -> None:
    """Neither the run folder nor a temporary sibling (.NAME.*) exists."""
    assert not out.exists(), f"{out} was left behind"
    parent = out.parent
    if parent.is_dir():
        stray = [p.name for p in parent.iterdir() if p.name.startswith(f".{out.name}.")
                 or p.name.startswith(".softreg-probe.")]
        assert not stray, stray


def start_until_checkpoint(args: list, out: Path, epoch: int, timeout: float = 300) -> subprocess.Popen:
    """Start ``softreg ARGS --out OUT`` and return once its checkpoint has completed ``epoch`` epochs
    (or the process ended, or ``timeout`` passed: the caller checks which)."""
    import time

    proc = subprocess.Popen([sys.executable, "-m", "softreg", *map(str, args), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while checkpoint_epoch(out) < epoch and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    return proc


def checkpoint_epoch(run: Path) -> int:
    """The epochs a run folder's checkpoint has completed (-1 while there is none to read)."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(run / "checkpoint" / "state.safetensors"), framework="pt") as f:
            return json.loads(f.metadata()["softreg_checkpoint"])["state"]["epoch"]
    except (OSError, KeyError, ValueError, RuntimeError):
        return -1
