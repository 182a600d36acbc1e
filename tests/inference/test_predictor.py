"""Predictor (softreg.inference.predictor): every input kind, batch scoring, notes, no global side effects."""

from __future__ import annotations

import io
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_user_error, call_main
from PIL import Image

from softreg.data import load_dataset
from softreg.errors import UserInputError
from softreg.inference.images import png_bytes
from softreg.inference.predictor import Predictor
from softreg.runs.folder import load_run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "digits-softmax"
    assert call_main(["train", "--data", "digits", "--device", "cpu", "--out", out]) == 0
    return out


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "toy-run"
    assert call_main(["train", "--data", "toy", "--epochs", "20", "--device", "cpu", "--out", out]) == 0
    return out


def render_digit(d: int, size: int = 200, font_size: int = 120, offset=(0, 0)) -> bytes:
    """A digit in the bundled font, dark on white, as a PNG of ``size`` x ``size``."""
    from PIL import ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=font_size)
    except (TypeError, OSError, ImportError):
        pytest.skip("Pillow without FreeType: cannot draw digits")
    img = Image.new("L", (size, size), 255)
    ImageDraw.Draw(img).text((size / 2 + offset[0], size / 2 + offset[1]), str(d), fill=0, font=font,
                             anchor="mm", stroke_width=4, stroke_fill=0)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


# ------------------------------------------------------------------ loading and describing


def test_describe_matches_the_run(trained_idx_run):
    folder, run_dir = trained_idx_run
    predictor = Predictor.from_run(run_dir)
    run = load_run(run_dir)
    info = predictor.describe()
    assert info["name"] == run_dir.name and info["ready"] is True
    assert info["classes"] == run.data["classes"] and info["n_features"] == run.model_config.n_features
    assert info["image_shape"] == [28, 28] and info["pixel_max"] == 255.0 and info["model"] == "softmax"
    assert info["test_samples"] == len(load_dataset(str(folder)).test)


def test_missing_data_is_not_an_error_until_a_test_sample_is_asked_for(trained_idx_run, tmp_path):
    import shutil

    folder, run_dir = trained_idx_run
    copy = tmp_path / "idx"
    shutil.copytree(folder, copy)
    run_copy = tmp_path / "run"
    shutil.copytree(run_dir, run_copy)
    config = (run_copy / "config.json").read_text().replace(str(folder.resolve()), str(copy.resolve()))
    (run_copy / "config.json").write_text(config)
    shutil.rmtree(copy)
    predictor = Predictor.from_run(run_copy)
    assert predictor.describe()["test_samples"] == 0
    assert predictor.predict_rows([[0.0] * 784])[0].label in predictor.classes
    with pytest.raises(UserInputError, match="the run's data cannot be loaded"):
        predictor.test_sample(0)


# ------------------------------------------------------------------ rows


def test_rows_in_any_container_score_like_the_model(trained_idx_run):
    folder, run_dir = trained_idx_run
    predictor = Predictor.from_run(run_dir)
    X = load_dataset(str(folder)).test.X[:7]  # (7, 28, 28) uint8
    expected = load_run(run_dir).model.predict_proba(X)
    as_list = X.reshape(7, -1).tolist()
    for rows in (as_list, np.asarray(as_list), X.reshape(7, -1), [tuple(r) for r in as_list]):
        encoded = predictor.encode_rows(rows)
        assert encoded.shape == (7, 784) and encoded.dtype == torch.float32
        assert torch.allclose(predictor.predict_proba(encoded), expected, atol=1e-6)
    predictions = predictor.predict_rows(as_list)
    assert [p.index for p in predictions] == expected.argmax(dim=1).tolist()
    assert [p.label for p in predictions] == [predictor.classes[i] for i in expected.argmax(dim=1).tolist()]
    assert all(abs(sum(p.probabilities) - 1) < 1e-5 for p in predictions)


