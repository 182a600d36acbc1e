"""Plain helpers shared by the tests: small IDX data, running the command line, asserting its errors."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import torch

from softreg.data.idx.files import write_idx

N_CLASSES = 3
IMAGE = (28, 28)


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


def call_main(args: list[str]) -> int:
    from softreg.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


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
