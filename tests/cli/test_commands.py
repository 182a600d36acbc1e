"""The `softreg` command: every user mistake exits 2 with one line and leaves no run behind;
the success paths write complete runs that evaluate and predict reproduce."""

from __future__ import annotations

import csv
import errno
import gzip
import json
import os
import random
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from helpers import assert_no_run_left, assert_user_error, call_main, run_subprocess

import softreg.data.idx.files as idx_module
from softreg.data import load_dataset
from softreg.data.idx import catalog
from softreg.data.idx.files import write_idx
from softreg.inference.images import write_image
from softreg.runs.folder import load_run

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A softmax run on the lessons' toy table (20 epochs), shared read-only by this module."""
    out = tmp_path_factory.mktemp("toy") / "run"
    assert call_main(["train", "--data", "toy", "--epochs", "20", "--device", "cpu", "--out", out]) == 0
    return out


def _train(run_cli, out: Path, *args) -> tuple[int, str, str]:
    return run_cli("train", *args, "--device", "cpu", "--out", out)


# --------------------------------------------------------------- bad options


BAD_OPTIONS = {
    "unknown-dataset": (["--data", "no-such-data"], ["is neither a known dataset", "'no-such-data'", "give one of"]),
    "missing-data-folder": (["--data", "/no/such/folder"], ["unknown dataset", "/no/such/folder"]),
    "unknown-model": (["--data", "toy", "--model", "svm"], ["model must be one of", "'svm'"]),
    "unknown-optimizer": (["--data", "toy", "--optimizer", "rmsprop"], ["optimizer must be one of", "'rmsprop'"]),
    "unknown-activation": (["--data", "toy", "--model", "mlp", "--activation", "gelu"],
                           ["activation must be one of", "'gelu'"]),
    "unknown-init": (["--data", "toy", "--init", "ones"], ["init must be one of", "'ones'"]),
    "unknown-recipe": (["--data", "toy", "--recipe", "fast"], ["--recipe must be one of", "'fast'"]),
    "lr-zero": (["--data", "toy", "--lr", "0"], ["--lr must be a number in (0, 1e6]", "got 0.0"]),
    "lr-negative": (["--data", "toy", "--lr", "-0.5"], ["--lr must be a number in (0, 1e6]", "got -0.5"]),
    "lr-nan": (["--data", "toy", "--lr", "nan"], ["--lr must be a number in (0, 1e6]", "got nan"]),
    "lr-inf": (["--data", "toy", "--lr", "inf"], ["--lr must be a number in (0, 1e6]", "got inf"]),
    "lr-not-a-number": (["--data", "toy", "--lr", "fast"], ["invalid value for '--lr'", "number"]),
    "batch-size-negative": (["--data", "toy", "--batch-size", "-1"], ["--batch-size must be an integer in [0", "got -1"]),
    "epochs-zero": (["--data", "toy", "--epochs", "0"], ["--epochs must be an integer in [1, 10000000]", "got 0"]),
    "epochs-negative": (["--data", "toy", "--epochs", "-3"], ["--epochs must be an integer in [1, 10000000]", "got -3"]),
    "epochs-not-an-integer": (["--data", "toy", "--epochs", "1.5"], ["invalid value for '--epochs'", "integer"]),
    "hidden-letters": (["--data", "toy", "--model", "mlp", "--hidden", "10,x"], ["--hidden must be positive", "'10,x'"]),
    "hidden-empty-part": (["--data", "toy", "--model", "mlp", "--hidden", "10,,10"], ["--hidden", "'10,,10'"]),
    "hidden-zero": (["--data", "toy", "--model", "mlp", "--hidden", "0"], ["--hidden", "'0'", "example"]),
    "hidden-empty": (["--data", "toy", "--model", "mlp", "--hidden", ""], ["--hidden", "''"]),
    "hidden-semicolon": (["--data", "toy", "--model", "mlp", "--hidden", "10;10"], ["--hidden", "'10;10'"]),
    "device-missing-gpu": (["--data", "toy", "--device", "cuda:7"], ["device 'cuda:7'", "cuda"]),
    "device-unknown": (["--data", "toy", "--device", "tpu"], ["unknown device 'tpu'", "use auto, cpu"]),
    "device-unsupported": (["--data", "toy", "--device", "meta"], ["device 'meta'", "use auto, cpu"]),
    "logistic-on-three-classes": (["--data", "toy", "--model", "logistic"], ["two classes", "has 3"]),
    "unknown-option": (["--data", "toy", "--bogus"], ["no such option", "--bogus"]),
}


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=list(BAD_OPTIONS))
def test_bad_option_exits_2_with_one_line(run_cli, tmp_path, case):
    args, words = BAD_OPTIONS[case]
    out = tmp_path / "run"
    code, _, err = run_cli("train", *args, "--out", out)
    assert_user_error(code, err, *words)
    assert_no_run_left(out)