def test_rows_by_feature_name_on_a_table(toy_run):
    predictor = Predictor.from_run(toy_run)
    assert predictor.feature_names == ["x1", "x2", "x3", "x4"]
    by_name = predictor.encode_rows([{"x3": 5, "x1": 1, "x4": 6, "x2": 2}])
    assert torch.equal(by_name, torch.tensor([[1.0, 2.0, 5.0, 6.0]]))
    with pytest.raises(UserInputError, match=r"row 0: features do not match .*missing \['x4'\].*unknown \['x9'\]"):
        predictor.encode_rows([{"x1": 1, "x2": 2, "x3": 3, "x9": 4}])


BAD_ROWS = {
    "empty": ([], "rows is empty"),
    "not-a-list": ("1,2,3,4", "rows must be a list of rows of numbers; got str"),
    "short": ([[1, 2, 3, 4], [1, 2]], "row 1 has 2 values but the model expects 4"),
    "not-numbers": ([[1, 2, "x", 4]], "row 0 has 'x' at position 2; feature values must be numbers"),
    "nested": ([[1, 2, [3], 4]], "row 0 has \\[3\\] at position 2"),
    "row-not-list": ([5], "row 0 is not a list of numbers"),
    "nan": ([[1, 2, 3, 4], [1, float("nan"), 3, 4]], "row 1 has nan at position 1; .* finite"),
    "inf": ([[1, 2, float("inf"), 4]], "row 0 has inf at position 2"),
}


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_bad_rows_name_the_row_and_value(toy_run, case):
    rows, message = BAD_ROWS[case]
    with pytest.raises(UserInputError, match=message):
        Predictor.from_run(toy_run).encode_rows(rows)


def test_pixels_out_of_range_are_refused(trained_idx_run):
    _, run_dir = trained_idx_run
    row = [0.0] * 784
    row[10] = 256.0
    with pytest.raises(UserInputError, match=r"row 0 has pixel value 256 at position 10; pixels must be in \[0, 255\]"):
        Predictor.from_run(run_dir).encode_rows([row])


# ------------------------------------------------------------------ images


def test_png_of_a_test_sample_scores_like_the_sample(trained_idx_run):
    folder, run_dir = trained_idx_run
    predictor = Predictor.from_run(run_dir)
    test = load_dataset(str(folder)).test
    pngs = [png_bytes(test.X[i].float(), 255.0) for i in range(10)]
    X, notes = predictor.encode_images(pngs)
    assert torch.equal(X, test.X[:10].reshape(10, -1).float())
    assert notes == [[]] * 10


def test_table_models_refuse_images(toy_run):
    with pytest.raises(UserInputError, match="trained on a table, not images; use features or index"):
        Predictor.from_run(toy_run).prepare_image(png_bytes(torch.zeros(8, 8), 16.0))


def test_drawn_digits_are_read_as_their_class(digits_run):
    """Digits drawn large on white: the dataset's convention reads most; squeezing reads none."""
    predictor = Predictor.from_run(digits_run)
    pictures = [render_digit(d, offset=(d * 3 - 15, 20 - d * 4)) for d in range(10)]
    dataset = [p.index for p in predictor.predict_images(pictures)]
    squeezed = [p.index for p in predictor.predict_images(pictures, fit="resize")]
    right = sum(d == got for d, got in enumerate(dataset))
    assert right >= 6, dataset
    assert right >= sum(d == got for d, got in enumerate(squeezed)) + 4, (dataset, squeezed)
    three = predictor.predict_images([render_digit(3)])[0]
    assert three.label == "3" and not three.warnings


