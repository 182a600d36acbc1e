"""`kill -9` during `softreg train --checkpoint-every 1`, then `softreg train --resume DIR`: the final
weights equal those of a run that was never interrupted, tensor for tensor."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import checkpoint_epoch, run_subprocess, start_until_checkpoint, write_idx_folder

pytestmark = pytest.mark.slow  # process-level runs: `make test-fast` leaves them out

RUNS = {
    "mlp": ["--model", "mlp", "--hidden", "64", "--epochs", "6", "--batch-size", "32"],
    "default-linear-averaged": ["--epochs", "6", "--batch-size", "16"],
    "stream": ["--stream", "--epochs", "6", "--batch-size", "16"],
}


def _parquet(folder: Path, n: int) -> Path:
    """The easy images as a table of uint8 pixel columns, in row groups (streamed pieces)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from helpers import easy_images

    X, y = easy_images(n)
    flat = X.reshape(n, -1).numpy()
    table = pa.table([pa.array(y.numpy())] + [pa.array(flat[:, j]) for j in range(flat.shape[1])],
                     names=["label"] + [f"p{j}" for j in range(flat.shape[1])])
    folder.mkdir()
    pq.write_table(table, folder / "t.parquet", row_group_size=1000)
    return folder / "t.parquet"


@pytest.mark.parametrize("name", RUNS)
def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, name):
    if name == "stream":
        data = _parquet(tmp_path / "table", 12000)
    else:
        data = write_idx_folder(tmp_path / "idx", n_train=12000, n_test=200)
    args = ["train", "--data", data, "--device", "cpu", "--checkpoint-every", "1", *RUNS[name]]
    whole = run_subprocess(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    assert not (tmp_path / "whole" / "checkpoint").exists()  # a finished run keeps no checkpoint

    out = tmp_path / "killed"
    proc = start_until_checkpoint(args, out, 4)
    assert proc.poll() is None, "the run finished before it could be killed at 70%"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (out / "model.safetensors").exists()  # no final run was written
    killed_at = checkpoint_epoch(out)
    assert 4 <= killed_at < 6

    resumed = run_subprocess("train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out} at epoch {killed_at + 1}" in resumed.stdout
    assert not (out / "checkpoint").exists()
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    def costs(run: Path) -> list[list[str]]:  # epoch, avg_cost, accuracy (seconds differ, of course)
        return [line.split(",")[:3] for line in (run / "history.csv").read_text().splitlines()]

    assert costs(out) == costs(tmp_path / "whole")
    assert len(costs(out)) == 7


def test_resume_refuses_other_options_and_missing_checkpoints(run_cli, tmp_path):
    from helpers import assert_user_error

    code, _, err = run_cli("train", "--resume", tmp_path, "--epochs", "3")
    assert_user_error(code, err, "--resume continues a run with its own settings", "--epochs")
    code, _, err = run_cli("train", "--resume", tmp_path)
    assert_user_error(code, err, "no checkpoint to resume from", "--checkpoint-every")