# ------------------------------------------------------------------ bad data


def _missing_train_images(folder, monkeypatch):
    (folder / TRAIN_IMAGES).unlink()


def _missing_test_labels(folder, monkeypatch):
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()


def _empty_folder(folder, monkeypatch):
    for p in folder.iterdir():
        p.unlink()


def _unreadable(folder, monkeypatch):
    target = folder / TRAIN_IMAGES
    target.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make open() fail the way it would for a user
        real_open = open

        def denying_open(path, *args, **kwargs):
            if Path(path) == target:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(idx_module, "open", denying_open, raising=False)


def _truncated_gzip(folder, monkeypatch):
    p = folder / TRAIN_IMAGES
    p.write_bytes(p.read_bytes()[:200])


def _truncated_raw(folder, monkeypatch):
    p = folder / TRAIN_IMAGES  # compression is detected from content, not from the name
    p.write_bytes(gzip.decompress(p.read_bytes())[:-100])


def _not_gzip(folder, monkeypatch):
    (folder / TRAIN_IMAGES).write_bytes(b"\x1f\x8b" + bytes(range(200)))


def _wrong_magic(folder, monkeypatch):
    (folder / TRAIN_IMAGES).write_bytes(b"PK\x03\x04" + bytes(100))


def _wrong_type_code(folder, monkeypatch):
    (folder / TRAIN_IMAGES).write_bytes(bytes([0, 0, 0x07, 3]) + bytes(100))


def _zero_bytes(folder, monkeypatch):
    (folder / TRAIN_IMAGES).write_bytes(b"")


def _count_mismatch(folder, monkeypatch):
    write_idx(folder / TRAIN_LABELS, (torch.arange(59) % 3).to(torch.uint8))


def _empty_data(folder, monkeypatch):
    write_idx(folder / TRAIN_IMAGES, torch.zeros(0, 28, 28, dtype=torch.uint8))
    write_idx(folder / TRAIN_LABELS, torch.zeros(0, dtype=torch.uint8))


def _labels_above_classes(folder, monkeypatch):
    (folder / "classes.txt").write_text("circle\nsquare\n")  # labels go up to 2


def _negative_label(folder, monkeypatch):
    write_idx(folder / TRAIN_LABELS, (torch.arange(60) % 3 - 1).to(torch.int8))


def _one_class(folder, monkeypatch):
    for prefix, n in (("train", 60), ("t10k", 20)):
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", torch.zeros(n, dtype=torch.uint8))


def _float_images(folder, monkeypatch):
    write_idx(folder / TRAIN_IMAGES, torch.rand(60, 28, 28))


def _test_shape_differs(folder, monkeypatch):
    write_idx(folder / "t10k-images-idx3-ubyte.gz", torch.zeros(20, 14, 14, dtype=torch.uint8))