def test_empty_and_far_inputs_are_noted(digits_run):
    predictor = Predictor.from_run(digits_run)
    split, _ = predictor.test_split()
    test_rows = split.X.reshape(len(split), -1).float()
    flagged = sum(bool(p.warnings) for p in predictor.predictions(test_rows))
    assert flagged <= 0.01 * len(split)  # the test images are like the training images
    noise = torch.rand(20, 64, generator=torch.Generator().manual_seed(1)) * 16
    assert all("far from the training images" in p.warnings[0] for p in predictor.predictions(noise))
    assert "empty" in predictor.predictions(torch.zeros(1, 64))[0].warnings[0]
    wrong_scale = test_rows[:5] / 16  # [0, 1] values sent to a 0..16 model
    assert all(p.warnings for p in predictor.predictions(wrong_scale))
    blank = predictor.predict_images([png_bytes(torch.zeros(50, 50), 16.0)])[0]
    assert blank.warnings == ["the image is empty (no ink found); the prediction means nothing"]


# ------------------------------------------------------------------ test samples


def test_test_samples_and_random_indices(trained_idx_run):
    folder, run_dir = trained_idx_run
    predictor = Predictor.from_run(run_dir)
    test = load_dataset(str(folder)).test
    x, label, what = predictor.test_sample(4)
    assert torch.equal(x, test.X[4].reshape(-1).float()) and label == str(int(test.y[4]))
    assert what == "test sample 4"
    assert predictor.random_test_index(3) == random.Random(3).randrange(len(test))
    with pytest.raises(UserInputError, match=r"--index must be in \[0, 19\] for the test split; got 20"):
        predictor.test_sample(20, what="--index")


# ------------------------------------------------------------------ no side effects


def test_no_process_wide_state_changes(digits_run):
    state = (torch.get_num_threads(), torch.random.get_rng_state(), random.getstate(),
             np.random.get_state()[1].copy(), list(warnings.filters), torch.is_grad_enabled())
    predictor = Predictor.from_run(digits_run)
    predictor.predict_images([render_digit(5), png_bytes(torch.zeros(8, 8), 16.0)])
    predictor.predict_rows(torch.rand(3, 64, generator=torch.Generator().manual_seed(0)) * 16)
    predictor.random_test_index()
    after = (torch.get_num_threads(), torch.random.get_rng_state(), random.getstate(),
             np.random.get_state()[1].copy(), list(warnings.filters), torch.is_grad_enabled())
    assert state[0] == after[0] and torch.equal(state[1], after[1]) and state[2] == after[2]
    assert np.array_equal(state[3], after[3]) and state[4] == after[4] and state[5] == after[5]


# ------------------------------------------------------------------ the command


def test_cli_warns_about_an_empty_image(run_cli, digits_run, tmp_path):
    path = tmp_path / "blank.png"
    path.write_bytes(png_bytes(torch.zeros(100, 100), 16.0))
    code, stdout, err = run_cli("predict", digits_run, path)
    assert code == 0 and stdout.startswith(f"{path}: predicted ")
    assert err.strip() == f"softreg: warning: {path}: the image is empty (no ink found); the prediction means nothing"


def test_cli_bad_fit(run_cli, digits_run, tmp_path):
    path = tmp_path / "three.png"
    path.write_bytes(render_digit(3))
    code, _, err = run_cli("predict", digits_run, path, "--fit", "zoom")
    assert_user_error(code, err, "--fit must be auto, dataset or resize", "'zoom'")


def test_cli_reads_a_large_drawing(run_cli, digits_run, tmp_path):
    path = tmp_path / "three.png"
    path.write_bytes(render_digit(3, size=400, font_size=240))
    code, stdout, err = run_cli("predict", digits_run, path)
    assert code == 0 and err == ""
    assert stdout.startswith(f"{path}: predicted 3 ")


