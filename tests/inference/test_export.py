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
    import onnx

    predictor = Predictor.from_run(trained[name])
    path = export_onnx(predictor, tmp_path / "model.onnx")
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert {n.domain for n in loaded.graph.node} == {""}  # standard ai.onnx operators only
    X = _inputs(predictor)
    got = run_onnx(path, X.numpy())
    assert sorted(got) == ["label_index", "probabilities"]
    expected = predictor.predict_proba(X)
    assert got["probabilities"].shape == tuple(expected.shape) and got["probabilities"].dtype == np.float32
    assert np.abs(got["probabilities"] - expected.numpy()).max() < 1e-5
    labels = predictor.model.predict(X).numpy()  # softreg's own rule (binary: logit >= 0)
    assert np.array_equal(got["label_index"], labels)


@pytest.mark.parametrize("name", list(RUNS))
def test_tract_runs_the_default_file(trained, tmp_path, name):
    tract = pytest.importorskip("tract", reason="tract: an ONNX engine independent of onnxruntime")
    predictor = Predictor.from_run(trained[name])
    path = export_onnx(predictor, tmp_path / "model.onnx")
    X = _inputs(predictor)
    runnable = tract.onnx().load(str(path)).into_model().into_runnable()
    probabilities, index = (t.to_numpy() for t in runnable.run([X.numpy()]))
    assert np.abs(probabilities - predictor.predict_proba(X).numpy()).max() < 1e-5
    assert np.array_equal(index, predictor.model.predict(X).numpy())


@pytest.mark.parametrize("name", ["softmax-digits", "logistic"])
def test_string_labels_add_the_class_names(trained, tmp_path, name):
    predictor = Predictor.from_run(trained[name])
    path = export_onnx(predictor, tmp_path / "m.onnx", labels="string")
    X = _inputs(predictor)
    got = run_onnx(path, X.numpy())
    assert list(got["label"]) == [predictor.classes[i] for i in predictor.model.predict(X).numpy()]


@pytest.mark.parametrize("opset", [13, 15, 19])
def test_the_opset_is_the_one_asked_for(trained, tmp_path, opset):
    import onnx

    predictor = Predictor.from_run(trained["mlp-binary-sigmoid"])
    model = to_onnx(predictor, opset=opset)
    assert [o.version for o in model.opset_import if o.domain == ""] == [opset]
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    X = _inputs(predictor)
    assert np.abs(run_onnx(path, X.numpy())["probabilities"] - predictor.predict_proba(X).numpy()).max() < 1e-5


def consume_like_skl2onnx(path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How code written for skl2onnx's LogisticRegression (zipmap off) reads a file."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, probabilities = session.run(None, {"X": X.astype(np.float32)})
    return label, probabilities


def test_sklearn_layout_reads_like_skl2onnx_logistic_regression(trained, tmp_path):
    pytest.importorskip("skl2onnx")
    import skl2onnx
    from sklearn.linear_model import LogisticRegression

    predictor = Predictor.from_run(trained["softmax-digits"])
    X = _inputs(predictor).numpy()
    reference = LogisticRegression(max_iter=50).fit(X[:300], np.arange(300) % 10)
    theirs = tmp_path / "sk.onnx"
    theirs.write_bytes(skl2onnx.to_onnx(reference, X[:1], options={"zipmap": False}).SerializeToString())
    label, probabilities = consume_like_skl2onnx(theirs, X)  # the script works on skl2onnx's file
    assert label.dtype == np.int64 and probabilities.shape == (len(X), 10)
    ours = export_onnx(predictor, tmp_path / "ours.onnx", layout="sklearn")
    label, probabilities = consume_like_skl2onnx(ours, X)  # and, unchanged, on softreg's
    expected = predictor.model.predict(torch.from_numpy(X)).numpy()
    assert label.dtype == np.int64 and np.array_equal(label, [int(predictor.classes[i]) for i in expected])
    assert np.abs(probabilities - predictor.predict_proba(torch.from_numpy(X)).numpy()).max() < 1e-5


def test_sklearn_layout_with_string_labels_is_refused(trained):
    from softreg.errors import UserInputError

    with pytest.raises(UserInputError, match="already labels with the classes"):
        to_onnx(Predictor.from_run(trained["logistic"]), layout="sklearn", labels="string")


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
    assert f"wrote {out}: features float32 (batch, 64) -> probabilities (batch, 10), label_index (opset 17)" in stdout
    diff = float(stdout.split("largest probability difference ")[1].split()[0])
    assert "checked with onnxruntime on 360 test samples" in stdout and diff < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.onnx"]  # no temporary left


EXPORT_MISTAKES = {
    "format": (["--format", "tflite", "--out", "m.onnx"], ["--format must be onnx", "'tflite'"]),
    "suffix": (["--out", "m.bin"], ["ending in .onnx"]),
    "folder": (["--out", "/no/such/dir/m.onnx"], ["folder /no/such/dir does not exist"]),
    "no-out": ([], ["missing option '--out'"]),
    "opset": (["--out", "m.onnx", "--opset", "9"], ["--opset must be an integer in [13"]),
    "layout": (["--out", "m.onnx", "--layout", "keras"], ["--layout", "keras"]),
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