BAD_IDX = {
    "missing-train-images": (_missing_train_images, ["no train images", "train-images-idx3-ubyte"]),
    "missing-test-labels": (_missing_test_labels, ["has test images", "no test labels"]),
    "empty-folder": (_empty_folder, ["no train images", "put the IDX files there"]),
    "unreadable": (_unreadable, ["permission denied", TRAIN_IMAGES, "chmod"]),
    "truncated-gzip": (_truncated_gzip, ["gzip data is truncated", TRAIN_IMAGES, "re-download"]),
    "truncated-idx": (_truncated_raw, ["is truncated", "47040 data bytes are expected"]),
    "not-gzip": (_not_gzip, ["corrupt gzip data", "re-download"]),
    "wrong-magic": (_wrong_magic, ["is not an IDX file", "50 4b 03 04"]),
    "wrong-type-code": (_wrong_type_code, ["unknown IDX data type code 0x07"]),
    "zero-bytes": (_zero_bytes, ["is empty (0 bytes)"]),
    "count-mismatch": (_count_mismatch, ["60 samples but 59 labels"]),
    "empty-data": (_empty_data, ["train split is empty", "at least one sample"]),
    "label-out-of-range": (_labels_above_classes, ["label 2", "out of range [0, 1]"]),
    "negative-label": (_negative_label, ["label -1", "out of range"]),
    "one-class": (_one_class, ["found 1 class", "at least two"]),
    "float-images": (_float_images, ["float32", "uint8"]),
    "test-shape-differs": (_test_shape_differs, ["test samples have shape (14, 14)", "(28, 28)"]),
}


@pytest.mark.parametrize("case", BAD_IDX, ids=list(BAD_IDX))
def test_bad_idx_folder_exits_2_with_one_line(run_cli, idx_dir, tmp_path, monkeypatch, case):
    damage, words = BAD_IDX[case]
    damage(idx_dir, monkeypatch)
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", idx_dir, "--epochs", "1")
    assert_user_error(code, err, *words)
    assert_no_run_left(out)


BAD_CSV = {
    "empty": ("", ["the file is empty"]),
    "blank-lines-only": ("\n\n \n", ["the file is empty"]),
    "header-only": ("a,b,label\n", ["header but no data rows"]),
    "ragged": ("a,b,label\n1,2,x\n3,4\n5,6,y\n", ["row 3 has 2 fields", "header has 3"]),
    "nan": ("a,b,label\n1,nan,x\n3,4,y\n5,6,x\n7,8,y\n", ["column 'b'", "missing values", "--impute"]),
    "inf": ("a,b,label\n1,2,x\n-inf,4,y\n5,6,x\n7,8,y\n", ["column 'a'", "data row 2", "infinite"]),
    "missing-value": ("a,b,label\n1,,x\n3,4,y\n", ["column 'b'", "missing"]),
    "not-a-number": ("a,b,label\n1,red,x\n3,4,y\n", ["'red'", "not a number"]),
    "missing-label": ("a,b,label\n1,2,\n3,4,y\n", ["data row 1 has no label"]),
    "one-class": ("a,b,label\n1,2,x\n3,4,x\n5,6,x\n", ["found 1 class", "at least two"]),
    "one-column": ("label\nx\ny\n", ["one column"]),
}


@pytest.mark.parametrize("case", BAD_CSV, ids=list(BAD_CSV))
def test_bad_csv_exits_2_with_one_line(run_cli, tmp_path, case):
    text, words = BAD_CSV[case]
    table = tmp_path / "table.csv"
    table.write_text(text)
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", table, "--epochs", "1")
    assert_user_error(code, err, "table.csv", *words)
    assert_no_run_left(out)


def test_unknown_label_column_is_refused(run_cli, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a,b,label\n1,2,x\n3,4,y\n")
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", table, "--label", "kind")
    assert_user_error(code, err, "no column named 'kind'", "a, b, label", "--label")
    assert_no_run_left(out)


def test_unsupported_data_file_type(run_cli, tmp_path):
    sheet = tmp_path / "table.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", sheet)
    assert_user_error(code, err, "unsupported file type .xlsx", ".csv / .tsv / .parquet")
    assert_no_run_left(out)