def test_show_draws_what_the_model_saw_on_a_fixed_scale(run_cli, trained_idx_run, tmp_path, monkeypatch):
    """A faint sample stays faint: the picture's scale is 0..pixel_max, not its own range."""
    from softreg.report import plots

    drawn = []
    original = plots.prediction_figure

    def spy(*args, **kwargs):
        drawn.append((args, kwargs, original(*args, **kwargs)))
        return drawn[-1][2]

    _, run_dir = trained_idx_run
    faint = torch.zeros(28, 28)
    faint[6:22, 12:16] = 60.0
    path = tmp_path / "faint.png"
    path.write_bytes(png_bytes(faint, 255.0))
    monkeypatch.setattr(plots, "prediction_figure", spy)
    code, _, err = run_cli("predict", run_dir, path, "--show", tmp_path / "p.png")
    assert code == 0, err
    args, _, fig = drawn[0]
    assert torch.allclose(args[0].reshape(28, 28), faint)  # what the model saw
    image = fig.axes[0].get_images()[0]
    assert image.get_clim() == (0.0, 255.0)


def test_score_is_the_models_probabilities_labels_and_notes(trained_idx_run):
    folder, run_dir = trained_idx_run
    predictor = Predictor.from_run(run_dir)
    X = load_dataset(str(folder)).test.X[:12].reshape(12, -1).float()
    X[0] = 0  # an empty picture: noted
    scores = predictor.score(X, [["first"]] + [[] for _ in range(11)])
    logits = predictor.model(X)  # Classifier: raw inputs in
    reference = torch.softmax(logits, dim=1) if logits.shape[1] > 1 else None
    probs = predictor.model.predict_proba(X)
    assert torch.allclose(scores.probabilities, probs.float(), atol=1e-6)
    if reference is not None:
        assert torch.allclose(scores.probabilities, reference.float(), atol=1e-5)
    assert scores.indices.tolist() == probs.argmax(dim=1).tolist()
    assert scores.labels == [predictor.classes[i] for i in probs.argmax(dim=1).tolist()]
    assert scores.warnings[0][0] == "first" and "empty" in scores.warnings[0][1] and len(scores) == 12
    parts = scores.split([5, 7])
    assert [len(p) for p in parts] == [5, 7] and parts[1].labels == scores.labels[5:]
    assert torch.equal(parts[1].probabilities, scores.probabilities[5:])
    values, indices, labels = scores.top(2)
    assert torch.equal(indices[:, 0], scores.indices) and labels[3][0] == scores.labels[3]
    assert torch.all(values[:, 0] >= values[:, 1])
    assert [p.to_dict()["label"] for p in scores.predictions()] == scores.labels


def test_score_rows_and_mixed_inputs_match_their_parts(trained_idx_run, toy_run):
    folder, run_dir = trained_idx_run
    predictor = Predictor.from_run(run_dir)
    images = load_dataset(str(folder)).test.X[:3]
    rows = images.reshape(3, -1).int().tolist()
    X, notes = predictor.encode_inputs([rows[0], png_bytes(images[1].float(), 255.0), rows[2]])
    assert torch.allclose(X, images.reshape(3, -1).float(), atol=1e-4) and notes == [[], [], []]
    assert torch.equal(predictor.encode_rows(images.numpy()), predictor.encode_rows(rows))  # (N, H, W) arrays
    assert predictor.input_values(X, 0) == [float(v) for v in rows[0]]
    table = Predictor.from_run(toy_run)
    assert table.score_rows([[1, 2, 1, 1]]).labels == [p.label for p in table.predict_rows([[1, 2, 1, 1]])]
    with pytest.raises(UserInputError, match="row 1: .*trained on a table"):
        table.encode_inputs([[1, 2, 1, 1], png_bytes(torch.zeros(8, 8), 16.0)])
    inputs = table.inputs()
    assert inputs.n_features == 4 and inputs.names == table.feature_names and not inputs.images


def test_a_folder_named_by_a_number_is_a_version(trained_idx_run, tmp_path):
    import shutil

    _, run_dir = trained_idx_run
    shutil.copytree(run_dir, tmp_path / "fm" / "3")
    predictor = Predictor.from_run(tmp_path / "fm" / "3")
    assert (predictor.name, predictor.version) == ("fm", "3")
    assert (Predictor.from_run(run_dir).version) == "1"
