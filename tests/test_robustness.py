"""Hostile files, extreme values, signals and lost writes: each ends in one line and status 2
(130 / 143 for Ctrl-C / SIGTERM), or succeeds correctly; no user file is ever deleted."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_no_run_left, assert_user_error, run_subprocess, write_idx_folder
from softreg.system import io, limits, locks
from softreg.data.idx.files import read_idx, write_idx
from softreg.errors import UserInputError

LONG = "a" * 256  # one byte over the limit of a file name


def _train(run_cli, *args):
    return run_cli("train", "--device", "cpu", *args)


def _table(path: Path, n: int = 30) -> Path:
    rows = ["f1,f2,label"] + [f"{i % 3 + 0.1 * i},{(i * 7) % 5},{'abc'[i % 3]}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


# ------------------------------------------------------------------ IDX files


def _idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_idx_with_100_dimensions_is_refused(run_cli, make_idx):
    folder = make_idx()
    (folder / "train-images-idx3-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_header(0x08, (1,) * 100))
    code, _, err = _train(run_cli, "--data", folder, "--out", folder / "run")
    assert_user_error(code, err, "declares 100 dimensions", "more than the 16")


def test_gzip_bomb_is_refused_after_reading_little(tmp_path):
    """4 MB of gzip inflating to 4 GiB behind an MNIST-sized header: refused once the header's
    47 MB are read, with memory bounded by those 47 MB."""
    zeros = gzip.compress(bytes(64 << 20), compresslevel=9)  # one 64 MiB member
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with open(bomb, "wb") as f:
        f.write(gzip.compress(_idx_header(0x08, (60000, 28, 28))))
        for _ in range(64):
            f.write(zeros)
    assert bomb.stat().st_size < 8 << 20
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(UserInputError, match=r"bytes more than its header \(shape 60000x28x28"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120e6, peak
    assert time.monotonic() - start < 30


def test_gzip_claiming_more_than_memory_is_refused_before_inflating(tmp_path, monkeypatch):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(_idx_header(0x08, (65536, 65536))))
    monkeypatch.setattr(limits, "available_memory", lambda: 1 << 30)
    with pytest.raises(UserInputError, match=r"shape 65536x65536, unsigned byte\) needs 4.3 GB of memory but about "
                                             r"1.1 GB is available"):
        read_idx(path)


def test_a_6_gb_file_that_is_not_idx_is_refused_from_its_first_bytes(tmp_path):
    big = tmp_path / "train-images-idx3-ubyte"
    with open(big, "wb") as f:
        f.write(b"PK\x03\x04 a zip archive, say")
        f.truncate(6 << 30)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(UserInputError, match=r"is not an IDX file \(it starts with bytes 50 4b 03 04"):
            read_idx(big)
        assert tracemalloc.get_traced_memory()[1] < 10e6
    finally:
        tracemalloc.stop()


def test_raw_idx_claiming_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(_idx_header(0x0D, (100000, 100000)) + bytes(16))
    tracemalloc.start()
    try:
        with pytest.raises(UserInputError, match=r"is truncated: the header \(shape 100000x100000, float\) says"):
            read_idx(path)
        assert tracemalloc.get_traced_memory()[1] < 10e6
    finally:
        tracemalloc.stop()


def test_images_of_0x28_pixels_are_refused(run_cli, tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", torch.zeros(60, 0, 28, dtype=torch.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", (torch.arange(60) % 3).to(torch.uint8))
    out = tmp_path / "run"
    code, _, err = _train(run_cli, "--data", folder, "--out", out)
    assert_user_error(code, err, "images of 0x28 pixels", "at least one pixel")
    assert_no_run_left(out)


# ------------------------------------------------------------------ allocation


def test_a_huge_hidden_layer_is_refused_with_the_memory_it_needs(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = _train(run_cli, "--model", "mlp", "--hidden", "100000000", "--out", out)
    assert_user_error(code, err, "layer sizes 64-100000000-10", "needs 150.0 GB of memory", "smaller --hidden")
    assert_no_run_left(out)


def test_a_classes_txt_with_a_million_names_is_refused_with_the_memory_it_needs(run_cli, make_idx, monkeypatch):
    folder = make_idx()
    (folder / "classes.txt").write_text("\n".join(f"class{i}" for i in range(1_000_000)))
    monkeypatch.setattr(limits, "available_memory", lambda: 2 << 30)
    code, _, err = _train(run_cli, "--data", folder, "--out", folder / "run")
    assert_user_error(code, err, "layer sizes 784-1000000", "needs 15.7 GB of memory but about 2.1 GB",
                      "fewer classes")


def test_a_classes_txt_beyond_the_limit_is_refused(run_cli, make_idx):
    folder = make_idx()
    (folder / "classes.txt").write_text("\n".join(f"c{i}" for i in range(1_000_001)))
    code, _, err = _train(run_cli, "--data", folder, "--out", folder / "run")
    assert_user_error(code, err, "lists 1000001 classes, more than the 1000000")


def test_check_allocation_names_the_request_and_the_fix(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 500_000_000)
    limits.check_allocation(400_000_000, "a table", "read fewer rows")
    with pytest.raises(UserInputError, match=r"^a table needs 600.0 MB of memory but about 500.0 MB is available; "
                                             r"read fewer rows\.$"):
        limits.check_allocation(600_000_000, "a table", "read fewer rows")
    with pytest.raises(UserInputError, match="no machine has that much"):
        limits.check_allocation(1 << 50, "a table", "read fewer rows")


@pytest.mark.slow
def test_a_tiny_parquet_claiming_60_million_rows_is_refused(run_cli, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    n = 60_000_000
    pq.write_table(pa.table({"x": pa.array(np.zeros(n, np.int8)), "label": pa.array(np.arange(n) % 2, pa.int8())}),
                   path)
    assert path.stat().st_size < 2 << 20
    monkeypatch.setattr(limits, "available_memory", lambda: 1 << 30)
    code, _, err = _train(run_cli, "--data", path, "--out", tmp_path / "run")
    assert_user_error(code, err, "needs", "GB of memory")


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("option, value, words", [
    ("--seed", str(2**64), ["--seed must be an integer in [0, 4294967295]", str(2**64)]),
    ("--seed", str(2**32), ["--seed must be an integer in [0, 4294967295]"]),
    ("--lr", "1e300", ["--lr must be a number in (0, 1e6]", "1e+300"]),
    ("--l2", "1e300", ["--l2 must be a number in [0, 1e6]"]),
    ("--threads", str(10**20), ["--threads must be an integer in [0, 4096]"]),
    ("--epochs", str(10**20), ["--epochs must be an integer in [1, 10000000]"]),
    ("--batch-size", str(10**20), ["--batch-size must be an integer in [0, 2**40]"]),
])
def test_extreme_values_are_one_line(run_cli, tmp_path, option, value, words):
    out = tmp_path / "run"
    code, _, err = _train(run_cli, "--data", "toy", option, value, "--out", out)
    assert_user_error(code, err, *words)
    assert_no_run_left(out)


def test_a_seed_at_the_top_of_the_range_trains(run_cli, tmp_path):
    code, _, err = _train(run_cli, "--data", "toy", "--epochs", "2", "--seed", str(2**32 - 1), "--out", tmp_path / "r")
    assert code == 0, err


@pytest.mark.parametrize("where", ["out", "out-parent", "data", "data-dir"])
def test_a_path_component_over_255_bytes_is_one_line(run_cli, tmp_path, where):
    args = {"out": ["--out", tmp_path / LONG],
            "out-parent": ["--out", tmp_path / LONG / "run"],
            "data": ["--data", tmp_path / f"{LONG}.csv", "--out", tmp_path / "run"],
            "data-dir": ["--data", "mnist", "--data-dir", tmp_path / LONG, "--out", tmp_path / "run"]}[where]
    code, _, err = _train(run_cli, *args)
    option = "--data-dir" if where == "data-dir" else args[0]
    size = 260 if where == "data" else 256
    assert_user_error(code, err, option, f"name of {size} bytes", "limited to 255 bytes")


@pytest.mark.parametrize("command", ["evaluate", "predict", "report"])
def test_a_run_folder_name_over_255_bytes_is_one_line(run_cli, tmp_path, command):
    extra = ["--index", "0"] if command == "predict" else []
    code, _, err = run_cli(command, tmp_path / LONG, *extra)
    assert_user_error(code, err, "the run folder", "name of 256 bytes")


def test_a_csv_value_of_1e39_is_named_as_out_of_range(run_cli, tmp_path):
    path = _table(tmp_path / "t.csv")
    path.write_text(path.read_text().replace("\n0.0,", "\n1e39,", 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy RuntimeWarning would be a second stderr line
        code, _, err = _train(run_cli, "--data", path, "--out", tmp_path / "run")
    line = assert_user_error(code, err, "1e+39")
    assert "missing" not in line


def test_parquet_dates_beyond_pythons_range_are_numbers(run_cli, tmp_path):
    """Dates and times are features as numbers (their Arrow value: ms since 1970 here), never Python objects."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"when": pa.array([2**62] * 6, pa.timestamp("ms")), "f": [1.0, 2, 3, 4, 5, 6],
                             "label": ["a", "b"] * 3}), path)
    code, _, err = _train(run_cli, "--data", path, "--epochs", "2", "--out", tmp_path / "run")
    assert code == 0, err
    from softreg.runs.folder import load_run

    assert load_run(tmp_path / "run").model.schema.columns[0].type.startswith("timestamp")


