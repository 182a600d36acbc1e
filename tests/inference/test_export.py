"""softreg export: the ONNX graph run by onnxruntime alone matches softreg within 1e-5."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_user_error, call_main

pytest.importorskip("onnx", reason="export needs the onnx extra: pip install 'softreg[onnx]'")
pytest.importorskip("onnxruntime", reason="the export tests run the file with onnxruntime")

from softreg.inference.export import export_onnx, run_onnx, to_onnx  # noqa: E402
from softreg.inference.predictor import Predictor  # noqa: E402

RUNS = {  # name: training arguments
    "softmax-idx": ["--data", "IDX", "--epochs", "3"],
    "softmax-pixels": ["--data", "IDX", "--epochs", "3", "--preprocess", "pixels", "--no-bias"],
    "softmax-digits": ["--data", "digits"],
    "logistic": ["--data", "toy-binary", "--model", "logistic", "--lr", "1"],
    "mlp-relu": ["--data", "digits", "--model", "mlp", "--epochs", "3"],
    "mlp-binary-sigmoid": ["--data", "xor", "--model", "mlp", "--hidden", "8,8", "--activation", "sigmoid",
                           "--epochs", "200", "--lr", "1", "--optimizer", "sgd"],
    "mlp-tanh": ["--data", "IDX", "--model", "mlp", "--hidden", "16", "--activation", "tanh", "--epochs", "2"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request) -> dict[str, Path]:
    from helpers import write_idx_folder

    base = tmp_path_factory.mktemp("export")
    folder = write_idx_folder(base / "idx", n_train=90, n_test=40)
    out = {}
    for name, args in RUNS.items():
        run = base / name
        args = [str(folder) if a == "IDX" else a for a in args]
        assert call_main(["train", *args, "--device", "cpu", "--out", run]) == 0, name
        out[name] = run
    return out


def _inputs(predictor: Predictor) -> torch.Tensor:
    """The run's test (or train) split plus random rows in the data's range: (N, F) float32."""
    split, _ = predictor.test_split()
    X = split.X.reshape(len(split), -1).float()
    g = torch.Generator().manual_seed(0)
    top = predictor.pixel_max or float(X.abs().max()) or 1.0
    return torch.cat([X, torch.rand(50, X.shape[1], generator=g) * top])


@pytest.mark.parametrize("name", list(RUNS))
def test_onnxruntime_matches_softreg(trained, tmp_path, name):
    predictor = Predictor.from_run(trained[name])
    path = export_onnx(predictor, tmp_path / "model.onnx")
    X = _inputs(predictor)
    got = run_onnx(path, X.numpy())
    expected = predictor.predict_proba(X)
    assert got["probabilities"].shape == tuple(expected.shape) and got["probabilities"].dtype == np.float32
    assert np.abs(got["probabilities"] - expected.numpy()).max() < 1e-5
    labels = predictor.model.predict(X).numpy()  # softreg's own rule (binary: logit >= 0)
    assert np.array_equal(got["label_index"], labels)
    assert list(got["label"]) == [predictor.classes[i] for i in labels]


def test_the_file_carries_its_metadata(trained):
    import json

    predictor = Predictor.from_run(trained["softmax-digits"])
    props = {p.key: json.loads(p.value) for p in to_onnx(predictor).metadata_props}
    assert props["classes"] == predictor.classes and props["n_features"] == 64
    assert props["image_shape"] == [8, 8] and props["pixel_max"] == 16.0 and props["model"] == "softmax"


def test_batch_dimension_is_free(trained, tmp_path):
    path = export_onnx(Predictor.from_run(trained["logistic"]), tmp_path / "m.onnx")
    for n in (1, 7, 300):
        assert run_onnx(path, np.zeros((n, 3), np.float32))["probabilities"].shape == (n, 2)


def test_export_command_writes_and_checks(run_cli, trained, tmp_path):
    out = tmp_path / "digits.onnx"
    code, stdout, err = run_cli("export", trained["softmax-digits"], "--format", "onnx", "--out", out)
    assert code == 0, err
    assert f"wrote {out}: features float32 (batch, 64) -> probabilities (batch, 10)" in stdout
    diff = float(stdout.split("largest probability difference ")[1].split()[0])
    assert "checked with onnxruntime on 360 test samples" in stdout and diff < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.onnx"]  # no temporary left


EXPORT_MISTAKES = {
    "format": (["--format", "tflite", "--out", "m.onnx"], ["--format must be onnx", "'tflite'"]),
    "suffix": (["--out", "m.bin"], ["ending in .onnx"]),
    "folder": (["--out", "/no/such/dir/m.onnx"], ["folder /no/such/dir does not exist"]),
    "no-out": ([], ["missing option '--out'"]),
}


@pytest.mark.parametrize("case", EXPORT_MISTAKES, ids=list(EXPORT_MISTAKES))
def test_export_mistakes_exit_2(run_cli, trained, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    args, words = EXPORT_MISTAKES[case]
    code, _, err = run_cli("export", trained["logistic"], *args)
    assert_user_error(code, err, *words)
    assert list(tmp_path.iterdir()) == []


def test_export_without_the_extra_names_the_fix(run_cli, trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = run_cli("export", trained["logistic"], "--out", tmp_path / "m.onnx")
    assert_user_error(code, err, "onnx, which is not installed", "pip install 'softreg[onnx]'")


@pytest.mark.parametrize("model", [[], ["--model", "mlp", "--hidden", "8", "--epochs", "2"]], ids=["softmax", "mlp"])
def test_svmlight_runs_export_with_their_scaling(run_cli, tmp_path, model):
    """A sparse run's graph takes the features dense, scaled as in training ('scale': no centring)."""
    import onnxruntime as ort
    import scipy.sparse as sp
    from sklearn.datasets import dump_svmlight_file, load_digits

    X, y = load_digits(return_X_y=True)
    dump_svmlight_file(sp.csr_matrix(X[:600]), y[:600], str(tmp_path / "d.svm"), zero_based=False)
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--data", tmp_path / "d.svm", "--out", run, "--preprocess", "scale", *model)
    assert code == 0, err
    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli("export", run, "--format", "onnx", "--out", out)
    assert code == 0, err
    assert "checked with onnxruntime" in stdout
    predictor = Predictor.from_run(run)
    assert predictor.model.preprocess.kind == "scale"
    dense = torch.tensor(X[600:700, :predictor.n_features], dtype=torch.float32)
    got = ort.InferenceSession(str(out)).run(["probabilities"], {"features": dense.numpy()})[0]
    np.testing.assert_allclose(got, predictor.predict_proba(dense).numpy(), atol=1e-5)
