"""Several processes with torch.distributed (gloo on 127.0.0.1): the same results as one process,
one run folder, a dead peer ends the job, bad input is reported once, resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import checkpoint_epoch, run_subprocess, start_until_checkpoint, write_idx_folder

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch has no gloo backend")]


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# digits' stratified test split holds 360 images: rounding (the sums' order differs with the number of
# processes, and between CPUs) may flip one near-tie prediction, never more for these settings
ONE_TEST_SAMPLE = 1 / 360 + 1e-9


def _train(tmp_path: Path, name: str, *args, nproc: int = 1) -> Path:
    out = tmp_path / name
    extra = ["--nproc", str(nproc)] if nproc > 1 else []
    done = run_subprocess("train", *args, "--device", "cpu", "--out", out, *extra)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("settings", [
    ["--optimizer", "lbfgs", "--lr", "1", "--epochs", "15"],
    # Adam through DDP, trained far enough that few test predictions sit on a tie
    ["--model", "mlp", "--hidden", "16", "--epochs", "20", "--batch-size", "64"],
], ids=["linear-lbfgs", "mlp-ddp-adam"])
def test_two_processes_reach_the_one_process_result(tmp_path, settings):
    one = _metrics(_train(tmp_path, "one", "--data", "digits", *settings))
    two = _metrics(_train(tmp_path, "two", "--data", "digits", *settings, nproc=2))
    assert two["world_size"] == 2 and "world_size" not in one
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= ONE_TEST_SAMPLE


def test_default_sgd_recipe_keeps_the_global_batch(tmp_path):
    one_dir = _train(tmp_path, "one", "--data", "digits")
    two_dir = _train(tmp_path, "two", "--data", "digits", nproc=2)
    one, two = _metrics(one_dir), _metrics(two_dir)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= ONE_TEST_SAMPLE
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)  # same batches, up to rounding
    config = json.loads((two_dir / "config.json").read_text())
    assert config["train"]["optim"]["batch_size"] is None  # the plan's batch is global: 32 rows per update
    history = (two_dir / "history.csv").read_text().splitlines()
    assert len(history) == 17


def test_two_nodes_rendezvous_on_localhost_equal_one_process(tmp_path):
    one = _metrics(_train(tmp_path, "one", "--data", "digits", "--optimizer", "lbfgs", "--lr", "1", "--epochs", "10"))
    out = tmp_path / "nodes"
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--node-rank",
         str(rank), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "softreg-test",
         "-m", "softreg", "train", "--data", "digits", "--optimizer", "lbfgs", "--lr", "1", "--epochs", "10",
         "--device", "cpu", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        for rank in (0, 1)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    two = _metrics(out)
    assert two["world_size"] == 2
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= ONE_TEST_SAMPLE
    # one run folder, written by rank 0 alone; the other node printed nothing of the run
    assert "saved run to" in "".join(o[0] for o in outputs) and "".join(o[0] for o in outputs).count("saved run") == 1


def test_a_killed_process_ends_the_job_quickly_and_leaves_no_run(tmp_path):
    data = write_idx_folder(tmp_path / "idx", n_train=30000, n_test=100)
    out = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "softreg", "train", "--data", str(data), "--model", "mlp",
                                 "--hidden", "64", "--epochs", "200", "--device", "cpu", "--nproc", "2",
                                 "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.2)
        found = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split()
        workers = [int(p) for p in found]
    assert len(workers) == 2, "the launcher did not start two processes"
    time.sleep(6)  # both are training (or still loading: either way they hold collectives)
    os.kill(workers[-1], signal.SIGKILL)
    killed_at = time.monotonic()
    stdout, stderr = launcher.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60
    assert launcher.returncode != 0
    assert "was killed (SIGKILL)" in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_bad_input_is_reported_once_with_status_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = run_subprocess("train", "--data", "digits", "--device", "cpu", "--nproc", "2", "--out", blocker / "run")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("softreg: error:"), done.stderr


def test_a_stream_with_fewer_pieces_than_processes_is_one_line_not_a_hang(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    table = tmp_path / "one.csv"
    table.write_text("a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{int(r[0] > 0)}\n" for r in x))
    started = time.monotonic()
    done = run_subprocess("train", "--data", table, "--stream", "--device", "cpu", "--nproc", "2",
                          "--out", tmp_path / "run")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "has 1; split it into at least 2 files" in lines[0], done.stderr
    assert time.monotonic() - started < 50  # well inside the collective timeout (60 s)
    assert not (tmp_path / "run").exists()


def _parquet_shards(folder: Path, n: int, parts: int, seed: int) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder.mkdir()
    for k in range(parts):
        x = rng.normal(size=(n // parts, 6))
        y = np.where(x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0, "a", "b")
        pq.write_table(pa.table({**{f"x{j}": x[:, j] for j in range(6)}, "label": y}), folder / f"part-{k}.parquet",
                       row_group_size=500)
    return folder


def test_streaming_a_folder_of_shards_on_two_processes(tmp_path):
    train_dir = _parquet_shards(tmp_path / "train", 8000, 4, 0)
    test_dir = _parquet_shards(tmp_path / "test", 2000, 2, 1)
    args = ["--data", train_dir, "--test", test_dir, "--stream", "--epochs", "3"]
    one = _metrics(_train(tmp_path, "one", *args))
    two = _metrics(_train(tmp_path, "two", *args, nproc=2))
    assert two["world_size"] == 2
    assert abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.01
    assert two["test_accuracy"] > 0.95


def test_resume_after_kill_9_of_the_whole_two_process_job(tmp_path):
    data = write_idx_folder(tmp_path / "idx", n_train=12000, n_test=200)
    args = ["train", "--data", data, "--device", "cpu", "--epochs", "8", "--batch-size", "16",
            "--checkpoint-every", "1", "--nproc", "2"]
    whole = run_subprocess(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    launcher = start_until_checkpoint(args, out, 3)
    assert launcher.poll() is None, "the job finished before it could be killed"
    # the whole job at once: the training processes (the launcher's children) and the launcher
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                              text=True).stdout.split()]
    for pid in [*workers, launcher.pid]:
        os.kill(pid, signal.SIGKILL)
    launcher.wait(timeout=30)
    for pid in workers:  # gone before resuming (they hold the run folder's lock while alive)
        while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
            time.sleep(0.05)
    assert 3 <= checkpoint_epoch(out) < 8 and not (out / "model.safetensors").exists()
    resumed = run_subprocess("train", "--resume", out, "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _metrics(out)["world_size"] == 2


@pytest.mark.parametrize("world_size, teardown", [("2", False), (None, True)])
def test_a_process_of_a_distributed_job_skips_interpreter_teardown(world_size, teardown):
    """Teardown can abort a rank (gloo's threads holding Python references), so a rank leaves
    directly once its output is flushed; a plain command ends normally."""
    script = ("import atexit, sys\natexit.register(lambda: print('teardown ran'))\n"
              "sys.argv = ['softreg', 'datasets']\nfrom softreg.cli import main\nmain()\n")
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    if world_size:
        env["WORLD_SIZE"] = world_size
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "digits" in done.stdout  # the command's own output was flushed before leaving
    assert ("teardown ran" in done.stdout) is teardown


def test_svmlight_settings_from_the_data_are_rank_0s(tmp_path):
    """The settings taken from sparse rows (step, L2 1/n, batch) are rank 0's on every process,
    and equal the one-process run's."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.datasets import dump_svmlight_file
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1500)
    X = sp.random(1500, 400, density=0.03, format="csr", random_state=1)
    X = normalize(X + sp.csr_matrix((np.ones(1500), (np.arange(1500), y * 7)), shape=(1500, 400)))
    dump_svmlight_file(X[:1200], y[:1200], str(tmp_path / "a.svm"), zero_based=False)
    dump_svmlight_file(X[1200:], y[1200:], str(tmp_path / "a.t.svm"), zero_based=False)
    args = ["--data", tmp_path / "a.svm", "--test", tmp_path / "a.t.svm", "--epochs", "5"]
    one_dir, two_dir = _train(tmp_path, "one", *args), _train(tmp_path, "two", *args, nproc=2)
    one, two = _metrics(one_dir), _metrics(two_dir)
    assert two["world_size"] == 2 and abs(two["test_accuracy"] - one["test_accuracy"]) <= 0.02
    optim = [json.loads((d / "config.json").read_text())["train"]["optim"] for d in (one_dir, two_dir)]
    assert optim[1]["l2"] == pytest.approx(1 / 1200) and optim[1]["batch_size"] == optim[0]["batch_size"]
    assert optim[1]["lr"] == optim[0]["lr"]