# ------------------------------------------------------------------ images


def _run_with_images(run_cli, tmp_path):
    out = tmp_path / "imgrun"
    folder = write_idx_folder(tmp_path / "idx")
    code, _, err = _train(run_cli, "--data", folder, "--epochs", "1", "--out", out)
    assert code == 0, err
    return out


def test_an_eps_file_named_png_never_reaches_the_eps_decoder(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    from softreg.inference.images import read_image

    reached = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "load", lambda self, *a, **k: reached.append(1))
    path = tmp_path / "digit.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n%%EOF\n")
    with pytest.raises(UserInputError):
        read_image(path, (28, 28), 255.0)
    assert not reached


def test_pillow_warnings_do_not_leak(tmp_path, monkeypatch):
    from PIL import Image

    from softreg.inference.images import read_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600 pixels: over the warning limit
    path = tmp_path / "big.png"
    Image.new("L", (40, 40)).save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_image(path, (28, 28), 255.0)
        except UserInputError:
            pass
    assert not caught, [str(w.message) for w in caught]


# ------------------------------------------------------------------ writes that must not lose data


def test_training_into_the_folder_holding_its_data_never_deletes_the_data(run_cli, tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    data = _table(keep / "mydata.csv")
    before = data.read_bytes()
    code, _, err = _train(run_cli, "--data", data, "--epochs", "2", "--out", keep)
    assert_user_error(code, err, "is a non-empty folder that is not a softreg run")
    assert data.read_bytes() == before
    # a run folder that also holds the data: trained again and again, the data stays
    run = tmp_path / "run"
    assert _train(run_cli, "--data", "toy", "--epochs", "2", "--out", run)[0] == 0
    data = _table(run / "mydata.csv")
    inode = data.stat().st_ino
    for _ in range(2):
        code, _, err = _train(run_cli, "--data", data, "--epochs", "2", "--out", run)
        assert code == 0, err
    assert data.read_bytes() == before and data.stat().st_ino == inode
    assert json.loads((run / "config.json").read_text())["data"]["source"]["spec"] == str(data.resolve())


def test_a_second_training_into_the_same_out_fails_fast(run_cli, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "softreg", "train", "--data", "digits", "--epochs", "100000",
                              "--device", "cpu", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not locks.lock_file(out).exists():
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        time.sleep(0.2)
        start = time.monotonic()
        code, _, err = _train(run_cli, "--data", "toy", "--out", out)
        assert time.monotonic() - start < 10
        assert_user_error(code, err, f"--out {out} is in use by another softreg process (pid {first.pid}",
                          "softreg train --data digits", "wait for it to finish or choose another --out")
    finally:
        first.send_signal(signal.SIGTERM)
        _, first_err = first.communicate(timeout=60)
    assert first.returncode == 143 and first_err == "softreg: terminated\n"
    assert_no_run_left(out)


def test_report_does_not_follow_a_report_symlink_out_of_the_run(run_cli, trained_idx_run, tmp_path):
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text("precious")
    (run / "report").symlink_to(outside)
    code, _, err = run_cli("report", run)
    assert_user_error(code, err, "report is a symbolic link", "choose another --out")
    assert [p.name for p in outside.iterdir()] == ["index.html"]
    assert (outside / "index.html").read_text() == "precious"


def test_evaluate_does_not_write_through_an_evaluation_json_symlink(run_cli, trained_idx_run, tmp_path):
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    target = tmp_path / "elsewhere.json"
    target.write_text("precious")
    (run / "evaluation.json").unlink(missing_ok=True)  # left by tests that evaluated the shared run
    (run / "evaluation.json").symlink_to(target)
    code, _, err = run_cli("evaluate", run)
    assert_user_error(code, err, "evaluation.json is a symbolic link")
    assert target.read_text() == "precious"


@pytest.mark.parametrize("signal_exc, status, line", [("KeyboardInterrupt", 130, "softreg: interrupted"),
                                                      ("Terminated", 143, "softreg: terminated")])
def test_a_signal_during_the_save_keeps_the_old_run_and_leaves_nothing(run_cli, tmp_path, monkeypatch,
                                                                       signal_exc, status, line):
    import safetensors.torch

    from softreg.system import signals

    out = tmp_path / "run"
    assert _train(run_cli, "--data", "toy", "--epochs", "3", "--out", out)[0] == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    exc = KeyboardInterrupt if signal_exc == "KeyboardInterrupt" else signals.Terminated
    real_save = safetensors.torch.save_file

    def killed_halfway(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        raise exc

    monkeypatch.setattr(safetensors.torch, "save_file", killed_halfway)
    code, _, err = _train(run_cli, "--data", "toy", "--epochs", "5", "--out", out)
    assert code == status and err == line + "\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_leftovers_of_a_killed_save_are_cleaned_at_the_next_start(run_cli, tmp_path):
    out = tmp_path / "run"
    assert _train(run_cli, "--data", "toy", "--epochs", "2", "--out", out)[0] == 0
    stem = io.hidden_name("run")
    stage = tmp_path / f"{stem}.softreg-stage.dead"
    stage.mkdir()
    (stage / "model.safetensors").write_bytes(b"half a model")
    (tmp_path / f"{stem}.dead{io.TMP_SUFFIX}").write_text("half a probe")
    assert _train(run_cli, "--data", "toy", "--epochs", "2", "--out", out)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ------------------------------------------------------------------ signals and pipes (the real process)


def _handlers_installed(pid: int) -> bool:
    """Whether softreg's main() has installed its SIGTERM handler (Python alone catches only SIGINT)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig, delay", [(signal.SIGINT, 0.0), (signal.SIGINT, 0.1), (signal.SIGINT, 0.4),
                                        (signal.SIGINT, 1.0), (signal.SIGINT, 2.5), (signal.SIGTERM, 0.0),
                                        (signal.SIGTERM, 0.5), (signal.SIGTERM, 2.0)])
@pytest.mark.slow
def test_a_signal_at_any_moment_is_one_line(tmp_path, sig, delay):
    """From the moment softreg's code runs (imports of torch & co. included): one line, 130 / 143."""
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-m", "softreg", "train", "--data", "digits", "--epochs", "100000",
                              "--device", "cpu", "--out", str(out)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _handlers_installed(child.pid):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.002)
    time.sleep(delay)
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    expected = (130, "softreg: interrupted\n") if sig == signal.SIGINT else (143, "softreg: terminated\n")
    assert (child.returncode, err) == expected
    assert_no_run_left(out)


def test_a_signal_during_an_import_exits_at_once_without_raising(tmp_path):
    """An exception raised inside an import may cross C++ frames (torch's pybind11 modules) and abort
    the process; the handler ends the process itself, with the one line."""
    (tmp_path / "slow_module.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n")
    out = tmp_path / "out" / "run"
    script = ("import sys\nfrom softreg.system import locks, signals\nsignals.install()\n"
              f"with locks.lock({str(out)!r}):\n"
              "    try:\n        import slow_module\n    except KeyboardInterrupt:\n"
              "        print('raised')\n        sys.exit(5)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])})
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "softreg: interrupted\n")
    assert list((tmp_path / "out").iterdir()) == []  # the lock held at that moment was removed


def test_a_closed_pipe_on_stdout_exits_0_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `softreg ... | head -1` once head has gone
    try:
        done = subprocess.run([sys.executable, "-m", "softreg", "datasets"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


def test_predict_piped_into_head_exits_0(trained_idx_run, tmp_path):
    run = trained_idx_run[1]
    done = subprocess.run(f"'{sys.executable}' -m softreg predict '{run}' --index 0 | head -c 10 >/dev/null; "
                          "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")


def test_user_error_from_the_real_entry_point_is_one_line(tmp_path):
    done = run_subprocess("train", "--data", "toy", "--lr", "1e300", "--out", tmp_path / "run")
    assert_user_error(done.returncode, done.stderr, "--lr must be a number in (0, 1e6]")


def test_the_entry_point_imports_nothing_heavy_before_main():
    """`import softreg.cli` (what the console script does before calling main) stays light, so the
    Ctrl-C handler is in place before torch, NumPy or typer start loading."""
    code = ("import sys, softreg, softreg.cli; "
            "print(sorted(m for m in ('torch', 'numpy', 'typer', 'sklearn', 'safetensors') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_report_folder_name_over_255_bytes_is_one_line(run_cli, trained_idx_run, tmp_path):
    code, _, err = run_cli("report", trained_idx_run[1], "--out", tmp_path / LONG)
    assert_user_error(code, err, "--out has a file or folder name of 256 bytes")