def test_failed_download_with_empty_cache(run_cli, tmp_path, monkeypatch):
    # port 9 (discard) on the loopback refuses at once: the same path as having no network
    monkeypatch.setattr(catalog.DATASETS["mnist"], "mirrors", ["http://127.0.0.1:9/"])
    cache = tmp_path / "cache"
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", "mnist", "--data-dir", cache)
    assert_user_error(code, err, "could not download mnist", "no network", "127.0.0.1:9",
                      f"put the IDX files in {cache / 'mnist'}")
    assert_no_run_left(out)
    assert not [p for p in (cache / "mnist").rglob("*") if p.is_file()]  # no partial downloads


# ------------------------------------------------------------ bad output folder


def test_out_under_a_file_is_refused(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _train(run_cli, blocker / "run", "--data", "toy", "--epochs", "1")
    assert_user_error(code, err, "cannot write the run to", "not writable", "choose another --out")
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_on_a_read_only_file_system_is_refused(run_cli, tmp_path):
    out = Path("/proc") / "softreg-test-run"
    code, _, err = _train(run_cli, out, "--data", "toy", "--epochs", "1")
    assert_user_error(code, err, "cannot write the run to /proc/softreg-test-run", "choose another --out")
    assert not out.exists()


def test_out_that_is_a_file_is_refused(run_cli, tmp_path):
    out = tmp_path / "run"
    out.write_text("precious")
    code, _, err = _train(run_cli, out, "--data", "toy", "--epochs", "1")
    assert_user_error(code, err, "is a file", "give a folder path")
    assert out.read_text() == "precious"


def test_out_that_is_a_foreign_folder_is_refused(run_cli, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "cat.jpg").write_bytes(b"meow")
    code, _, err = _train(run_cli, out, "--data", "toy", "--epochs", "1")
    assert_user_error(code, err, "non-empty folder that is not a softreg run", "choose a new folder")
    assert [p.name for p in out.iterdir()] == ["cat.jpg"]


def test_failing_save_leaves_nothing(run_cli, tmp_path, monkeypatch):
    import safetensors.torch

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", "toy", "--epochs", "2")
    assert_user_error(code, err, f"cannot write the run to {out}", "no space left on device")
    assert_no_run_left(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_failing_save_keeps_the_previous_run(run_cli, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert _train(run_cli, out, "--data", "toy", "--epochs", "3")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import safetensors.torch

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug in the writer")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(RuntimeError, match="simulated bug"):  # a bug, not a user error: exit 1
        _train(run_cli, out, "--data", "toy", "--epochs", "5")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_interrupt_exits_130_and_leaves_nothing(run_cli, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("softreg.training.trainer.assemble", interrupted)
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", "toy")
    assert code == 130
    assert err.strip() == "softreg: interrupted"
    assert_no_run_left(out)


# ------------------------------------------------------------------ training


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_toy_zero_init_without_bias_matches_the_lesson(run_cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = _train(run_cli, out, "--data", "toy", "--init", "zeros", "--no-bias")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "history.csv", "metrics.json", "model.safetensors"]
    metrics = _metrics(out)
    assert round(metrics["train_loss"], 6) == 0.399962
    assert metrics["train_seconds"] > 0
    assert "test_loss" not in metrics and "test_accuracy" not in metrics  # the table has no test split
    rows = _history(out)
    assert len(rows) == 1000
    assert [r["epoch"] for r in rows[:3]] == ["1", "2", "3"]
    assert round(float(rows[0]["avg_cost"]), 6) == 1.098612  # the cost before the first update
    assert round(float(rows[100]["avg_cost"]), 6) == 0.761050
    assert "Cost: 1.098612" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["bias"] is False and config["train"]["model"]["init"] == "zeros"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_toy_seed_1_matches_the_lesson(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", "toy", "--seed", "1")
    assert code == 0, err
    metrics = _metrics(out)
    assert round(metrics["train_loss"], 4) == 0.2541
    assert metrics["train_accuracy"] == 1.0
    assert round(float(_history(out)[0]["avg_cost"]), 4) == 1.6168


def test_train_on_idx_folder_then_evaluate_reproduces_metrics(run_cli, trained_idx_run):
    folder, run = trained_idx_run
    metrics = _metrics(run)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "train_seconds"):
        assert key in metrics
    assert metrics["test_accuracy"] >= 0.9  # three bands of pixels: easy
    assert len(_history(run)) == 5
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["source"]["spec"] == str(folder.resolve())
    assert config["data"]["image_shape"] == [28, 28] and config["preprocess"] == "standardize"

    code, stdout, err = run_cli("evaluate", run)
    assert code == 0, err
    found = re.findall(r"^(train|test)\s+loss (\S+)\s+accuracy (\S+)$", stdout, re.M)
    printed = {split: (float(loss), float(accuracy)) for split, loss, accuracy in found}
    for split in ("train", "test"):
        loss, accuracy = printed[split]
        assert loss == pytest.approx(metrics[f"{split}_loss"], abs=1e-6)
        assert accuracy == pytest.approx(metrics[f"{split}_accuracy"], abs=1e-4)


def test_evaluate_on_data_of_another_shape_is_refused(run_cli, toy_run, idx_dir):
    code, _, err = run_cli("evaluate", toy_run, "--data", idx_dir)
    assert_user_error(code, err, "784 features per sample", "model expects 4")


def _blob_csv(path: Path, classes: tuple[str, ...], n: int = 10) -> Path:
    """Well separated 2-D blobs, one per class, centred at (3k, -3k) for class ``classes[k]``."""
    g = torch.Generator().manual_seed(0)
    centres = {"ant": 0, "bee": 1, "cow": 2, "dog": 3}
    lines = ["x1,x2,animal"]
    for name in classes:
        k = centres[name]
        for x1, x2 in (torch.randn(n, 2, generator=g) * 0.5).tolist():
            lines.append(f"{x1 + 3 * k:.4f},{x2 - 3 * k:.4f},{name}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_evaluate_on_a_subset_of_the_classes_keeps_class_names(run_cli, tmp_path):
    full = _blob_csv(tmp_path / "full.csv", ("ant", "bee", "cow"))
    out = tmp_path / "run"
    code, _, err = _train(run_cli, out, "--data", full, "--epochs", "30", "--batch-size", "8")
    assert code == 0, err
    assert _metrics(out)["test_accuracy"] == 1.0
    # only bee and cow: the table's own numbering (bee=0, cow=1) is not the model's (bee=1, cow=2)
    subset = _blob_csv(tmp_path / "subset.csv", ("bee", "cow"))
    code, stdout, err = run_cli("evaluate", out, "--data", subset)
    assert code == 0, err
    accuracies = [float(a) for a in re.findall(r"accuracy (\S+)", stdout)]
    assert len(accuracies) == 1 and accuracies[0] == 1.0  # a table given to evaluate is scored whole
    assert "test split: 20 samples" in stdout
    unknown = _blob_csv(tmp_path / "other.csv", ("bee", "dog"))
    code, _, err = run_cli("evaluate", out, "--data", unknown)
    assert_user_error(code, err, "label(s) 'dog' are not among the model's 3 classes")


def test_retraining_replaces_the_run_atomically(run_cli, tmp_path):
    out = tmp_path / "run"
    assert _train(run_cli, out, "--data", "toy", "--epochs", "3")[0] == 0
    (out / "notes.txt").write_text("the user's, not softreg's")
    (out / "evaluation.json").write_text("{}")  # softreg's, describing the old model
    code, _, err = _train(run_cli, out, "--data", "toy", "--epochs", "7")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "the user's, not softreg's"
    assert not (out / "evaluation.json").exists()
    assert len(_history(out)) == 7 and _metrics(out)["epochs"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no .run.* temporaries


# ------------------------------------------------------------------ predict


def _predicted(stdout: str) -> str:
    return re.search(r"predicted (.+?) \(probability", stdout).group(1)


def test_predict_index_matches_the_model(run_cli, trained_idx_run):
    folder, run = trained_idx_run
    test = load_dataset(str(folder)).test
    model = load_run(run).model
    for i in (0, 7, 19):
        code, stdout, err = run_cli("predict", run, "--index", i)
        assert code == 0, err
        assert stdout.startswith(f"test sample {i}: predicted ")
        assert _predicted(stdout) == str(int(model.predict(test.X[i : i + 1])[0]))
        assert f"true {int(test.y[i])}" in stdout


def test_predict_random_is_reproducible_with_seed(run_cli, trained_idx_run):
    _, run = trained_idx_run
    first = run_cli("predict", run, "--random", "--seed", "3")
    second = run_cli("predict", run, "--random", "--seed", "3")
    assert first[0] == 0 and first == second
    assert first[1].startswith(f"test sample {random.Random(3).randrange(20)}:")


def test_predict_features_on_a_table_model(run_cli, toy_run):
    model = load_run(toy_run).model
    for row in ([1, 2, 1, 1], [1, 7, 7, 7]):
        code, stdout, err = run_cli("predict", toy_run, "--features", ",".join(map(str, row)))
        assert code == 0, err
        expected = int(model.predict(torch.tensor([row], dtype=torch.float32))[0])
        assert stdout.startswith(f"features: predicted {expected} ")
        assert "true" not in stdout.splitlines()[0]


def test_predict_png_matches_predicting_the_tensor(run_cli, trained_idx_run, tmp_path):
    folder, run = trained_idx_run
    test = load_dataset(str(folder)).test
    model = load_run(run).model
    for i in (1, 2, 3):  # one of each class
        png = write_image(tmp_path / f"sample{i}.png", test.X[i], 255.0)
        code, stdout, err = run_cli("predict", run, png)
        assert code == 0, err
        probs = model.predict_proba(test.X[i : i + 1])[0]
        best = int(probs.argmax())
        assert stdout.startswith(f"{png}: predicted {best} (probability {probs[best]:.4f})")


def test_predict_show_writes_a_png(run_cli, trained_idx_run, tmp_path):
    from PIL import Image

    _, run = trained_idx_run
    picture = tmp_path / "prediction.png"
    code, stdout, err = run_cli("predict", run, "--index", "4", "--show", picture)
    assert code == 0, err
    assert f"wrote {picture}" in stdout
    with Image.open(picture) as img:
        assert img.format == "PNG"
        width, height = img.size
    assert 300 <= width <= 3000 and 150 <= height <= 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prediction.png"]


def test_predict_show_for_a_table_model(run_cli, toy_run, tmp_path):
    picture = tmp_path / "bars.png"
    code, _, err = run_cli("predict", toy_run, "--features", "1,2,5,6", "--show", picture)
    assert code == 0, err
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PREDICT_MISTAKES = {
    "no-input": ([], ["give exactly one input"]),
    "two-inputs": (["--index", "1", "--random"], ["give exactly one input"]),
    "index-out-of-range": (["--index", "20"], ["--index must be in [0, 19]", "got 20"]),
    "index-negative": (["--index", "-1"], ["--index must be in [0, 19]", "got -1"]),
    "features-wrong-count": (["--features", "1,2"], ["has 2 values", "expects 784"]),
    "features-not-numbers": (["--features", "a,b"], ["--features must be numbers", "'a,b'"]),
    "missing-image": (["missing.png"], ["missing.png", "no such image file"]),
    "show-bad-type": (["--index", "0", "--show", "out.txt"], ["unsupported picture type .txt"]),
    "show-missing-folder": (["--index", "0", "--show", "/no/such/dir/p.png"], ["folder /no/such/dir does not exist"]),
    "bad-invert": (["IMAGE", "--invert", "maybe"], ["--invert must be one of auto, yes, no", "'maybe'"]),
}


@pytest.mark.parametrize("case", PREDICT_MISTAKES, ids=list(PREDICT_MISTAKES))
def test_predict_mistakes_exit_2(run_cli, trained_idx_run, tmp_path, case):
    _, run = trained_idx_run
    args, words = PREDICT_MISTAKES[case]
    if "IMAGE" in args:
        args = [str(write_image(tmp_path / "x.png", torch.zeros(28, 28), 255.0)) if a == "IMAGE" else a
                for a in args]
    code, _, err = run_cli("predict", run, *args)
    assert_user_error(code, err, *words)


def test_predict_not_an_image(run_cli, trained_idx_run, tmp_path):
    _, run = trained_idx_run
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    code, _, err = run_cli("predict", run, fake)
    assert_user_error(code, err, "fake.png", "not a readable image", "give a PNG or JPEG")


def test_predict_truncated_png(run_cli, trained_idx_run, tmp_path):
    _, run = trained_idx_run
    png = write_image(tmp_path / "cut.png", torch.rand(28, 28) * 255, 255.0)
    png.write_bytes(png.read_bytes()[:60])
    code, _, err = run_cli("predict", run, png)
    assert_user_error(code, err, "cut.png", "not a readable image")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_predict_show_unwritable(run_cli, trained_idx_run):
    _, run = trained_idx_run
    code, _, err = run_cli("predict", run, "--index", "0", "--show", "/proc/softreg-show.png")
    assert_user_error(code, err, "/proc/softreg-show.png", "cannot write", "pick another path")


def test_predict_image_on_a_table_model_is_refused(run_cli, toy_run, tmp_path):
    png = write_image(tmp_path / "x.png", torch.zeros(8, 8), 16.0)
    code, _, err = run_cli("predict", toy_run, png)
    assert_user_error(code, err, "trained on a table", "use --features")


@pytest.mark.parametrize("values", ["nan,1,2,3", "1,inf,2,3"])
def test_predict_non_finite_features_are_refused(run_cli, toy_run, values):
    code, _, err = run_cli("predict", toy_run, "--features", values)
    assert_user_error(code, err, "--features must be finite numbers")


# --------------------------------------------------------- damaged run folders


def _drop_model(run):
    (run / "model.safetensors").unlink()


def _garbage_config(run):
    (run / "config.json").write_text("{this is not json")


def _config_not_an_object(run):
    (run / "config.json").write_text("[1, 2, 3]")


def _truncate_weights(run):
    data = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(data[: len(data) // 2])


def _empty_weights(run):
    (run / "model.safetensors").write_bytes(b"")


def _edit_config(change):
    def edit(run):
        doc = json.loads((run / "config.json").read_text())
        change(doc)
        (run / "config.json").write_text(json.dumps(doc))

    return edit


DAMAGED_RUNS = {
    "missing-weights": (_drop_model, ["model.safetensors is missing", "train again"]),
    "garbage-config": (_garbage_config, ["config.json is damaged", "train the run again"]),
    "config-not-an-object": (_config_not_an_object, ["config.json is damaged"]),
    "truncated-weights": (_truncate_weights, ["model.safetensors is damaged", "train the run again"]),
    "empty-weights": (_empty_weights, ["model.safetensors is damaged"]),
    "bad-feature-count": (_edit_config(lambda d: d["model"].update(n_features="many")), ["config.json is damaged"]),
    "features-do-not-match-image": (_edit_config(lambda d: d["model"].update(n_features=5)),
                                    ["config.json is damaged", "data.image_shape", "model.n_features = 5"]),
    "weights-do-not-match": (_edit_config(lambda d: (d["model"].update(n_features=5),
                                                     d["data"].update(image_shape=[5]))),
                             ["weights do not match config.json", "size mismatch", "model.n_features = 5"]),
    "no-classes": (_edit_config(lambda d: d["data"].pop("classes")), ["config.json is damaged", "classes"]),
    "unknown-preprocess": (_edit_config(lambda d: d.update(preprocess="weird")),
                           ["config.json is damaged", "preprocess must be one of", "weird"]),
    "unknown-setting": (_edit_config(lambda d: d["train"].update(speed=3)), ["unknown training setting", "speed"]),
}


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("case", DAMAGED_RUNS, ids=list(DAMAGED_RUNS))
def test_damaged_run_exits_2(run_cli, trained_idx_run, tmp_path, case, command):
    damage, words = DAMAGED_RUNS[case]
    run = Path(shutil.copytree(trained_idx_run[1], tmp_path / "run"))
    damage(run)
    extra = ["--index", "0"] if command == "predict" else []
    code, _, err = run_cli(command, run, *extra)
    assert_user_error(code, err, str(run), *words)


def test_missing_run_folder(run_cli, tmp_path):
    code, _, err = run_cli("evaluate", tmp_path / "nothing")
    assert_user_error(code, err, "no such run folder", "softreg train --out")


# ------------------------------------------------------------ other commands


def test_datasets_lists_every_name(run_cli):
    code, stdout, err = run_cli("datasets")
    assert code == 0, err
    names = [line.split()[0] for line in stdout.splitlines()]
    for name in ("digits", "toy", "toy-binary", "xor", "mnist", "fashion-mnist", "kmnist"):
        assert name in names
    assert "download from" in stdout  # the isolated cache is empty


def test_datasets_shows_a_cached_dataset(run_cli, make_idx):
    cache = Path(os.environ["SOFTREG_DATA"])
    cache.mkdir(parents=True, exist_ok=True)
    make_idx().rename(cache / "kmnist")
    code, stdout, _ = run_cli("datasets")
    assert code == 0
    line = next(line for line in stdout.splitlines() if line.startswith("kmnist"))
    assert f"found in {cache / 'kmnist'}" in line


def test_no_arguments_prints_help(run_cli):
    code, stdout, _ = run_cli()
    assert code == 0
    assert "train" in stdout and "predict" in stdout


def test_command_help_exits_0(run_cli):
    code, stdout, _ = run_cli("train", "--help")
    assert code == 0
    assert "--batch-size" in stdout and "--out" in stdout


# ------------------------------------------------- the real entry points


def test_python_m_softreg_help():
    done = run_subprocess("--help")
    assert done.returncode == 0, done.stderr
    for command in ("train", "evaluate", "predict", "datasets"):
        assert command in done.stdout


def test_python_m_softreg_user_error_is_one_line(tmp_path):
    out = tmp_path / "run"
    done = run_subprocess("train", "--data", "toy", "--lr", "0", "--out", out)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "softreg: error: --lr must be a number in (0, 1e6]; got 0.0. Example: --lr 0.1."]
    assert done.stdout == ""
    assert_no_run_left(out)


def test_console_script_trains(tmp_path):
    script = Path(sys.executable).parent / "softreg"
    if not script.is_file():
        pytest.skip("the softreg console script is not installed next to this Python")
    import subprocess

    out = tmp_path / "run"
    done = subprocess.run([str(script), "train", "--data", "toy", "--epochs", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"saved run to {out}" in done.stdout
    assert (out / "model.safetensors").is_file()


def test_report_and_evaluate_help_name_their_options(run_cli):
    code, stdout, _ = run_cli("report", "--help")
    assert code == 0 and "--out" in stdout and "HTML" in stdout
    code, stdout, _ = run_cli("evaluate", "--help")
    assert code == 0 and "--top-k" in stdout and "--no-save" in stdout


def test_predict_show_titles_prediction_and_truth(run_cli, trained_idx_run, tmp_path, monkeypatch):
    """--show draws with the report's code: predicted and true class, red when they differ."""
    from softreg.report import plots

    drawn = []
    original = plots.prediction_figure

    def spy(*args, **kwargs):
        drawn.append(original(*args, **kwargs))
        return drawn[-1]

    folder, run = trained_idx_run
    test = load_dataset(str(folder)).test
    predicted = int(load_run(run).model.predict(test.X[:1])[0])
    monkeypatch.setattr(plots, "prediction_figure", spy)
    code, _, err = run_cli("predict", run, "--index", "0", "--show", tmp_path / "p.png")
    assert code == 0, err
    title = drawn[0].axes[0].title
    assert title.get_text() == f"predicted: {predicted}\ntrue: {int(test.y[0])}"
    assert (title.get_color() == plots.WRONG) == (predicted != int(test.y[0]))
