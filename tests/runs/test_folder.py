"""Run folders (softreg.runs.folder): save / load round trips, atomic replacement, writability checks."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from softreg.runs import folder as runs
from softreg.data import load_dataset
from softreg.errors import UserInputError
from softreg.runs.folder import FILES, check_writable, load_run, save_result
from softreg.training import make_config
from softreg.training import train


def _train_and_save(out: Path, data: str = "toy", **settings) -> tuple:
    dataset = load_dataset(data)
    config = make_config(None, data_name=data, **settings)
    result = train(dataset, config)
    save_result(out, result, dataset, data)
    return dataset, result


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("data, settings", [
    ("toy", dict(epochs=30)),
    ("toy-binary", dict(model="logistic", epochs=30)),
    ("xor", dict(model="mlp", hidden=[4, 3], activation="tanh", epochs=30)),
    ("toy", dict(model="mlp", hidden=[5], epochs=5, preprocess="standardize", bias=False)),
], ids=["softmax", "logistic", "mlp-binary", "mlp-standardized-no-bias"])
def test_round_trip_gives_identical_predictions(tmp_path, data, settings):
    out = tmp_path / "run"
    dataset, result = _train_and_save(out, data, **settings)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    run = load_run(out)
    X = dataset.train.X
    assert torch.equal(run.model.predict_proba(X), result.model.cpu().predict_proba(X))
    assert torch.equal(run.model.predict(X), result.model.predict(X))
    assert run.config == result.config
    assert run.metrics == json.loads(json.dumps(result.metrics))
    assert run.data["classes"] == dataset.classes
    assert not run.model.training


def test_round_trip_on_images_keeps_the_preprocessing(tmp_path, idx_dir):
    out = tmp_path / "run"
    dataset, result = _train_and_save(out, str(idx_dir), epochs=2, batch_size=20, preprocess="pixels")
    run = load_run(out)
    assert run.model.preprocess.kind == "pixels"
    # raw 0..255 pixels go in; the stored transform scales them exactly as in training
    X = dataset.test.X
    assert torch.equal(run.model.predict_proba(X), result.model.cpu().predict_proba(X))
    assert torch.allclose(run.model.preprocess(X[:1]), X[:1].reshape(1, -1).float() / 255)


def test_saving_again_replaces_the_run_and_keeps_the_users_files(tmp_path):
    out = tmp_path / "run"
    _train_and_save(out, epochs=3)
    (out / "notes.txt").write_text("left by the user")
    _train_and_save(out, epochs=6)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES + ("notes.txt",))
    assert (out / "notes.txt").read_text() == "left by the user"
    assert load_run(out).metrics["epochs"] == 6
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "journal"])
def test_failed_swap_keeps_the_old_run(tmp_path, monkeypatch, exchange):
    from softreg.system import folders

    out = tmp_path / "run"
    _train_and_save(out, epochs=3)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(folders, "use_exchange", exchange)

    def failing_exchange(a, b):
        raise OSError(errno.EIO, "Input/output error")

    real_rename = os.rename

    def failing_rename(src, dst):
        if ".softreg-stage." in str(src):  # the new run moving into place
            raise OSError(errno.EIO, "Input/output error")
        return real_rename(src, dst)

    if exchange:
        monkeypatch.setattr(folders, "exchange", failing_exchange)
        with pytest.raises(UserInputError, match=r"cannot write the run to .*Input/output error"):
            _train_and_save(out, epochs=6)
    else:  # the journal path: the old run is moved aside first, then the new one fails to move in
        monkeypatch.setattr(folders.os, "rename", failing_rename)
        with pytest.raises(UserInputError, match=r"cannot write the run to .*Input/output error"):
            _train_and_save(out, epochs=6)
        monkeypatch.undo()
        assert not out.exists()
        assert load_run(out).metrics["epochs"] == 3  # a reader finishes the interrupted save first
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert _leftovers(tmp_path) == []


def test_save_into_a_new_nested_folder(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    _train_and_save(out, epochs=2)
    assert (out / "model.safetensors").is_file()
    assert _leftovers(out.parent) == []


def test_history_and_metrics_files(tmp_path):
    out = tmp_path / "run"
    _, result = _train_and_save(out, epochs=4)
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["epoch", "avg_cost"]
    assert len(lines) == 5
    assert float(lines[-1].split(",")[1]) == result.history.avg_cost[-1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"train_loss", "train_accuracy", "train_seconds"} <= set(metrics)


# ------------------------------------------------------------- check_writable


def test_check_writable_accepts_new_empty_and_run_folders(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "empty").mkdir()
    assert check_writable(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "config.json").write_text('{"softreg_version": "0.1.0"}')
    assert check_writable(str(tmp_path / "old-run")) == tmp_path / "old-run"
    assert _leftovers(tmp_path) == []


def test_check_writable_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserInputError, match=r"is a file; give a folder path"):
        check_writable(tmp_path / "f")


def test_check_writable_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(UserInputError, match=r"non-empty folder that is not a softreg run; choose a new folder"):
        check_writable(tmp_path / "docs")


def test_check_writable_refuses_a_path_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserInputError, match=r"cannot write the run to .*not writable"):
        check_writable(tmp_path / "f" / "run")


def test_check_writable_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    def denied(*args, **kwargs):  # what mkdir does in a read-only folder (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(runs.io.os, "mkdir", denied)
    with pytest.raises(UserInputError, match=r"is not writable \(Permission denied\); choose another --out"):
        check_writable(tmp_path / "run")


def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UserInputError, match="config.json is missing"):
        load_run(tmp_path)
